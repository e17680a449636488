#!/usr/bin/env bash
# rapidbox killed (SIGKILL) in a loop at random moments under a stream of
# MOs through a real bearerbox and fakesmsc, with delivery reports and a
# dlr-url callback for every reply, then checked: no MO lost or stored
# twice, repeated replies within kannel.max_in_flight per kill, every
# callback made, the store verified. The test is tests/crash_loop.rs
# (killed_in_a_loop_long); its short variants run with the suite.
#
#   bash bench/crashloop.sh [MOS] [KILLS]        (default 100000 20)
#
# Environment (all optional):
#   CRASHLOOP_RATE=600      MOs offered per second (fakesmsc -i); 0: flat out.
#                           The stream must outlast the kills: a faster box
#                           needs a lower rate or shorter uptimes
#   CRASHLOOP_STOP=term     SIGTERM instead of SIGKILL (then: no repeats at all)
#   CRASHLOOP_SEED=N        the kill moments of an earlier run
#   CRASHLOOP_UPTIME_MIN=1 CRASHLOOP_UPTIME_MAX=4   seconds each rapidbox runs
#   CRASHLOOP_DOWNTIME_MAX=1                        seconds it stays down
#   CRASHLOOP_MAX_IN_FLIGHT=32
#   PROFILE=debug           run the debug rapidbox (no release build)
#   RAPIDBOX_BIN=PATH       run that rapidbox (no build)
#
# Prints the run's FIGURES line (the numbers in RELIABILITY.md) and the
# verdict; the whole output goes to target/crashloop.log.
set -euo pipefail
cd "$(dirname "$0")/.."

export CRASHLOOP_MOS="${1:-100000}"
export CRASHLOOP_KILLS="${2:-20}"
for bin in /usr/sbin/bearerbox /usr/lib/kannel/test/fakesmsc; do
    [ -x "$bin" ] || { echo "needs Kannel: apt-get install -y kannel kannel-extras" >&2; exit 1; }
done
if [ -z "${RAPIDBOX_BIN:-}" ] && [ "${PROFILE:-release}" = release ]; then
    cargo build --release --quiet --bin rapidbox
    export RAPIDBOX_BIN="$PWD/target/release/rapidbox"
fi
log=target/crashloop.log
mkdir -p target
echo "crash loop: $CRASHLOOP_MOS MOs, $CRASHLOOP_KILLS stops (${CRASHLOOP_STOP:-kill}), rapidbox ${RAPIDBOX_BIN:-debug build}; log in $log"
status=0
cargo test -p rapidbox --test crash_loop killed_in_a_loop_long -- \
    --ignored --exact --nocapture > "$log" 2>&1 || status=$?
grep -h "FIGURES" "$log" | sed 's/ | /\n  /g' || true
if [ "$status" -ne 0 ]; then
    grep -h -A20 "problems:" "$log" || tail -40 "$log"
    echo "FAILED (exit $status)"
else
    echo "passed"
fi
exit "$status"
