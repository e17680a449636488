#!/usr/bin/env bash
# Soak: rapidbox (release build) under a steady mixed load for MINUTES,
# sampled every minute, then checked for loss.
#
#   bash bench/soak.sh [MINUTES]      (default 15)
#
# The machine should be quiet: every process sharing the cores shows in
# the latencies. KEEP_WORK=1 keeps the scratch folder (logs, store).
#
# The load, all at once (rates per second, environment overrides):
#   - MOs from Kannel's fakesmsc through a real bearerbox (SOAK_MO_RATE,
#     100), each answered by the echo app; every reply asks for delivery
#     reports (dlr_mask 27), which the fake SMSC sends;
#   - /cgi-bin/sendsms requests (SOAK_SENDSMS_RATE, 20) to the fake SMSC,
#     each with a dlr-url to a recording server (so a callback each);
#   - /router/receive requests (SOAK_RECEIVE_RATE, 20) on backend "fake",
#     whose echo replies go out through the bearerbox too;
#   - a console reader logged in as a console user (SOAK_CONSOLE_RATE, 2),
#     reading the log page, a search and /router/stats in turn.
# Retention keeps the newest SOAK_KEEP (50,000) messages, as a long-running
# installation would, so the store reaches its steady size.
#
# Every minute one row (bench/soak_load.py): rapidbox's RSS and open files,
# the store file's size, the bearerbox's MO/MT counts so far, and per kind
# of HTTP request the count and the p50/p99 latency (client side: request
# sent to last byte of the answer). At the end, once the bearerbox holds
# nothing: messages expected (2 per MO, 2 per receive, 1 per sendsms)
# against messages stored + purged, statuses left open, callbacks made
# against sendsms accepted, and `rapidbox verify` on the stopped store.
set -euo pipefail
cd "$(dirname "$0")/.."

MINUTES="${1:-15}"
MO_RATE="${SOAK_MO_RATE:-100}"
KEEP="${SOAK_KEEP:-50000}"
FAKESMSC=/usr/lib/kannel/test/fakesmsc
for bin in /usr/sbin/bearerbox "$FAKESMSC" /usr/bin/python3; do
    [ -x "$bin" ] || { echo "needs $bin (apt-get install -y kannel kannel-extras python3)" >&2; exit 1; }
done
# RAPIDBOX_BIN=PATH runs that binary instead of a fresh release build.
if [ -z "${RAPIDBOX_BIN:-}" ]; then
    cargo build --release --quiet --bin rapidbox
fi
RAPIDBOX="${RAPIDBOX_BIN:-$PWD/target/release/rapidbox}"

source bench/lib.sh
start_bearerbox "$WORK"
HTTP_PORT=$(free_port); CB_PORT=$(free_port)
HASH=$(printf '%s\n' soak-password | "$RAPIDBOX" hash-password)
cat > "$WORK/rapidbox.toml" <<CONF
[store]
path = "$WORK/rapidbox.redb"
retention_max_messages = $KEEP
retention_every_secs = 30
[kannel]
port = $SMSBOX_PORT
dlr_mask = 27
[http]
listen = "127.0.0.1:$HTTP_PORT"
[router]
apps = ["echo"]
[apps.echo]
template = "You said: %a"
[[sendsms_users]]
username = "soak"
password = "soak"
[[console_users]]
username = "soak"
password_hash = "$HASH"
CONF
RUST_LOG=warn "$RAPIDBOX" run --config "$WORK/rapidbox.toml" > "$WORK/rapidbox.log" 2>&1 &
RB=$!; PIDS+=("$RB")
wait_port "$HTTP_PORT"
sleep 1

MOS=$(python3 -c "print(int($MO_RATE * $MINUTES * 60))")
"$FAKESMSC" -H 127.0.0.1 -r "$SMSC_PORT" -i "$(python3 -c "print(1 / $MO_RATE)")" -m "$MOS" \
    -z 5 "+256 5555 text soak mo " > "$WORK/fakesmsc.log" 2>&1 &
FS=$!; PIDS+=("$FS")

echo "soak: $MINUTES min; MOs $MO_RATE/s, sendsms ${SOAK_SENDSMS_RATE:-20}/s, receive ${SOAK_RECEIVE_RATE:-20}/s, console ${SOAK_CONSOLE_RATE:-2}/s; retention keeps $KEEP; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 bench/soak_load.py "$MINUTES" "$HTTP_PORT" "$ADMIN_PORT" "$RB" \
    "$WORK/rapidbox.redb" "$CB_PORT" | tee "$WORK/soak.out"
kill -TERM "$FS" 2>/dev/null || true

status_page() { curl -s "http://127.0.0.1:$ADMIN_PORT/status.txt?password=bench"; }
# Settled: nothing queued for or unacknowledged by the box, no MT waiting,
# no report owed.
echo "waiting for the bearerbox to settle..."
for _ in $(seq 300); do
    page=$(status_page)
    if echo "$page" | grep -q "received [0-9]* (0 queued), sent [0-9]* (0 queued)" \
        && echo "$page" | grep -q "DLR: 0 queued" \
        && ! echo "$page" | grep "smsbox:" | grep -vq "(0 queued)"; then
        break
    fi
    sleep 1
done
sleep 5
STATS=$(curl -s "http://127.0.0.1:$HTTP_PORT/router/stats")
MO_IN=$(status_page | sed -n 's/.*SMS: received \([0-9]*\) .*/\1/p')
kill -TERM "$RB"; wait "$RB" || true
VERIFY=$("$RAPIDBOX" verify "$WORK/rapidbox.redb" 2>&1 | tail -1)

/usr/bin/python3 - "$WORK/soak.out" "$MO_IN" "$STATS" "$VERIFY" <<'PY'
import json, sys
out, mo_in, stats, verify = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
totals = {}
for line in open(out):
    if line.startswith("TOTALS "):
        totals = dict(kv.split("=") for kv in line.split()[1:])
totals = {k: int(v) for k, v in totals.items()}
expected = 2 * mo_in + 2 * totals["receive_ok"] + totals["sendsms_ok"]
stored = stats["total"] + stats["store"]["purged"]
open_statuses = {f"{d}{s}": n for d, by in stats["messages"].items()
                 for s, n in by.items() if s in "RPLQIE" and n}
print(f"offered: {mo_in} MOs (bearerbox), {totals['receive_ok']} receives and "
      f"{totals['sendsms_ok']} sendsms answered well "
      f"({totals['receive_failed']} + {totals['sendsms_failed']} failed, "
      f"console {totals['console_ok']} ok / {totals['console_failed']} failed)")
print(f"messages expected {expected}, stored {stats['total']} + purged "
      f"{stats['store']['purged']} = {stored}: lost {max(0, expected - stored)}, "
      f"extra {max(0, stored - expected)}")
print(f"left open (R P L Q I E): {open_statuses or 'none'}")
print(f"dlr-url callbacks: {totals['callbacks']} for {totals['sendsms_ok']} sendsms "
      f"(one final report each)")
print(f"verify: {verify}")
failed = totals["receive_failed"] + totals["sendsms_failed"] + totals["console_failed"]
ok = (expected == stored and not open_statuses and failed == 0
      and totals["callbacks"] >= totals["sendsms_ok"] and ": ok," in verify)
print("SOAK " + ("PASSED" if ok else "FAILED"))
sys.exit(0 if ok else 1)
PY
