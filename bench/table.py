"""The table of bench/suite.sh: one Markdown table of every row that
bench/lib.sh's `record` wrote, grouped by run, each rapidbox row followed by
its ratio to the smsbox row of the same run.

    python3 bench/table.py RESULTS

Ratios are rapidbox / smsbox for every column: above 1 is better for
msgs/s, worse for latency, CPU and memory.
"""
import os
import platform
import subprocess
import sys
from collections import OrderedDict

COLUMNS = ["msgs/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "CPU µs/msg", "peak RSS MB"]


def number(text):
    try:
        return float(text)
    except ValueError:
        return None


def cells(row):
    rate, p50, p90, p99, mx, cpu, rss = row[2:9]
    rss = number(rss)
    return [rate, p50, p90, p99, mx, cpu, f"{rss / 1024:.1f}" if rss is not None else "-"]


def ratio(mine, base):
    a, b = number(mine), number(base)
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}×"


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        kannel = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "kannel"],
                                capture_output=True, text=True).stdout or "?"
    except OSError:
        kannel = "?"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip() or "?"
    except OSError:
        commit = "?"
    return (f"{os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
            f"Kannel {kannel}, rapidbox {commit}")


def main(path):
    groups = OrderedDict()
    with open(path) as f:
        for line in f:
            row = line.rstrip("\n").split("\t")
            if len(row) >= 10:
                groups.setdefault(row[0], []).append(row)
    print(f"Machine: {machine()}")
    print()
    print("| run | box | " + " | ".join(COLUMNS) + " | notes |")
    print("|---|---|" + "---:|" * len(COLUMNS) + "---|")
    for group, rows in groups.items():
        base = next((r for r in rows if r[1].startswith("smsbox")), None)
        for row in rows:
            print(f"| {group} | {row[1]} | " + " | ".join(cells(row)) + f" | {row[9]} |")
        for row in rows:
            if base is None or row is base:
                continue
            ratios = [ratio(m, b) for m, b in zip(cells(row), cells(base))]
            print(f"| {group} | **{row[1]} / {base[1]}** | " + " | ".join(ratios) + " | |")


if __name__ == "__main__":
    main(sys.argv[1])
