#!/usr/bin/env bash
# Overload (issue 13, item 6): boxload plays a bearerbox that offers far
# more than rapidbox can take (a window of 10,000 unacknowledged MOs where
# Kannel's default is 100, a million MOs, as fast as the window allows)
# to the release build of rapidbox (echo app, durable store). Every
# INTERVAL seconds it samples rapidbox's resident memory (VmRSS in
# /proc/PID/status) and open file descriptors (/proc/PID/fd), and prints
# the samples as a table. Then it checks what rapidbox promises:
#
#   - memory under LIMIT_MB (150) all along, and flat: once warmed up
#     (the first quarter of the samples left out), the peak of the later
#     half of the samples at most FLAT_PCT (20) % above the earlier half's;
#   - file descriptors flat: the largest sample at most FD_SLACK (8) above
#     the smallest (after the first sample, taken once connected);
#   - nothing lost: boxload's report has every MO offered acknowledged
#     (success, or failed_tmp: a bearerbox keeps those and offers them
#     again), none acknowledged success and left unanswered, none answered
#     twice; and the store holds exactly one MO per success ack.
#
#   bash bench/overload.sh [MESSAGES] [WINDOW] [INTERVAL]
#                                        (default 1000000 10000 5)
#
# LIMIT_MB, FLAT_PCT and FD_SLACK override the bounds. Exits 1 when a
# check fails. Timing is not checked: on a machine shared with compilers
# the run is slower but the bounds must hold all the same.
set -euo pipefail
cd "$(dirname "$0")/.."

N="${1:-1000000}"
WINDOW="${2:-10000}"
INTERVAL="${3:-5}"
LIMIT_MB="${LIMIT_MB:-150}"
FLAT_PCT="${FLAT_PCT:-20}"
FD_SLACK="${FD_SLACK:-8}"
# Replies that found the outbox's window full wait in the store for its
# next sweep (every 5 s, for messages over 10 s old): under overload they
# arrive with gaps longer than boxload's default 5 s of patience.
GRACE="${GRACE:-60}"

cargo build --release --quiet --bin rapidbox
cargo build --release --quiet -p boxload
RAPIDBOX="$PWD/target/release/rapidbox"
BOXLOAD="$PWD/target/release/boxload"

source bench/lib.sh

port=$(free_port)
http=$(free_port)
"$BOXLOAD" --listen "127.0.0.1:$port" --messages "$N" --window "$WINDOW" \
    --text "overload {n}" --timeout 3600 --grace "$GRACE" --allow-loss ${BOXLOAD_ARGS:-} \
    > "$WORK/report" 2> "$WORK/boxload.err" &
load=$!; PIDS+=("$load")
wait_port "$port"
cat > "$WORK/rapidbox.toml" <<CONF
[store]
path = "$WORK/rapidbox.redb"
[kannel]
port = $port
dlr_mask = 0
reconnect_min_ms = 200
[http]
listen = "127.0.0.1:$http"
[router]
apps = ["echo"]
[apps.echo]
template = "You said: %a"
CONF
env RUST_LOG=warn "$RAPIDBOX" run --config "$WORK/rapidbox.toml" > "$WORK/rapidbox.log" 2>&1 &
box=$!; PIDS+=("$box")
wait_port "$http"

echo "overload: $N MOs, window $WINDOW, sampling every ${INTERVAL}s, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%8s %10s %6s\n' secs rss_kb fds | tee "$WORK/samples"
start=$(date +%s)
# Sample until boxload is done (it ends the session once every MO is
# acknowledged and answered, or nothing moves for its grace period).
while kill -0 "$load" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$box/status" 2>/dev/null || echo 0)
    fds=$(ls "/proc/$box/fd" 2>/dev/null | wc -l)
    printf '%8d %10d %6d\n' "$(( $(date +%s) - start ))" "$rss" "$fds" | tee -a "$WORK/samples"
    sleep "$INTERVAL"
done
wait "$load" || true
elapsed=$(( $(date +%s) - start ))
peak_hwm=$(peak_rss_kb "$box")
stats=$(curl -s "http://127.0.0.1:$http/router/stats" || echo '{}')
kill -TERM "$box" 2>/dev/null || true
wait "$box" || true

echo "== boxload"
sed '$d' "$WORK/report"
echo "== rapidbox: peak RSS (VmHWM) $peak_hwm kB over ${elapsed}s"
echo "== checks"
REPORT_JSON="$(tail -n 1 "$WORK/report")" STATS_JSON="$stats" \
SAMPLES="$WORK/samples" LIMIT_MB="$LIMIT_MB" FLAT_PCT="$FLAT_PCT" FD_SLACK="$FD_SLACK" \
PEAK_HWM="$peak_hwm" python3 - <<'PY'
import json, os, sys

report = json.loads(os.environ["REPORT_JSON"])
stats = json.loads(os.environ["STATS_JSON"] or "{}")
rows = [l.split() for l in open(os.environ["SAMPLES"]).read().splitlines()[1:]]
rss = [int(r[1]) for r in rows if int(r[1]) > 0]
fds = [int(r[2]) for r in rows if int(r[2]) > 0]
limit_kb = int(os.environ["LIMIT_MB"]) * 1024
flat_pct = int(os.environ["FLAT_PCT"])
fd_slack = int(os.environ["FD_SLACK"])
hwm = os.environ["PEAK_HWM"]
problems = []

acks = report.get("acks", {})
success = acks.get("success", 0)
stored_mos = sum(stats.get("messages", {}).get("I", {}).values())
print(f"offered {report['offered']}, acked {report['acked']} ({acks}), unacked "
      f"{report['unacked']}, lost {report['lost']}, answered {report['replies']}, "
      f"duplicated {report['duplicated']}, end {report['end']}; rapidbox stored "
      f"{stored_mos} MOs; ack rate {report['ack_rate']:.0f}/s")
if report["unacked"]:
    problems.append(f"{report['unacked']} MOs never acknowledged")
if report["lost"]:
    problems.append(f"{report['lost']} MOs acknowledged success and never answered")
if report["duplicated"]:
    problems.append(f"{report['duplicated']} MOs answered twice")
if report["offered"] != report["acked"]:
    problems.append(f"offered {report['offered']} but acked {report['acked']}")
if stored_mos != success:
    problems.append(f"{success} MOs acked success but {stored_mos} stored")

if rss:
    peak = max(rss)
    warm = rss[len(rss) // 4:]
    half = len(warm) // 2
    first, second = max(warm[:half] or warm), max(warm[half:])
    print(f"RSS: samples {len(rss)}, min {min(rss)} kB, peak {peak} kB (VmHWM {hwm} kB); "
          f"after warm-up: earlier-half peak {first} kB, later-half peak {second} kB")
    if peak > limit_kb or (hwm.isdigit() and int(hwm) > limit_kb):
        problems.append(f"memory over {limit_kb} kB")
    if second > first * (100 + flat_pct) / 100:
        problems.append(f"memory grows: second-half peak {second} kB > first-half {first} kB + {flat_pct}%")
else:
    problems.append("no RSS sample")
if fds:
    steady = fds[1:] or fds
    print(f"fds: min {min(steady)}, max {max(steady)} (first sample {fds[0]})")
    if max(steady) - min(steady) > fd_slack:
        problems.append(f"open files not flat: {min(steady)}..{max(steady)}")
for p in problems:
    print(f"FAIL: {p}")
print("PASS" if not problems else "FAILED")
sys.exit(1 if problems else 0)
PY
