#!/usr/bin/env bash
# Slow clients: 2,000 connections from 127.0.0.2 trickle their request
# heads (a byte every 200 ms, never finishing), while a normal client on
# 127.0.0.3 asks GET /router/stats once a second. Prints the normal
# client's latencies (curl's time_total) and how many of the attacker's
# connections rapidbox refused at once (http_connections_refused).
#
#   bash bench/slow_clients.sh [CONNECTIONS] [SECONDS]   (defaults 2000, 20)
#
# rapidbox promises the normal client an answer within 1 s. Timings taken
# while other work compiles are noisy: take final figures on a quiet
# machine.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS="${1:-2000}"
SECS="${2:-20}"
command -v curl > /dev/null || { echo "needs curl" >&2; exit 1; }
# The attacker's sockets, and rapidbox's: well over CONNECTIONS each.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -gt $((CONNECTIONS + 256)) ] || { echo "ulimit -n $(ulimit -n) is too low for $CONNECTIONS connections" >&2; exit 1; }
cargo build --release --quiet --bin rapidbox
RAPIDBOX="$PWD/target/release/rapidbox"

source bench/lib.sh

PORT=$(free_port)
cat > "$WORK/rapidbox.toml" <<CONF
[store]
path = "$WORK/rapidbox.redb"
[kannel]
enabled = false
[http]
listen = "127.0.0.1:$PORT"
password = "bench"
CONF
"$RAPIDBOX" run --config "$WORK/rapidbox.toml" > "$WORK/rapidbox.log" 2>&1 &
PIDS+=("$!")
wait_port "$PORT"

# The attacker: one process, CONNECTIONS sockets from 127.0.0.2.
python3 - "$PORT" "$CONNECTIONS" "$((SECS + 5))" > "$WORK/attacker.log" 2>&1 <<'PY' &
import socket, sys, time
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = []
for _ in range(n):
    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /router/stats HTTP/1.1\r\nX-Slow: ")
        socks.append(s)
    except OSError:
        s.close()
print(f"opened {len(socks)}", flush=True)
end = time.time() + secs
while time.time() < end and socks:
    time.sleep(0.2)
    alive = []
    for s in socks:
        try:
            s.send(b"a")
            alive.append(s)
        except OSError:
            s.close()
    socks = alive
print(f"still open at the end: {len(socks)}", flush=True)
PY
PIDS+=("$!")
sleep 2

echo "normal client (127.0.0.3) under $CONNECTIONS trickling connections from 127.0.0.2:"
LAT="$WORK/latencies"
for _ in $(seq "$SECS"); do
    curl -s -o /dev/null --interface 127.0.0.3 --max-time 30 -w '%{http_code} %{time_total}\n' \
        "http://127.0.0.1:$PORT/router/stats" >> "$LAT" || echo "000 30" >> "$LAT"
    sleep 1
done
sort -k2 -n "$LAT" | awk '
    { code[NR] = $1; t[NR] = $2; if ($1 != 200) bad++ }
    END {
        printf "  requests: %d, not 200: %d\n", NR, bad + 0
        printf "  latency ms: min %.1f  median %.1f  max %.1f\n", t[1] * 1000, t[int((NR + 1) / 2)] * 1000, t[NR] * 1000
    }'
curl -s "http://127.0.0.1:$PORT/metrics?password=bench" | grep '^rapidbox_http_connections_refused' | sed 's/^/  /' || echo "  no connection refused"
cat "$WORK/attacker.log" | sed 's/^/  attacker: /'
