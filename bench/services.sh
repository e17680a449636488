#!/usr/bin/env bash
# A Kannel `get-url` sms-service under load, rapidbox beside Kannel's
# smsbox: boxload plays the bearerbox (offers numbered MOs through a
# window, acks the replies); the service fetches an HTTP application whose
# answer is the reply. Two applications:
#
#   instant  nginx (Debian's, run unprivileged on a scratch prefix)
#            answering at once with "You said: $arg_text";
#   slow     boxload's `slowapp`, answering the same after 200 ms
#            (thousands of requests wait at once).
#
# smsbox runs on an smsbox.conf with one service,
#   get-url = "http://127.0.0.1:PORT/sms?text=%a"
# and rapidbox on what `rapidbox import-kannel-conf` makes of the same
# file (plus a [store] path in the scratch folder and a free HTTP port):
# the same service, the same smsbox keys, nothing tuned by hand.
#
#   bash bench/services.sh [MESSAGES] [WINDOW]     (default 20000, 100)
#
# WINDOW is the bearerbox's smsbox-max-pending (Kannel's default: 100).
# CASES picks the applications ("instant slow"), BOXES the boxes
# ("smsbox rapidbox"), DELAY_MS the slow one's delay (200), BOXLOAD_ARGS
# adds boxload options, RAPIDBOX_BIN runs that binary instead of building
# this tree's. Prints each run's boxload report, the box's CPU
# and peak RSS, and for rapidbox what `rapidbox verify` finds in the store
# (every MO and every reply: 2 x MESSAGES); rows for bench/suite.sh's
# table through bench/lib.sh's `record`.
set -euo pipefail
cd "$(dirname "$0")/.."

N="${1:-20000}"
WINDOW="${2:-100}"
DELAY_MS="${DELAY_MS:-200}"
NGINX="${NGINX:-/usr/sbin/nginx}"
[ -x /usr/sbin/smsbox ] || { echo "needs Kannel: apt-get install -y kannel" >&2; exit 1; }
[ -x "$NGINX" ] || { echo "needs nginx: apt-get install -y nginx" >&2; exit 1; }
# RAPIDBOX_BIN runs another build of rapidbox (an A/B of two commits).
if [ -z "${RAPIDBOX_BIN:-}" ]; then
    cargo build --release --quiet --bin rapidbox
fi
cargo build --release --quiet -p boxload --bins
RAPIDBOX="${RAPIDBOX_BIN:-$PWD/target/release/rapidbox}"
BOXLOAD="$PWD/target/release/boxload"
SLOWAPP="$PWD/target/release/slowapp"

source bench/lib.sh

# Starts nginx as this user on a free port with its own prefix in DIR;
# sets APP_PORT. The answer quotes the MO (boxload matches replies by the
# number in the MO's text); `return` makes it without touching a file.
start_nginx() { # DIR
    local dir="$1"
    APP_PORT=$(free_port)
    mkdir -p "$dir/nginx/logs" "$dir/nginx/tmp"
    cat > "$dir/nginx/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/nginx/tmp/body;
    proxy_temp_path $dir/nginx/tmp/proxy;
    fastcgi_temp_path $dir/nginx/tmp/fastcgi;
    uwsgi_temp_path $dir/nginx/tmp/uwsgi;
    scgi_temp_path $dir/nginx/tmp/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:$APP_PORT;
        location / {
            default_type text/plain;
            return 200 "You said: \$arg_text";
        }
    }
}
CONF
    "$NGINX" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -e "$dir/nginx/logs/error.log" \
        > "$dir/nginx/out" 2>&1 &
    APP=$!; PIDS+=("$APP")
    wait_port "$APP_PORT"
}

# Starts slowapp on a free port; sets APP_PORT.
start_slowapp() { # DIR
    APP_PORT=$(free_port)
    "$SLOWAPP" --listen "127.0.0.1:$APP_PORT" --delay-ms "$DELAY_MS" > "$1/slowapp.out" 2>&1 &
    APP=$!; PIDS+=("$APP")
    wait_port "$APP_PORT"
}

run_one() { # CASE NAME
    local case="$1" name="$2" dir="$WORK/$1-$2"
    mkdir -p "$dir"
    if [ "$case" = instant ]; then start_nginx "$dir"; else start_slowapp "$dir"; fi
    local app=$APP
    start_boxload "$dir" "$N" "$WINDOW"
    local port=$LOAD_PORT
    # max-pending-requests is smsbox's default, written out to show the
    # bound.
    smsbox_conf "$dir" "$port" "max-pending-requests = 512" <<CONF
group = sms-service
keyword = default
get-url = "http://127.0.0.1:$APP_PORT/sms?text=%a"
max-messages = 1
CONF
    if [ "$name" = rapidbox ]; then
        "$RAPIDBOX" import-kannel-conf "$dir/smsbox.conf" > "$dir/rapidbox.toml"
        # Where to store, and an HTTP port of its own (smsbox served none
        # here, and rapidbox's default 127.0.0.1:8080 may be taken).
        printf '\n[store]\npath = "%s"\n[http]\nlisten = "127.0.0.1:0"\n' \
            "$dir/rapidbox.redb" >> "$dir/rapidbox.toml"
        "$RAPIDBOX" check-config "$dir/rapidbox.toml" > "$dir/check" 2>&1 \
            || { cat "$dir/check" >&2; exit 1; }
        start_rapidbox "$dir"
    else
        start_box "$dir" /usr/sbin/smsbox "$dir/smsbox.conf"
    fi
    finish_box "$dir"
    local app_cpu
    app_cpu=$(cpu_secs "$app" 2>/dev/null || echo "?")
    kill -TERM "$app" 2>/dev/null || true
    wait "$app" 2>/dev/null || true
    local cpu=$BOX_CPU peak=$BOX_PEAK_KB
    echo "== $case application, $name"
    sed '$d' "$dir/report"
    echo "peak RSS: $peak kB; CPU: $cpu s (the application: $app_cpu s)"
    local note="-"
    if [ "$name" = rapidbox ]; then
        local verified
        verified=$("$RAPIDBOX" verify "$dir/rapidbox.redb" 2>&1 | tail -n 1)
        echo "store: $verified (every MO and its reply: $((2 * N)) messages)"
        note="store: $(sed -n 's/.* \([0-9]*\) message(s).*/\1/p' <<< "$verified") of $((2 * N)) messages"
    fi
    # Two rows for bench/suite.sh: MO->ack and MO->reply; CPU is all the
    # box used since it started, per MO.
    local what
    for what in ack reply; do
        # shellcheck disable=SC2046
        record "get-url, $case application, window $WINDOW: MO->$what" "$name" \
            $(python3 bench/report_row.py "$dir/report" "$what" "$cpu") "$peak" "$note"
    done
}

echo "services: get-url, $N MOs, window $WINDOW, slow application $DELAY_MS ms, $(nproc) cores"
for case in ${CASES:-instant slow}; do
    for box in ${BOXES:-smsbox rapidbox}; do
        run_one "$case" "$box"
    done
done
echo "== JSON"
for case in ${CASES:-instant slow}; do
    for box in ${BOXES:-smsbox rapidbox}; do
        echo "$case $box $(tail -n 1 "$WORK/$case-$box/report")"
    done
done
