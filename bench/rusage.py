"""Runs a command and, once it exits, writes its CPU seconds (user + sys),
its peak resident memory (KiB), and the bytes it caused to be written to
storage (ru_oublock, 512-byte blocks: /proc/PID/io's write_bytes) to FILE, from the kernel's own
accounting (wait4), which stays exact even when the process exits on its
own before anyone could read /proc. SIGTERM and SIGINT are passed on.

    python3 bench/rusage.py FILE COMMAND [ARGS...]
"""
import os
import signal
import subprocess
import sys

out, command = sys.argv[1], sys.argv[2:]
child = subprocess.Popen(command)
for signum in (signal.SIGTERM, signal.SIGINT):
    signal.signal(signum, lambda n, _frame: child.send_signal(n))
# wait4 is retried after a signal handler runs (PEP 475).
_, status, usage = os.wait4(child.pid, 0)
with open(out, "w") as f:
    f.write(
        f"{usage.ru_utime + usage.ru_stime:.3f} {usage.ru_maxrss} {usage.ru_oublock * 512}"
        f" {usage.ru_utime:.3f} {usage.ru_stime:.3f}\n"
    )
sys.exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)
