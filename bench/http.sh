#!/usr/bin/env bash
# HTTP throughput with wrk (2 threads, 32 connections), a real bearerbox and
# fakesmsc behind each box, side by side on the same machine:
#   - Kannel's smsbox:  GET /cgi-bin/sendsms
#   - rapidbox:         GET /cgi-bin/sendsms and GET /router/receive
#                       (every message durably stored; receive routes
#                       through the echo app and queues the reply)
#
#   bash bench/http.sh [SECONDS]     (default 10 per run)
#
# Prints requests/s and the box's CPU per request (user+sys from /proc).
set -euo pipefail
cd "$(dirname "$0")/.."

SECS="${1:-10}"
FAKESMSC=/usr/lib/kannel/test/fakesmsc
for bin in /usr/sbin/bearerbox /usr/sbin/smsbox "$FAKESMSC" wrk; do
    command -v "$bin" > /dev/null || { echo "needs $bin (apt-get install -y kannel kannel-extras wrk)" >&2; exit 1; }
done
# RAPIDBOX_BIN runs another build of rapidbox (an A/B of two commits).
if [ -z "${RAPIDBOX_BIN:-}" ]; then
    cargo build --release --quiet --bin rapidbox
fi
RAPIDBOX="${RAPIDBOX_BIN:-$PWD/target/release/rapidbox}"

source bench/lib.sh

# Starts bearerbox (see bench/lib.sh) and a fakesmsc that takes every MT.
kannel() { # DIR
    start_bearerbox "$1"
    "$FAKESMSC" -H 127.0.0.1 -r "$SMSC_PORT" -i 1 -m 0 "+1 2 text x" > /dev/null 2>&1 &
    PIDS+=("$!")
}

# wrk's latency (e.g. "1.52ms", "870.00us", "1.01s") in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000
        printf "%.2f", n
    }'
}

run_wrk() { # NAME BOXPID URL
    local name="$1" box="$2" url="$3" cpu0 cpu out reqs
    cpu0=$(cpu_secs "$box")
    out=$(wrk -t2 -c32 -d"${SECS}s" --latency "$url")
    cpu=$(echo "$(cpu_secs "$box") - $cpu0" | bc -l)
    reqs=$(echo "$out" | awk '/^Requests\/sec/ { print $2 }')
    local total non2xx cpu_us
    total=$(echo "$out" | awk '/requests in/ { print $1 }')
    non2xx=$(echo "$out" | awk '/Non-2xx/ { print $NF }')
    cpu_us=$(printf '%.1f' "$(echo "$cpu * 1000000 / $total" | bc -l)")
    printf '%-28s %9.0f req/s  %6.1f us CPU/req  (%s requests, non-2xx: %s)\n' \
        "$name" "$reqs" "$cpu_us" "$total" "${non2xx:-0}"
    local p50 p90 p99 max
    p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" { print $2 }')")
    p90=$(to_ms "$(echo "$out" | awk '$1 == "90%" { print $2 }')")
    p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
    max=$(to_ms "$(echo "$out" | awk '$1 == "Latency" { print $4; exit }')")
    record "HTTP, wrk -t2 -c32" "$name" "$(printf '%.0f' "$reqs")" "$p50" "$p90" "$p99" "$max" \
        "$cpu_us" "$(peak_rss_kb "$box")" "$total requests, non-2xx: ${non2xx:-0}"
}

echo "wrk -t2 -c32 -d${SECS}s, bearerbox + fakesmsc behind each box, $(nproc) cores"

dir="$WORK/smsbox"; mkdir -p "$dir"; kannel "$dir"
/usr/sbin/smsbox "$dir/kannel.conf" > "$dir/smsbox.out" 2>&1 &
SMSBOX=$!; PIDS+=("$SMSBOX"); wait_port "$SENDSMS_PORT"
run_wrk "smsbox /cgi-bin/sendsms" "$SMSBOX" \
    "http://127.0.0.1:$SENDSMS_PORT/cgi-bin/sendsms?username=bench&password=bench&from=5555&to=4912345&text=hello"
kill -TERM "$SMSBOX" "$BB" 2>/dev/null || true; sleep 2

for endpoint in sendsms receive; do
    dir="$WORK/rapidbox-$endpoint"; mkdir -p "$dir"; kannel "$dir"
    http_port=$(free_port)
    cat > "$dir/rapidbox.toml" <<CONF
[store]
path = "$dir/rapidbox.redb"
[kannel]
port = $SMSBOX_PORT
global_sender = "5555"
dlr_mask = 0
[http]
listen = "127.0.0.1:$http_port"
[router]
apps = ["echo"]
[[sendsms_users]]
username = "bench"
password = "bench"
CONF
    RUST_LOG=warn "$RAPIDBOX" run --config "$dir/rapidbox.toml" > "$dir/rapidbox.log" 2>&1 &
    RB=$!; PIDS+=("$RB"); wait_port "$http_port"; sleep 0.5
    if [ "$endpoint" = sendsms ]; then
        run_wrk "rapidbox /cgi-bin/sendsms" "$RB" \
            "http://127.0.0.1:$http_port/cgi-bin/sendsms?username=bench&password=bench&from=5555&to=4912345&text=hello"
    else
        run_wrk "rapidbox /router/receive" "$RB" \
            "http://127.0.0.1:$http_port/router/receive?backend=fake&sender=4912345&message=hello"
    fi
    kill -TERM "$RB" "$BB" 2>/dev/null || true; sleep 2
done
