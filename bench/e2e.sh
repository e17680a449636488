#!/usr/bin/env bash
# End-to-end MO -> reply throughput through a real bearerbox and fakesmsc,
# for rapidbox (echo app, durable store) and for Kannel's smsbox (static
# text sms-service), one after the other on the same machine.
#
#   bash bench/e2e.sh [MESSAGES]      (default 50000)
#
# For each box it prints: messages, seconds from the first MO sent to the
# last reply received, msgs/s, and the CPU time (user+sys, from /proc) the
# box and the bearerbox spent, per message. BOXES picks the boxes
# ("rapidbox" alone, say); RAPIDBOX_BIN runs that binary instead of
# building this tree's.
set -euo pipefail
cd "$(dirname "$0")/.."

N="${1:-50000}"
FAKESMSC=/usr/lib/kannel/test/fakesmsc
for bin in /usr/sbin/bearerbox /usr/sbin/smsbox "$FAKESMSC"; do
    [ -x "$bin" ] || { echo "needs Kannel: apt-get install -y kannel kannel-extras" >&2; exit 1; }
done
# RAPIDBOX_BIN runs another build of rapidbox (an A/B of two commits).
if [ -z "${RAPIDBOX_BIN:-}" ]; then
    cargo build --release --quiet --bin rapidbox
fi
RAPIDBOX="${RAPIDBOX_BIN:-$PWD/target/release/rapidbox}"

source bench/lib.sh

run_one() { # NAME
    local name="$1" dir="$WORK/$1"
    mkdir -p "$dir"
    start_bearerbox "$dir"
    local bb=$BB smsbox_port=$SMSBOX_PORT smsc_port=$SMSC_PORT

    local box
    if [ "$name" = rapidbox ]; then
        cat > "$dir/rapidbox.toml" <<CONF
[store]
path = "$dir/rapidbox.redb"
[kannel]
port = $smsbox_port
dlr_mask = 0
[http]
listen = "127.0.0.1:0"
[router]
apps = ["echo"]
[apps.echo]
template = "Got it"
CONF
        env RUST_LOG=${RAPIDBOX_LOG:-warn} ${RAPIDBOX_ENV:-} "$RAPIDBOX" run --config "$dir/rapidbox.toml" > "$dir/box.log" 2>&1 &
    else
        /usr/sbin/smsbox "$dir/kannel.conf" > "$dir/box.log" 2>&1 &
    fi
    box=$!; PIDS+=("$box")
    sleep 1.5
    # PERF=DIR profiles the box while it works (perf record, software clock).
    if [ -n "${PERF:-}" ]; then
        perf record -F 1000 ${PERF_ARGS:--g} -p "$box" -o "$PERF/$name.perf.data" > /dev/null 2>&1 &
        PIDS+=("$!")
    fi

    local box_cpu0 bb_cpu0 start end
    box_cpu0=$(cpu_secs "$box"); bb_cpu0=$(cpu_secs "$bb")
    start=$(date +%s.%N)
    "$FAKESMSC" -H 127.0.0.1 -r "$smsc_port" -i 0 -m "$N" "+4912345 5555 text hello" \
        > "$dir/fakesmsc.log" 2>&1 &
    local fs=$!; PIDS+=("$fs")
    # fakesmsc logs each MT it receives as "Got message N".
    local got=0
    for _ in $(seq 1200); do
        got=$(grep -c "Got message" "$dir/fakesmsc.log" || true)
        [ "$got" -ge "$N" ] && break
        sleep 0.1
    done
    end=$(date +%s.%N)
    local box_cpu bb_cpu peak
    box_cpu=$(echo "$(cpu_secs "$box") - $box_cpu0" | bc -l)
    bb_cpu=$(echo "$(cpu_secs "$bb") - $bb_cpu0" | bc -l)
    peak=$(peak_rss_kb "$box")
    kill -TERM "$fs" "$box" 2>/dev/null || true
    sleep 1
    # RAPIDBOX_LOG=info shows the store's batching when rapidbox stops.
    if [ "$name" = rapidbox ] && [ -n "${RAPIDBOX_LOG:-}" ]; then
        grep -h "rapidbox stopped" "$dir/box.log" | sed 's/\x1b\[[0-9;]*m//g' || true
    fi
    kill -TERM "$bb" 2>/dev/null || true
    sleep 1
    local figures
    figures=$(python3 - "$name" "$N" "$got" "$start" "$end" "$box_cpu" "$bb_cpu" "$peak" <<'PY'
import sys
name, n, got, start, end, box_cpu, bb_cpu, peak = sys.argv[1:]
n, got = int(n), int(got)
secs = float(end) - float(start)
print(f"{name:9} sent {n:6} replies {got:6} in {secs:6.2f} s = {got/secs:8.0f} msgs/s; "
      f"box CPU {float(box_cpu)*1e6/max(got,1):6.1f} us/msg, bearerbox CPU {float(bb_cpu)*1e6/max(got,1):6.1f} us/msg; "
      f"peak RSS {peak} kB")
print(f"{got/secs:.0f}", f"{float(box_cpu)*1e6/max(got,1):.1f}", f"{float(bb_cpu)*1e6/max(got,1):.1f}")
PY
)
    echo "$figures" | head -n 1
    local rate cpu_us bb_us
    read -r rate cpu_us bb_us <<< "$(echo "$figures" | tail -n 1)"
    # fakesmsc reports no per-message times: no latencies here.
    record "bearerbox + fakesmsc, MO->reply" "$name" "$rate" - - - - "$cpu_us" "$peak" \
        "$got/$N replies; bearerbox CPU $bb_us us/msg"
}

echo "MO->reply through bearerbox + fakesmsc, $N messages, $(nproc) cores"
for box in ${BOXES:-smsbox rapidbox}; do
    run_one "$box"
done
