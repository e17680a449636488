"""Sums a rapidbox perf profile by thread, user against kernel, the
syscall the kernel time was spent in, and the innermost rapidbox frame.

    perf script -i perf.data --no-inline -F comm,tid,ip,sym,dso > perf.txt
    python3 bench/perf_fold.py perf.txt

With `--call-graph dwarf` the kernel part of a stack is cut short, so the
syscall is named after the innermost user frame (the libc wrapper:
`__GI___writev`, `epoll_wait`, `syscall` for futex). Percentages are of
all samples; at `-F 997` a sample is about 1 ms of CPU.
"""
import collections
import re
import sys


def samples(path):
    current = None
    for line in open(path, errors="replace"):
        if not line.strip():
            if current:
                yield current
            current = None
        elif not line[0].isspace():
            current = {"comm": line.split()[0], "frames": []}
        elif current is not None:
            m = re.match(r"\s*[0-9a-f]+ (.*) \((.*)\)$", line.rstrip())
            if m:
                current["frames"].append((m.group(1), m.group(2)))
    if current:
        yield current


def thread(comm):
    if comm.startswith("tokio"):
        return "tokio workers"
    if comm.startswith("rapidbox-stor"):
        return "store writer"
    return comm


all_samples = list(samples(sys.argv[1]))
total = len(all_samples) or 1
split, syscalls, own = (collections.Counter() for _ in range(3))
for s in all_samples:
    who = thread(s["comm"])
    frames = s["frames"] or [("?", "?")]
    kernel = "kernel" in frames[0][1]
    split[(who, "kernel" if kernel else "user")] += 1
    if kernel:
        user = [f for f, dso in frames if "kernel" not in dso]
        outer = [f for f, dso in frames if "kernel" in dso][-1]
        name = "page fault" if outer == "asm_exc_page_fault" else (user[0] if user else "?")
        syscalls[(who, name)] += 1
    mine = next((f for f, _ in frames if re.match(r"(rapidbox|boxproto)::", f)), "(tokio, std)")
    own[(who, re.sub(r"::\{\{closure\}\}", "", mine))] += 1

print(f"{total} samples")
for title, counter, rows in (
    ("by thread", split, 10),
    ("kernel time by thread and syscall", syscalls, 15),
    ("by innermost rapidbox frame", own, 25),
):
    print(f"\n{title}")
    for (who, what), n in counter.most_common(rows):
        print(f"{100 * n / total:5.1f}%  {n:6}  {who:14} {what}")
