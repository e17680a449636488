#!/usr/bin/env bash
# Runs rapidbox under a measuring tool, as RAPIDBOX_BIN for
# bench/boxload.sh or bench/services.sh: REAL_BIN is the rapidbox binary,
# WRAP what to measure, OUT where the result goes.
#
#   WRAP=perf      perf record -e cpu-clock --call-graph dwarf (the VM has
#                  no hardware counters); OUT is the perf.data file. Read
#                  it with `perf report -i OUT --no-children --sort comm,dso`.
#   WRAP=syscalls  perf stat: context switches and the syscalls of the
#                  path (epoll_wait, writev, write, recvfrom, futex,
#                  pwrite64, fdatasync, ...); OUT is perf stat's report.
#   WRAP=threads   CPU seconds per thread name (tokio-rt-worker,
#                  rapidbox-store), read from /proc just before rapidbox is
#                  stopped; OUT gets one line per name.
#
#   BOXES=rapidbox REAL_BIN=target/release/rapidbox WRAP=threads OUT=/tmp/threads \
#       RAPIDBOX_BIN=$PWD/bench/box_wrap.sh BOXLOAD_ARGS="--rate 10000" \
#       bash bench/boxload.sh 50000 1000
#
# SIGTERM (how the bench scripts stop a box) goes to rapidbox itself, so
# the tool outlives it and writes its report.
set -uo pipefail
: "${REAL_BIN:?the rapidbox binary to run}" "${WRAP:?perf, syscalls or threads}" "${OUT:?where to write}"

case "$WRAP" in
perf)
    perf record -q -e cpu-clock -F 997 --call-graph dwarf,32768 -o "$OUT" "$REAL_BIN" "$@" &
    ;;
syscalls)
    events=cs,task-clock
    for s in epoll_wait writev write recvfrom read futex pwrite64 fdatasync sched_yield; do
        events="$events,syscalls:sys_enter_$s"
    done
    perf stat -e "$events" -o "$OUT" "$REAL_BIN" "$@" &
    ;;
threads)
    "$REAL_BIN" "$@" &
    ;;
*)
    echo "WRAP must be perf, syscalls or threads" >&2
    exit 2
    ;;
esac
tool=$!

# The rapidbox process: the tool itself, or the tool's child.
box_pid() {
    if [ "$WRAP" = threads ]; then echo "$tool"; else pgrep -P "$tool" | head -n 1; fi
}

# Sums utime and stime (fields 14 and 15 of /proc/PID/task/TID/stat) per
# thread name.
threads_cpu() { # PID
    local hz t
    hz=$(getconf CLK_TCK)
    for t in /proc/"$1"/task/*; do
        # The name is in parentheses and may hold spaces: read it apart.
        printf '%s ' "$(tr ' ' _ < "$t/comm")"
        sed 's/^.*) //' "$t/stat" | awk '{ print $12, $13 }'
    done | awk -v hz="$hz" '{ u[$1] += $2; s[$1] += $3 }
        END { for (k in u) printf "%s user %.2f sys %.2f\n", k, u[k] / hz, s[k] / hz }' | sort
}

stop() {
    local pid
    pid=$(box_pid)
    [ -n "$pid" ] || return 0
    if [ "$WRAP" = threads ]; then threads_cpu "$pid" > "$OUT"; fi
    kill -TERM "$pid" 2>/dev/null
}
trap stop TERM INT
# The first wait returns when a signal arrives; the second waits for the
# tool to finish its report.
wait "$tool"
wait "$tool"
