"""Prints one boxload report's figures for bench/lib.sh's `record`:
msgs/s, p50, p90, p99, max (ms) and the box's CPU microseconds per MO.

    python3 bench/report_row.py REPORT ack|reply CPU_SECONDS

REPORT is boxload's output; its last line is the JSON report.
"""
import json
import sys

path, what, cpu = sys.argv[1], sys.argv[2], float(sys.argv[3])
with open(path) as f:
    report = json.loads(f.read().splitlines()[-1])
latency = report[what + "_latency_ms"]
print(
    f"{report[what + '_rate']:.0f}",
    *(f"{latency[p]:.2f}" for p in ("p50", "p90", "p99", "max")),
    f"{cpu * 1e6 / max(report['acked'], 1):.1f}",
)
