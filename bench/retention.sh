#!/usr/bin/env bash
# Retention soak: rapidbox (echo app, durable store) under a steady MO load
# from boxload, with [store] retention_max_messages set, sampling the store
# file's size as it runs. With retention, the file grows until the store
# holds about the maximum, then stays: redb reuses the pages each purge
# frees. RETENTION=0 runs the same load without retention, to compare.
#
#   bash bench/retention.sh [SECONDS] [RATE] [MAX_MESSAGES]
#                                      (default 120, 2000 MOs/s, 50000)
#
# Every MO stores two messages (the MO and its echo), so the store reaches
# MAX_MESSAGES after MAX_MESSAGES / (2 * RATE) seconds. PROFILE=debug uses
# debug builds (slower; sizes behave the same). Prints one "seconds bytes"
# line per sample (every SAMPLE seconds, default 2), then boxload's report,
# rapidbox's totals (purged, purge transactions, the time they took), and
# a summary: the largest size, and the growth over the second half.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS="${1:-120}"
RATE="${2:-2000}"
MAX="${3:-50000}"
SAMPLE="${SAMPLE:-2}"
PROFILE="${PROFILE:-release}"
N=$((SECS * RATE))

if [ "$PROFILE" = release ]; then
    cargo build --release --quiet --bin rapidbox -p rapidbox
    cargo build --release --quiet -p boxload
else
    cargo build --quiet --bin rapidbox -p rapidbox
    cargo build --quiet -p boxload
fi
RAPIDBOX="$PWD/target/$PROFILE/rapidbox"
BOXLOAD="$PWD/target/$PROFILE/boxload"

source bench/lib.sh

port=$(free_port)
"$BOXLOAD" --listen "127.0.0.1:$port" --messages "$N" --rate "$RATE" --window 100 \
    --text "soak {n}" --timeout $((SECS * 3 + 60)) --allow-loss --json \
    > "$WORK/report" 2> "$WORK/boxload.err" &
load=$!; PIDS+=("$load")
wait_port "$port"

retention=""
if [ "${RETENTION:-1}" != 0 ]; then
    retention="retention_max_messages = $MAX
retention_every_secs = 1"
fi
cat > "$WORK/rapidbox.toml" <<CONF
[store]
path = "$WORK/rapidbox.redb"
$retention
[kannel]
port = $port
dlr_mask = 0
reconnect_min_ms = 200
[http]
listen = "127.0.0.1:0"
[router]
apps = ["echo"]
[apps.echo]
template = "You said: %a"
CONF
env RUST_LOG=warn,rapidbox::store=info,rapidbox::daemon=info NO_COLOR=1 "$RAPIDBOX" run --config "$WORK/rapidbox.toml" \
    > "$WORK/box.log" 2>&1 &
box=$!; PIDS+=("$box")

echo "retention soak: $N MOs at $RATE/s over ${SECS}s, max $MAX messages" \
    "(retention ${RETENTION:-1}), $(nproc) cores, $PROFILE build"
echo "seconds bytes"
start=$(date +%s)
samples="$WORK/samples"
: > "$samples"
while kill -0 "$load" 2>/dev/null; do
    now=$(($(date +%s) - start))
    size=$(stat -c %s "$WORK/rapidbox.redb" 2>/dev/null || echo 0)
    echo "$now $size" | tee -a "$samples"
    sleep "$SAMPLE"
done
wait "$load" || true
kill -TERM "$box" 2>/dev/null || true
wait "$box" || true

echo "== boxload"
tail -n 1 "$WORK/report"
echo "== rapidbox's retention log (last lines)"
grep -i "retention" "$WORK/box.log" | tail -n 3 || true
echo "== rapidbox's totals (purge: time in purge transactions, which units wait for)"
grep "rapidbox stopped" "$WORK/box.log" || true
echo "== summary"
awk -v secs="$SECS" '
    { t[NR] = $1; s[NR] = $2; if ($2 > max) max = $2 }
    END {
        half = 0
        for (i = 1; i <= NR; i++) if (t[i] >= secs / 2 && half == 0) half = i
        if (half == 0) half = NR
        printf "largest: %d bytes; at half time (%ds): %d; at the end (%ds): %d; growth over the second half: %d bytes\n",
            max, t[half], s[half], t[NR], s[NR], s[NR] - s[half]
    }' "$samples"
