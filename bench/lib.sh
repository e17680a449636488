# Shared by the bench/ scripts: a scratch folder, the processes to stop,
# free ports, CPU accounting from /proc. Source it after `cd` to the repo.

WORK="$(mktemp -d)"
PIDS=()

# Stops every process started (TERM, then KILL) and removes the scratch
# (unless KEEP_WORK is set).
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    # KEEP_WORK=1 leaves the scratch folder (logs, store) for a look.
    if [ -n "${KEEP_WORK:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# CPU seconds (user + system) a process has used so far.
cpu_secs() {
    awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}

# Waits (up to 10 s) until something listens on 127.0.0.1:PORT.
wait_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "port $1 never opened" >&2; return 1
}

# Writes a Kannel configuration to DIR/kannel.conf and starts its bearerbox:
# a fake SMSC, smsbox-port, and an smsbox group (with a sendsms port and
# user) and static sms-service for Kannel's smsbox, should it be started on
# the same file. Sets BB (the bearerbox's pid), SMSBOX_PORT, SMSC_PORT and
# SENDSMS_PORT (and ADMIN_PORT, its admin-port, password "bench").
start_bearerbox() { # DIR
    local dir="$1" admin
    admin=$(free_port); SMSBOX_PORT=$(free_port); SMSC_PORT=$(free_port); SENDSMS_PORT=$(free_port)
    ADMIN_PORT=$admin
    cat > "$dir/kannel.conf" <<CONF
group = core
admin-port = $admin
admin-password = bench
admin-allow-ip = "127.0.0.1"
smsbox-port = $SMSBOX_PORT
box-allow-ip = "127.0.0.1"
dlr-storage = internal
log-file = "$dir/bearerbox.log"
log-level = 4

group = smsc
smsc = fake
smsc-id = fake
port = $SMSC_PORT
connect-allow-ip = "127.0.0.1"

group = smsbox
bearerbox-host = "127.0.0.1"
bearerbox-port = $SMSBOX_PORT
sendsms-port = $SENDSMS_PORT
log-file = "$dir/smsbox.log"
log-level = 4

group = sendsms-user
username = bench
password = bench

group = sms-service
keyword = default
text = "Got it"
max-messages = 1
CONF
    /usr/sbin/bearerbox "$dir/kannel.conf" > "$dir/bearerbox.out" 2>&1 &
    BB=$!; PIDS+=("$BB")
    wait_port "$SMSBOX_PORT"
}

# Peak resident memory of a running process, in KiB (VmHWM).
peak_rss_kb() {
    awk '/^VmHWM/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo "-"
}

# Appends one row to $RESULTS, when set, for bench/suite.sh's table:
#   record GROUP BOX MSGS_PER_S P50 P90 P99 MAX CPU_US_PER_MSG RSS_KB NOTE
# Latencies in ms; "-" for what the run cannot measure.
record() {
    [ -n "${RESULTS:-}" ] || return 0
    (IFS=$'\t'; echo "$*") >> "$RESULTS"
}

# boxload and the box under it, as bench/boxload.sh and bench/services.sh
# run them. Set BOXLOAD (and RAPIDBOX for start_rapidbox) first.

# Starts boxload playing the bearerbox on a free port: MESSAGES numbered
# MOs ("load test {n}") through a window of WINDOW, plus $BOXLOAD_ARGS;
# its report goes to DIR/report. Sets LOAD_PORT and LOAD (its pid).
start_boxload() { # DIR MESSAGES WINDOW
    local dir="$1"
    LOAD_PORT=$(free_port)
    # shellcheck disable=SC2086
    "$BOXLOAD" --listen "127.0.0.1:$LOAD_PORT" --messages "$2" --window "$3" \
        --text "load test {n}" --timeout 600 --allow-loss ${BOXLOAD_ARGS:-} \
        > "$dir/report" 2> "$dir/boxload.err" &
    LOAD=$!; PIDS+=("$LOAD")
    wait_port "$LOAD_PORT"
}

# Starts a box, COMMAND [ARGS...], under bench/rusage.py (its CPU, peak
# RSS and bytes written land in DIR/rusage when it exits); its output goes
# to DIR/box.log. Sets BOX (the pid).
# Writes DIR/smsbox.conf for an smsbox attached to boxload on PORT: its
# core group (which smsbox reads from the same file and must exist) and its
# smsbox group, then the sms-service groups given on stdin.
smsbox_conf() { # DIR PORT [SMSBOX-GROUP LINES...] < SERVICES
    local dir=$1 port=$2
    shift 2
    {
        printf 'group = core\nadmin-port = %s\nadmin-password = bench\nsmsbox-port = %s\n\n' \
            "$(free_port)" "$port"
        printf 'group = smsbox\nbearerbox-host = "127.0.0.1"\nbearerbox-port = %s\n' "$port"
        printf 'log-file = "%s/smsbox.log"\nlog-level = 4\n' "$dir"
        for line in "$@"; do printf '%s\n' "$line"; done
        printf '\n'
        cat
    } > "$dir/smsbox.conf"
}

start_box() { # DIR COMMAND [ARGS...]
    local dir="$1"; shift
    python3 bench/rusage.py "$dir/rusage" "$@" > "$dir/box.log" 2>&1 &
    BOX=$!; PIDS+=("$BOX")
}

# start_box for rapidbox on DIR/rapidbox.toml, logging warnings only.
start_rapidbox() { # DIR
    start_box "$1" env RUST_LOG=warn "$RAPIDBOX" run --config "$1/rapidbox.toml"
}

# Waits for boxload to end, then stops the box and reads what it used.
# boxload ends with an admin shutdown, as a bearerbox would; a box still
# running then gets SIGTERM. Its CPU and peak RSS over its whole life
# come from bench/rusage.py once it has exited. Sets BOX_CPU (seconds,
# user + sys), BOX_PEAK_KB, BOX_WRITTEN (bytes), BOX_USER and BOX_SYS.
finish_box() { # DIR
    wait "$LOAD" || true
    sleep 1
    kill -TERM "$BOX" 2>/dev/null || true
    wait "$BOX" || true
    read -r BOX_CPU BOX_PEAK_KB BOX_WRITTEN BOX_USER BOX_SYS < "$1/rusage"
}
