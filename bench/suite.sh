#!/usr/bin/env bash
# Every benchmark, rapidbox next to Kannel's smsbox, in one go on this
# machine, then one table (Markdown) of all their figures with the ratio
# rapidbox / smsbox under every pair. BENCHMARKS.md shows its output.
#
#   bash bench/suite.sh
#
# Runs, one after the other (about 3 minutes on 2 cores):
#   1. boxload, 20,000 MOs through a window of 100 (as fast as the box goes);
#   2. boxload at an offered 10,000 MOs/s (50,000 MOs, window 1,000);
#   3. bearerbox + fakesmsc -i 0, 50,000 MOs (bench/e2e.sh);
#   4. HTTP with wrk, 10 s each (bench/http.sh);
#   5. boxload, 1,000,000 MOs, every one and its reply kept in the store;
#   6. a get-url sms-service, 10,000 MOs, on nginx and on a 200 ms
#      application (bench/services.sh).
# Needs kannel, kannel-extras, wrk, nginx, bc and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

RESULTS="$(mktemp)"
export RESULTS
trap 'rm -f "$RESULTS"' EXIT

LABEL="boxload, window 100" bash bench/boxload.sh 20000 100
LABEL="boxload, 10,000 MOs/s offered" BOXLOAD_ARGS="--rate 10000" bash bench/boxload.sh 50000 1000
bash bench/e2e.sh 50000
bash bench/http.sh 10
LABEL="boxload, 1,000,000 MOs kept" bash bench/boxload.sh 1000000 100
bash bench/services.sh 10000 100

echo
python3 bench/table.py "$RESULTS"
