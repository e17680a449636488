#!/usr/bin/env bash
# The box alone under load, without a bearerbox or an SMSC: boxload plays
# the bearerbox (offers numbered MOs through a window, acks the replies) and
# measures MO->ack and MO->reply for rapidbox (echo app, durable store) and
# for Kannel's smsbox (a text sms-service that quotes the MO), one after
# the other with the same N and window.
#
#   bash bench/boxload.sh [MESSAGES] [WINDOW]      (default 20000, 100)
#
# BOXLOAD_ARGS adds boxload options (e.g. "--rate 10000"); BOXES picks the
# boxes ("rapidbox" alone, say); STORE_TOML adds lines to rapidbox's
# [store] (e.g. "journal = false"); RAPIDBOX_BIN runs that binary instead
# of building this tree's. Prints each box's boxload report (text)
# with its peak RSS and, for rapidbox, the store's size per message; then
# both JSON lines.
set -euo pipefail
cd "$(dirname "$0")/.."

N="${1:-20000}"
WINDOW="${2:-100}"
[ -x /usr/sbin/smsbox ] || { echo "needs Kannel: apt-get install -y kannel" >&2; exit 1; }
# RAPIDBOX_BIN runs another build of rapidbox (an A/B of two commits).
if [ -z "${RAPIDBOX_BIN:-}" ]; then
    cargo build --release --quiet --bin rapidbox
fi
cargo build --release --quiet -p boxload
RAPIDBOX="${RAPIDBOX_BIN:-$PWD/target/release/rapidbox}"
BOXLOAD="$PWD/target/release/boxload"

source bench/lib.sh

run_one() { # NAME
    local name="$1" dir="$WORK/$1"
    mkdir -p "$dir"
    start_boxload "$dir" "$N" "$WINDOW"
    local port=$LOAD_PORT
    if [ "$name" = rapidbox ]; then
        cat > "$dir/rapidbox.toml" <<CONF
[store]
path = "$dir/rapidbox.redb"
${STORE_TOML:-}
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
        start_rapidbox "$dir"
    else
        smsbox_conf "$dir" "$port" <<CONF
group = sms-service
keyword = default
text = "You said: %a"
max-messages = 1
CONF
        start_box "$dir" /usr/sbin/smsbox "$dir/smsbox.conf"
    fi
    finish_box "$dir"
    local cpu=$BOX_CPU peak=$BOX_PEAK_KB written=$BOX_WRITTEN user=$BOX_USER sys=$BOX_SYS
    echo "== $name"
    sed '$d' "$dir/report"
    echo "peak RSS: $peak kB; CPU: $cpu s (user $user, sys $sys); written to storage: $written bytes = $((written / N)) per MO"
    local note="-"
    if [ "$name" = rapidbox ]; then
        local bytes
        bytes=$(stat -c %s "$dir/rapidbox.redb")
        echo "store: $bytes bytes for $N MOs and $N replies = $((bytes / (2 * N))) bytes per message"
        note="store: $((bytes / (2 * N))) bytes/message"
    fi
    # Two rows for bench/suite.sh: MO->ack and MO->reply, each with its
    # latencies; CPU is all the box used since it started, per MO.
    local what
    for what in ack reply; do
        # shellcheck disable=SC2046
        record "${LABEL:-boxload} MO->$what" "$name" \
            $(python3 bench/report_row.py "$dir/report" "$what" "$cpu") "$peak" "$note"
    done
}

echo "boxload: $N MOs, window $WINDOW, $(nproc) cores"
for box in ${BOXES:-smsbox rapidbox}; do
    run_one "$box"
done
echo "== JSON"
for box in ${BOXES:-smsbox rapidbox}; do
    echo "$box $(tail -n 1 "$WORK/$box/report")"
done
