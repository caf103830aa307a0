#!/usr/bin/env bash
# One noisy institution throttled while another's latency holds (issue 13; BENCHMARKS.md, "Rate limits").
#
# Starts the shipped hub (profile dist) on demo data (SQLite, scale 1) and drives, with wrk, the regional dashboard of two ARS at
# once: a noisy one (ARS 84, NOISY_CONNECTIONS connections) and a quiet one (ARS 11, QUIET_CONNECTIONS connections,
# each waiting QUIET_DELAY_MS between its requests, as dashboards polling do; wrk's latencies do not count the wait).
# The noisy institution comes in two strengths: a runaway client (each connection waiting NOISY_DELAY_MS between
# requests: with the defaults it offers ~60 times its quota) and a flood (no wait at all: as many requests as wrk can
# send, which on one machine takes a core from the hub). Four runs of DURATION seconds each:
#   1. the quiet institution alone;
#   2. beside the runaway noisy one, rate limits on (CNH_RATE_LIMIT_READS=READS query points per minute per
#      institution);
#   3. beside the noisy flood, limits on;
#   4. beside the runaway noisy one, without limits (the hub restarted with CNH_RATE_LIMIT_READS=0): what the
#      limits spare the quiet institution.
# It prints req/s and p50/p99 for each, and the noisy institution's refusals (429).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
NOISY_CONNECTIONS=${NOISY_CONNECTIONS:-28}
QUIET_CONNECTIONS=${QUIET_CONNECTIONS:-4}
READS=${READS:-120000}
QUIET_DELAY_MS=${QUIET_DELAY_MS:-100}
NOISY_DELAY_MS=${NOISY_DELAY_MS:-10}
PORT=${PORT:-18190}
HUB_CPU=()
CLIENT_CPU=()
if [ "${PIN:-}" = 1 ]; then HUB_CPU=(taskset -c 0); CLIENT_CPU=(taskset -c 1); fi
NOISY_PRIORITY=()
if [ "${NICE:-}" = 1 ]; then NOISY_PRIORITY=(nice -n 19); fi
TARGET=${CARGO_TARGET_DIR:-target}
BIN=$TARGET/dist/cnh-hub
LOAD_DIR=benches/load
SECRET=rate-limits-script-secret-of-the-development-issuer-0123
HUB=http://127.0.0.1:$PORT
say() { printf '==> %s\n' "$*" >&2; }

for tool in wrk jq curl; do
  command -v "$tool" >/dev/null || { say "installing $tool"; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null; }
done
[ "${SKIP_BUILD:-}" = 1 ] || { say "building the shipped hub (profile dist)"; cargo build --profile dist --bin cnh-hub >&2; }
WORK=$(mktemp -d)
HUB_PID=
cleanup() { [ -z "$HUB_PID" ] || kill "$HUB_PID" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
export DATABASE_URL="sqlite://$WORK/hub.db?mode=rwc"
say "loading the demo data"
CNH_LOG=warn "$BIN" demo --scale 1 >&2

start_hub() {
  [ -z "$HUB_PID" ] || { kill "$HUB_PID"; wait "$HUB_PID" 2>/dev/null || true; }
  CNH_LOG=warn CNH_LISTEN=127.0.0.1:$PORT CNH_DEV_JWT_SECRET=$SECRET CNH_RATE_LIMIT_READS=$1 "${HUB_CPU[@]}" "$BIN" serve >"$WORK/hub.log" 2>&1 &
  HUB_PID=$!
  for _ in $(seq 1 300); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "$HUB/readyz")" = 200 ] && return 0
    sleep 0.2
  done
  cat "$WORK/hub.log" >&2
  exit 1
}
token() { CNH_DEV_JWT_SECRET=$SECRET "$BIN" token "$@" --ttl 1h 2>/dev/null | tail -n 1; }
NOISY=$(token --role ars --region 84)
QUIET=$(token --role ars --region 11)
sed 's/"84"/"11"/' "$LOAD_DIR/dashboard.graphql" >"$WORK/quiet.graphql"
cat >"$WORK/paced.lua" <<LUA
dofile("$PWD/$LOAD_DIR/dashboard_unique.lua")
function delay() return $QUIET_DELAY_MS end
LUA
cat >"$WORK/runaway.lua" <<LUA
dofile("$PWD/$LOAD_DIR/dashboard_unique.lua")
function delay() return $NOISY_DELAY_MS end
LUA

# drive <name> <token> <connections> <query file> [script]: one wrk run into $WORK/<name>.out.
drive() {
  local priority=()
  [[ $1 != noisy* ]] || priority=("${NOISY_PRIORITY[@]}")
  RUN_TAG="${1//-/_}$RANDOM" TOKEN=$2 "${priority[@]}" "${CLIENT_CPU[@]}" wrk -t1 -c"$3" -d"${DURATION}s" --latency -s "${5:-$LOAD_DIR/dashboard_unique.lua}" \
    "$HUB" -- "$4" >"$WORK/$1.out"
}
quiet() { drive "$1" "$QUIET" "$QUIET_CONNECTIONS" "$WORK/quiet.graphql" "$WORK/paced.lua"; }
field() { sed -n -E "s/^RESULT( .*)? $2=([^ ]*).*/\2/p" "$WORK/$1.out"; }
row() { printf '| %s | %s | %.0f | %.1f | %.1f | %s |\n' "$1" "$2" "$(field "$3" rps)" "$(field "$3" p50_ms)" "$(field "$3" p99_ms)" "$(field "$3" non2xx)"; }

# check <token> <query file>: the query answers without errors (a wrong query would be refused cheaply and prove
# nothing).
check() {
  local query
  query=$(sed 's/ALIAS/check/' "$2")
  jq -cn --arg q "$query" '{query: $q}' |
    curl -sS -H 'content-type: application/json' -H "authorization: Bearer $1" --data-binary @- "$HUB/graphql" >"$WORK/check.json"
  jq -e 'has("errors") | not' "$WORK/check.json" >/dev/null || { head -c 600 "$WORK/check.json" >&2; exit 1; }
}
start_hub "$READS"
check "$QUIET" "$WORK/quiet.graphql"
check "$NOISY" "$LOAD_DIR/dashboard.graphql"
say "warm-up"
DURATION=3 quiet warmup
say "1. the quiet institution alone"
quiet alone
noisy() { drive "$1" "$NOISY" "$NOISY_CONNECTIONS" "$LOAD_DIR/dashboard.graphql" "${2:-}"; }
say "2. beside the runaway noisy one ($NOISY_DELAY_MS ms between its requests), limits on ($READS points per minute per institution)"
noisy noisy-runaway-limited "$WORK/runaway.lua" &
noisy=$!
quiet quiet-runaway-limited
wait "$noisy"
say "3. beside the noisy flood, limits on"
noisy noisy-flood-limited &
noisy=$!
quiet quiet-flood-limited
wait "$noisy"
start_hub 0
DURATION=3 quiet warmup
say "4. beside the runaway noisy one, no limits"
noisy noisy-runaway-unlimited "$WORK/runaway.lua" &
noisy=$!
quiet quiet-runaway-unlimited
wait "$noisy"

echo
echo "Rate limits: $(nproc) cores${PIN:+ (hub on CPU 0, clients on CPU 1)}${NICE:+ (noisy wrk at nice 19)}, demo scale 1, SQLite, ${DURATION} s per run, dashboard query (coFinancingStatus, 50 measures)"
echo
echo "| run | institution | req/s | p50 ms | p99 ms | refused (429) |"
echo "|---|---|---|---|---|---|"
row "1. alone" "quiet (ARS 11, $QUIET_CONNECTIONS conn.)" alone
row "2. runaway, limits on" "quiet" quiet-runaway-limited
row "2. runaway, limits on" "noisy (ARS 84, $NOISY_CONNECTIONS conn., $NOISY_DELAY_MS ms apart)" noisy-runaway-limited
row "3. flood, limits on" "quiet" quiet-flood-limited
row "3. flood, limits on" "noisy (ARS 84, $NOISY_CONNECTIONS conn., no wait)" noisy-flood-limited
row "4. runaway, no limits" "quiet" quiet-runaway-unlimited
row "4. runaway, no limits" "noisy (ARS 84, $NOISY_CONNECTIONS conn., $NOISY_DELAY_MS ms apart)" noisy-runaway-unlimited
