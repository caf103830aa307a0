#!/usr/bin/env bash
# Load figures of the hub beside a bare axum handler, with wrk (issue 12; BENCHMARKS.md, "Load").
#
#   benches/load.sh                                                         # a fresh SQLite file, demo at scale 1
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres benches/load.sh  # a fresh database on that server
#   SCALE=10 DURATION=20 benches/load.sh
#
# Builds the shipped binaries (profile dist, unless SKIP_BUILD=1; CARGO_TARGET_DIR is honoured), loads the demo programming into a
# fresh store (SQLite file in a temporary directory, or a database cnh_load_<timestamp> created with psql on the
# server DATABASE_URL names, dropped at exit), serves it, and drives the hub and a bare axum handler serving the hub's
# own answer bytes (examples/bare_handler.rs) with wrk, one scenario after another (benches/load/*.lua):
#   a. the region-84 dashboard (benches/load/dashboard.graphql) under a different alias at every request;
#   b. the same dashboard request, the same bytes every time;
#   c. { me { role } };
#   d. reads (a) and writes (upsertMeasure, then commit on the measure created) at once, in two wrk processes:
#      writes spread over several regions, then all in region 84; every acknowledged write is looked up afterwards.
# Prints a markdown report on standard output (progress goes to standard error).
#
# Settings: SCALE (demo volume, 1), DURATION (seconds per measured wrk run, 8), WARMUP (seconds of a discarded run
# before each measured one of a-c, 1), CONNECTIONS (32), WRITE_CONNECTIONS (of those, the writers of d; auto: the
# number that makes about WRITE_SHARE % of the requests writes, from a 2-second probe, at most a quarter of them),
# WRITE_SHARE (5), READ_PAUSE_MS (scenario d: each reading connection's pause between an answer and its next
# request, as a dashboard's user reads before asking again; auto: when the writers alone cannot make WRITE_SHARE %
# of the requests — reads answered faster than writes can keep up with — the pause that slows the readers down to
# it, from a second 2-second probe; 0: readers ask again at once),
# TIMEOUT (seconds wrk waits for an answer before counting a socket error, 10),
# MULTI_REGION_TARGETS / REGION_84_TARGETS (the region:département pairs the writers of d cycle through),
# PORT (the hub's, 18180; the bare handlers take the next three), SKIP_BUILD=1, KEEP=1 (keep the temporary directory,
# with the hub's log and wrk's outputs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STARTED=$SECONDS

# The command as it was given, with the settings that were set (a password in DATABASE_URL masked).
COMMAND=""
for name in SCALE DURATION WARMUP CONNECTIONS WRITE_CONNECTIONS WRITE_SHARE READ_PAUSE_MS MULTI_REGION_TARGETS REGION_84_TARGETS PORT TIMEOUT \
  SKIP_BUILD CARGO_TARGET_DIR DATABASE_URL; do
  if [ -n "${!name+set}" ] && [ -n "${!name}" ]; then
    value=${!name}
    [ "$name" = DATABASE_URL ] && value=$(printf '%s' "$value" | sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#')
    [[ $value =~ [[:space:]] ]] && value="'$value'"
    COMMAND+="$name=$value "
  fi
done
COMMAND+="benches/load.sh"

SCALE=${SCALE:-1}
DURATION=${DURATION:-8}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-32}
WRITE_CONNECTIONS=${WRITE_CONNECTIONS:-auto}
WRITE_SHARE=${WRITE_SHARE:-5}
READ_PAUSE_MS=${READ_PAUSE_MS:-auto}
PORT=${PORT:-18180}
TIMEOUT=${TIMEOUT:-10}
MULTI_REGION_TARGETS=${MULTI_REGION_TARGETS:-"84:38 11:77 24:37 32:59 44:54 53:35 75:33 76:31"}
REGION_84_TARGETS=${REGION_84_TARGETS:-"84:01 84:03 84:07 84:15 84:26 84:38 84:42 84:43 84:63 84:73 84:74"}
LOAD_DIR=$ROOT/benches/load
QUERY_FILE=$LOAD_DIR/dashboard.graphql
HUB=http://127.0.0.1:$PORT
# The development issuer, for this run only.
DEV_SECRET=load-script-secret-of-the-development-issuer-0123456789

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'load.sh: %s\n' "$*" >&2; exit 1; }

for name in SCALE DURATION WARMUP CONNECTIONS PORT TIMEOUT; do
  [[ ${!name} =~ ^[0-9]+$ ]] || die "$name must be a whole number, not « ${!name} »"
done
[[ $WRITE_SHARE =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v s="$WRITE_SHARE" 'BEGIN { exit !(s > 0 && s < 100) }' ||
  die "WRITE_SHARE must be a percentage, above 0 and below 100"
[ "$WRITE_CONNECTIONS" = auto ] || { [[ $WRITE_CONNECTIONS =~ ^[0-9]+$ ]] && [ "$WRITE_CONNECTIONS" -ge 1 ] &&
  [ "$WRITE_CONNECTIONS" -lt "$CONNECTIONS" ]; } ||
  die "WRITE_CONNECTIONS must be auto, or at least 1 and less than CONNECTIONS"
[ "$CONNECTIONS" -ge 4 ] || die "CONNECTIONS must be at least 4"
[ "$READ_PAUSE_MS" = auto ] || [[ $READ_PAUSE_MS =~ ^[0-9]+$ ]] || die "READ_PAUSE_MS must be auto or a whole number"

# --- Tools: wrk, curl and jq from Debian packages when missing (psql too, for a PostgreSQL run).
missing=()
for tool in wrk curl jq; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ -n "${DATABASE_URL:-}" ] && ! command -v psql >/dev/null; then missing+=(postgresql-client); fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} (apt-get)"
  SUDO=(); [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
  "${SUDO[@]}" apt-get install -y "${missing[@]}" >&2 ||
    { "${SUDO[@]}" apt-get update >&2 && "${SUDO[@]}" apt-get install -y "${missing[@]}" >&2; }
fi

# --- Binaries.
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/dist/cnh-hub
BARE=$TARGET/dist/examples/bare_handler
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  say "building the shipped binaries (profile dist: cnh-hub, examples/bare_handler)"
  cargo build --profile dist --bin cnh-hub --example bare_handler >&2
fi
[ -x "$BIN" ] && [ -x "$BARE" ] || die "no $BIN or $BARE: build them, or run without SKIP_BUILD=1"

# --- Everything started is stopped at exit; the scratch database is dropped.
WORK=$(mktemp -d "${TMPDIR:-/tmp}/cnh-load.XXXXXX")
PIDS=()
# forget <pid>: a process waited for is no longer ours to stop (its id may be reused).
forget() {
  local kept=() pid
  for pid in "${PIDS[@]}"; do [ "$pid" = "$1" ] || kept+=("$pid"); done
  PIDS=("${kept[@]}")
}
SERVER_URL=""
LOAD_DB=""
cleanup() {
  local status=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$LOAD_DB" ]; then
    psql "$SERVER_URL" -qX -c "DROP DATABASE IF EXISTS $LOAD_DB WITH (FORCE)" >&2 ||
      printf 'load.sh: could not drop the database %s\n' "$LOAD_DB" >&2
  fi
  if [ "${KEEP:-0}" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- The store.
if [ -n "${DATABASE_URL:-}" ]; then
  SERVER_URL=$DATABASE_URL
  [[ ${SERVER_URL%%\?*} =~ ^(postgres(ql)?://[^/]+)(/[^/]*)?$ ]] || die "DATABASE_URL: not a postgres:// URL"
  server=${BASH_REMATCH[1]}
  options=""; [[ $SERVER_URL == *\?* ]] && options="?${SERVER_URL#*\?}"
  version=$(psql "$SERVER_URL" -qXAt -c "SHOW server_version") || die "cannot reach the PostgreSQL server of DATABASE_URL"
  STORE="PostgreSQL ${version%% *}"
  LOAD_DB=cnh_load_$(date +%Y%m%d_%H%M%S)_$$
  say "creating the database $LOAD_DB"
  psql "$SERVER_URL" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $LOAD_DB" >&2
  HUB_DATABASE_URL=$server/$LOAD_DB$options
else
  STORE="SQLite (a file in $(dirname "$WORK"))"
  HUB_DATABASE_URL="sqlite://$WORK/hub.db?mode=rwc"
fi
hub_env=(env DATABASE_URL="$HUB_DATABASE_URL" CNH_LISTEN="127.0.0.1:$PORT" CNH_PROFILE=development CNH_LOG=warn
  CNH_RATE_LIMIT_READS="${CNH_RATE_LIMIT_READS:-0}" CNH_RATE_LIMIT_WRITES="${CNH_RATE_LIMIT_WRITES:-0}"
  CNH_DEV_JWT_SECRET="$DEV_SECRET")

say "loading the demo programming at scale $SCALE"
demo_started=$SECONDS
"${hub_env[@]}" "$BIN" demo --scale "$SCALE" >"$WORK/demo.out" 2>"$WORK/demo.err" ||
  { cat "$WORK/demo.err" >&2; die "cnh-hub demo failed"; }
DEMO=$(tail -n 1 "$WORK/demo.out")
DEMO_SECONDS=$((SECONDS - demo_started))
say "$DEMO ($DEMO_SECONDS s)"

# wait_ready <url> <pid> <log>: until the URL answers 200 (GET, or POST for a bare handler), while the process lives.
wait_ready() {
  local url=$1 pid=$2 log=$3 method=${4:-GET}
  for _ in $(seq 1 1500); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' -X "$method" "$url")" = 200 ] && return 0
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$log" >&2; die "the process behind $url exited"; }
    sleep 0.2
  done
  die "$url did not answer 200 within 5 minutes"
}

say "starting the hub on $HUB"
now_ms() { echo $(($(date +%s%N) / 1000000)); }
spawned_ms=$(now_ms)
"${hub_env[@]}" "$BIN" serve >"$WORK/hub.log" 2>&1 &
HUB_PID=$!
PIDS+=("$HUB_PID")
wait_ready "$HUB/readyz" "$HUB_PID" "$WORK/hub.log"
READY_MS=$(($(now_ms) - spawned_ms))
# rss <field>: the hub's resident memory (VmRSS now, VmHWM its peak), in MB.
rss() { awk -v f="$1:" '$1 == f { printf "%.0f", $2 / 1024 }' "/proc/$HUB_PID/status"; }

token() { CNH_DEV_JWT_SECRET=$DEV_SECRET "$BIN" token "$@" --ttl 4h 2>/dev/null | tail -n 1; }
ARS84=$(token --role ars --region 84)
CNSA=$(token --role cnsa)

# The national reconciliation (the CNSA, every region; a new alias each time, so no cache answers it): the first
# answer waits for every region's state to be loaded; then the time of ten more, one after another.
NATIONAL_QUERY='{ ALIAS: reconciliation { envelopes { regionCode compartment notified committed } findings { code subject message } } }'
national() {
  jq -cn --arg q "${NATIONAL_QUERY/ALIAS/n$1}" '{query: $q}' |
    curl -sS -o "$WORK/national.json" -w '%{time_total}' -H 'content-type: application/json' \
      -H "authorization: Bearer $CNSA" --data-binary @- "$HUB/graphql"
}
national 0 >/dev/null
jq -e 'has("errors") | not' "$WORK/national.json" >/dev/null || die "national reconciliation: $(head -c 600 "$WORK/national.json")"
STATE_MS=$(($(now_ms) - spawned_ms))
NATIONAL_TIMES=$(for i in $(seq 1 10); do national "$i"; echo; done | sort -n)
NATIONAL_MEDIAN=$(echo "$NATIONAL_TIMES" | sed -n 5p | awk '{ printf "%.1f ms", $1 * 1000 }')
NATIONAL_MAX=$(echo "$NATIONAL_TIMES" | tail -n 1 | awk '{ printf "%.1f ms", $1 * 1000 }')
NATIONAL_FINDINGS=$(jq '.data | .[] | .findings | length' "$WORK/national.json")
RSS_READY=$(rss VmRSS)

# gql <token> <query>: the hub's answer, as bytes.
gql() {
  jq -cn --arg q "$2" '{query: $q}' |
    curl -sS -H 'content-type: application/json' -H "authorization: Bearer $1" --data-binary @- "$HUB/graphql"
}
# answer_file <token> <query> <file>: the hub's answer into the file, refused if it holds errors.
answer_file() {
  gql "$1" "$2" >"$3"
  jq -e 'has("errors") | not' "$3" >/dev/null || die "the hub answered with errors: $(head -c 600 "$3")"
}

# --- The hub's answers, served by the bare handlers.
tag=$(date +%H%M%S)
answer_file "$ARS84" "$(sed "s/ALIAS/q${tag}_1_1/" "$QUERY_FILE")" "$WORK/dashboard-unique.json"
answer_file "$ARS84" "$(sed "s/ALIAS/dashboard/" "$QUERY_FILE")" "$WORK/dashboard-same.json"
answer_file "$ARS84" "{ me { role } }" "$WORK/me.json"
EDGES=$(jq '[.. | objects | select(has("edges")) | .edges | length] | add' "$WORK/dashboard-unique.json")
DASHBOARD_BYTES=$(wc -c <"$WORK/dashboard-unique.json")
ME_BYTES=$(wc -c <"$WORK/me.json")
say "dashboard answer: $DASHBOARD_BYTES bytes, $EDGES measures; me: $(cat "$WORK/me.json")"

bare_port=$PORT
for body in dashboard-unique dashboard-same me; do
  bare_port=$((bare_port + 1))
  "$BARE" "$bare_port" "$WORK/$body.json" >"$WORK/bare-$body.log" 2>&1 &
  PIDS+=($!)
  wait_ready "http://127.0.0.1:$bare_port/graphql" "$!" "$WORK/bare-$body.log" POST
done
BARE_UNIQUE=http://127.0.0.1:$((PORT + 1))
BARE_SAME=http://127.0.0.1:$((PORT + 2))
BARE_ME=http://127.0.0.1:$((PORT + 3))

# --- wrk.
RUNS=0
next_tag() { RUNS=$((RUNS + 1)); RUN_TAG="${tag}${RUNS}"; }
# threads_for <connections>: wrk's threads (it gives each thread connections/threads of them, rounded down).
threads_for() { if [ $(($1 % 2)) -eq 0 ]; then echo 2; else echo 1; fi; }
# measure <name> <url> <script> [script arguments…]: a discarded warm-up, then the measured run into $WORK/<name>.out.
measure() {
  local name=$1 url=$2 script=$3
  shift 3
  say "wrk: $name"
  if [ "$WARMUP" -gt 0 ]; then
    next_tag
    RUN_TAG=$RUN_TAG TOKEN=$ARS84 wrk -t"$(threads_for "$CONNECTIONS")" -c"$CONNECTIONS" -d"${WARMUP}s" --timeout "${TIMEOUT}s" -s "$LOAD_DIR/$script" "$url" -- "$@" >/dev/null
  fi
  next_tag
  RUN_TAG=$RUN_TAG TOKEN=$ARS84 wrk -t"$(threads_for "$CONNECTIONS")" -c"$CONNECTIONS" -d"${DURATION}s" --timeout "${TIMEOUT}s" --latency -s "$LOAD_DIR/$script" "$url" \
    -- "$@" >"$WORK/$name.out"
  grep -q '^RESULT ' "$WORK/$name.out" || { cat "$WORK/$name.out" >&2; die "wrk printed no RESULT line ($name)"; }
}
# field <file> <name>: a value of the RESULT (or other) line of a wrk output.
field() { sed -n -E "s/^${3:-RESULT}( .*)? $2=([^ ]*).*/\2/p" "$1" | head -n 1; }
fmt_rps() { printf '%.0f' "$1"; }
fmt_ms() { printf '%.2f ms' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }
failures() {
  local errors non2xx
  errors=$(field "$1" errors)
  non2xx=$(field "$1" non2xx)
  if [ "$errors" = 0 ] && [ "$non2xx" = 0 ]; then echo 0; else echo "$errors socket, $non2xx non-2xx"; fi
}

LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')
measure hub-unique "$HUB" dashboard_unique.lua "$QUERY_FILE"
measure bare-unique "$BARE_UNIQUE" dashboard_unique.lua "$QUERY_FILE"
measure hub-same "$HUB" dashboard_same.lua "$QUERY_FILE"
measure bare-same "$BARE_SAME" dashboard_same.lua "$QUERY_FILE"
measure hub-me "$HUB" me.lua
measure bare-me "$BARE_ME" me.lua

# --- d. Mixed reads and writes.
count_measures() { gql "$CNSA" "{ measures { totalCount } }" | jq -e '.data.measures.totalCount'; }
MIXED_ROWS=()
MIXED_NOTES=()
# run_mixed <name> <targets> <writing connections> <seconds>: the reads of scenario a and the writes, two wrk at once,
# into $WORK/<name>-reads.out and $WORK/<name>-writes.out. Needs TOKENS (TOKEN_<region>=… for each region written).
run_mixed() {
  local name=$1 targets=$2 writers=$3 seconds=$4 pause=${5:-0} read_tag write_tag reads_pid writes_pid out
  local readers=$((CONNECTIONS - writers))
  next_tag
  read_tag=$RUN_TAG
  next_tag
  write_tag=$RUN_TAG
  PAUSE_MS=$pause RUN_TAG=$read_tag TOKEN=$ARS84 wrk -t"$(threads_for "$readers")" -c"$readers" -d"${seconds}s" --timeout "${TIMEOUT}s" --latency \
    -s "$LOAD_DIR/dashboard_unique.lua" "$HUB" -- "$QUERY_FILE" >"$WORK/$name-reads.out" &
  reads_pid=$!
  PIDS+=("$reads_pid")
  env "${TOKENS[@]}" RUN_TAG="$write_tag" WRITE_TARGETS="$targets" ACK_FILE="$WORK/$name-ack" \
    wrk -t"$(threads_for "$writers")" -c"$writers" -d"${seconds}s" --timeout "${TIMEOUT}s" --latency \
    -s "$LOAD_DIR/writes.lua" "$HUB" >"$WORK/$name-writes.out" &
  writes_pid=$!
  PIDS+=("$writes_pid")
  wait "$reads_pid" || die "the reading wrk failed: $(cat "$WORK/$name-reads.out")"
  forget "$reads_pid"
  wait "$writes_pid" || die "the writing wrk failed: $(cat "$WORK/$name-writes.out")"
  forget "$writes_pid"
  for out in "$WORK/$name-reads.out" "$WORK/$name-writes.out"; do
    grep -q '^RESULT ' "$out" || { cat "$out" >&2; die "wrk printed no RESULT line ($out)"; }
  done
}
# metric_mean <run name> <histogram>: the histogram's mean over the run (from the metrics scraped before and after),
# in milliseconds; "?" when nothing was observed.
metric_mean() {
  awk -v h="$2" '
    FNR == 1 { file++ }
    $1 == h "_sum" { sum[file] = $2 }
    $1 == h "_count" { count[file] = $2 }
    END { n = count[2] - count[1]; if (n > 0) printf "%.2f", 1000 * (sum[2] - sum[1]) / n; else printf "?" }
  ' "$WORK/$1-metrics-before" "$WORK/$1-metrics-after"
}
# mixed <name> <label> <targets>
mixed() {
  local name=$1 label=$2 targets=$3 region pair before after writers pause probe_reads probe_writes
  TOKENS=()
  for pair in $targets; do
    region=${pair%%:*}
    [[ " ${TOKENS[*]} " == *" TOKEN_$region="* ]] || TOKENS+=("TOKEN_$region=$(token --role ars --region "$region")")
  done
  # How many of the CONNECTIONS write: as given, or (auto) what makes about WRITE_SHARE % of the requests writes,
  # estimated from a 2-second probe with 2 writers (its writes are not counted below).
  writers=$WRITE_CONNECTIONS
  if [ "$writers" = auto ]; then
    say "wrk: mixed, $label: a 2-second probe to split the connections"
    run_mixed "$name-probe" "$targets" 2 2
    probe_reads=$(field "$WORK/$name-probe-reads.out" requests)
    probe_writes=$(field "$WORK/$name-probe-writes.out" requests)
    # No write answered within the probe: keep its 2 writers. At most a quarter of the connections write.
    writers=$(awk -v r="$probe_reads" -v w="$probe_writes" -v s="$WRITE_SHARE" -v c="$CONNECTIONS" 'BEGIN {
      n = (w > 0 ? 2 * (s / (100 - s)) / (w / (r > 0 ? r : 1)) : 2); n = int(n + 0.5);
      if (n < 1) n = 1; if (n > int(c / 4)) n = int(c / 4); print n }')
  fi
  # The readers' pause: as given, or (auto) what brings their rate down to (100 - WRITE_SHARE) / WRITE_SHARE times
  # the writes', from a probe with these writers and unpaused readers. Each reading connection then waits `pause`
  # between an answer and its next request: its cycle is the read's latency (readers / reads per second, Little's
  # law) plus the pause. wrk counts milliseconds; the share reached is printed with the figures.
  pause=$READ_PAUSE_MS
  if [ "$pause" = auto ]; then
    say "wrk: mixed, $label: a 2-second probe with $writers writers, for the readers' pause"
    run_mixed "$name-pace" "$targets" "$writers" 2 0
    probe_reads=$(field "$WORK/$name-pace-reads.out" rps)
    probe_writes=$(field "$WORK/$name-pace-writes.out" rps)
    pause=$(awk -v r="$probe_reads" -v w="$probe_writes" -v s="$WRITE_SHARE" -v n="$((CONNECTIONS - writers))" 'BEGIN {
      wanted = w * (100 - s) / s; p = 0;
      if (w > 0 && r > wanted) p = 1000 * n / wanted - 1000 * n / r;
      print int(p + 0.5) }')
  fi
  before=$(count_measures)
  curl -sS "$HUB/metrics" >"$WORK/$name-metrics-before"
  say "wrk: mixed, $label ($((CONNECTIONS - writers)) reading connections, pausing $pause ms, and $writers writing)"
  run_mixed "$name" "$targets" "$writers" "$DURATION" "$pause"
  curl -sS "$HUB/metrics" >"$WORK/$name-metrics-after"
  after=$(count_measures)

  # Every acknowledged write, looked up in the hub (the CNSA reads every region), 100 measures per request.
  local acked=$WORK/$name-acked found=$WORK/$name-found
  cat "$WORK/$name-ack".* 2>/dev/null | sort -u >"$acked"
  : >"$found"
  { grep '^measure ' "$acked" || true; } | cut -d' ' -f2 | split -l 100 - "$WORK/$name-batch-"
  for batch in "$WORK/$name-batch-"*; do
    [ -e "$batch" ] || continue
    local query="{" i=0 id
    while read -r id; do
      query+=" m$i: measure(id: \"$id\") { id commitments { id } }"
      i=$((i + 1))
    done <"$batch"
    gql "$CNSA" "$query }" >"$batch.json"
    jq -r '.data // {} | .[] | select(. != null) | "measure \(.id)", (.id as $m | .commitments[] | "commitment \($m) \(.id)")' \
      "$batch.json" >>"$found"
    if jq -e '.errors' "$batch.json" >/dev/null; then
      MIXED_NOTES+=("- $label: looking the written measures up answered errors: $(jq -c '[.errors[].extensions.code] | unique' "$batch.json")")
    fi
  done
  sort -u -o "$found" "$found"
  local created committed lost_measures lost_commitments write_errors reads writes share extra
  created=$(field "$WORK/$name-writes.out" created WRITES)
  committed=$(field "$WORK/$name-writes.out" committed WRITES)
  lost_measures=$(comm -23 <(grep '^measure ' "$acked") <(grep '^measure ' "$found") | wc -l)
  lost_commitments=$(comm -23 <(grep '^commitment ' "$acked") <(grep '^commitment ' "$found") | wc -l)
  write_errors=$(($(field "$WORK/$name-writes.out" graphql_errors WRITES) + $(field "$WORK/$name-writes.out" non200 WRITES) +
    $(field "$WORK/$name-writes.out" unparsed WRITES)))
  reads=$(field "$WORK/$name-reads.out" requests)
  writes=$(field "$WORK/$name-writes.out" requests)
  share=$(awk -v r="$reads" -v w="$writes" 'BEGIN { printf "%.1f %%", (r + w > 0 ? 100 * w / (r + w) : 0) }')
  extra=$((after - before - created))
  MIXED_ROWS+=("| $label | $((CONNECTIONS - writers)) + $writers | $pause ms | $(fmt_rps "$(field "$WORK/$name-reads.out" rps)") | $(fmt_ms "$(field "$WORK/$name-reads.out" p99_ms)") | $(fmt_rps "$(field "$WORK/$name-writes.out" rps)") | $(fmt_ms "$(field "$WORK/$name-writes.out" p50_ms)") | $(fmt_ms "$(field "$WORK/$name-writes.out" p99_ms)") | $share | $created + $committed | $write_errors | $((lost_measures + lost_commitments)) |")
  MIXED_NOTES+=("- $label: measures $before before, $after after: +$((after - before)) for $created creations acknowledged; every acknowledged write looked up: $lost_measures measures and $lost_commitments commitments missing; failed requests: reads $(failures "$WORK/$name-reads.out"), writes $(failures "$WORK/$name-writes.out")")
  if [ "$extra" -gt 0 ]; then
    MIXED_NOTES+=("  (stored without an answer: $extra, creations in flight when wrk stopped)")
  elif [ "$extra" -lt 0 ]; then
    MIXED_NOTES+=("  (**$((-extra)) acknowledged creations missing from the count**)")
  fi
  # What the hub's metrics say of the writes of the run: the mean of each histogram over the run.
  local lock recompute begin durable
  lock=$(metric_mean "$name" cnh_write_region_lock_held_seconds)
  durable=$(metric_mean "$name" cnh_write_durability_wait_seconds)
  recompute=$(metric_mean "$name" cnh_reconciliation_recompute_seconds)
  begin=$(metric_mean "$name" cnh_db_begin_seconds)
  MIXED_NOTES+=("  (hub's metrics over the run, means: from a write's generation bump to its commit, the time its region's writers wait for on PostgreSQL, $lock ms; a write's recomputation, that wait included, $recompute ms; waiting for a connection to begin a transaction, $begin ms — on SQLite the write lane's one connection is the writers' queue; after an asynchronous commit, waiting for the disk outside the locks (PostgreSQL), $durable ms)")
  while IFS= read -r line; do
    MIXED_NOTES+=("  - write answered $(printf '%s' "$line" | sed -E 's/^WRITE_ERROR code=([^ ]*) count=([0-9]*) sample=(.*)$/\1 × \2, e.g. `\3`/')")
  done < <(grep '^WRITE_ERROR ' "$WORK/$name-writes.out" || true)
}

mixed mixed-multi "writes in $(printf '%s\n' $MULTI_REGION_TARGETS | cut -d: -f1 | sort -u | wc -l) regions" "$MULTI_REGION_TARGETS"
mixed mixed-84 "writes all in region 84" "$REGION_84_TARGETS"

# --- The report.
RSS_END=$(rss VmRSS)
RSS_PEAK=$(rss VmHWM)
hub_alive="yes"
kill -0 "$HUB_PID" 2>/dev/null || hub_alive="**no: the hub exited**"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
SUBJECT=$(git -C "$ROOT" log -1 --format=%s 2>/dev/null | cut -c1-80 || true)
git -C "$ROOT" diff --quiet HEAD 2>/dev/null || COMMIT+=" + uncommitted changes"
row() {
  local scenario=$1 hub=$2 bare=$3
  printf '| %s | cnh-hub | %s | %s | %s | %s | %s |\n' "$scenario" "$(fmt_rps "$(field "$WORK/$hub.out" rps)")" \
    "$(fmt_ms "$(field "$WORK/$hub.out" p50_ms)")" "$(fmt_ms "$(field "$WORK/$hub.out" p99_ms)")" \
    "$(failures "$WORK/$hub.out")" "$(ratio "$(field "$WORK/$hub.out" rps)" "$(field "$WORK/$bare.out" rps)")"
  printf '| %s | bare axum | %s | %s | %s | %s | |\n' "$scenario" "$(fmt_rps "$(field "$WORK/$bare.out" rps)")" \
    "$(fmt_ms "$(field "$WORK/$bare.out" p50_ms)")" "$(fmt_ms "$(field "$WORK/$bare.out" p99_ms)")" \
    "$(failures "$WORK/$bare.out")"
}

cat <<EOF

### Load run of $(date '+%Y-%m-%d %H:%M %Z')

- commit: $COMMIT ($SUBJECT)
- store: $STORE; demo at scale $SCALE: ${DEMO#demo data loaded: } (loaded in $DEMO_SECONDS s)
- machine: $(nproc) cores, load average before the first wrk run $LOADAVG; $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2)
- wrk: -t$(threads_for "$CONNECTIONS") -c$CONNECTIONS -d${DURATION}s --timeout ${TIMEOUT}s --latency ($([ "$WARMUP" -gt 0 ] && echo "after a ${WARMUP}s warm-up" || echo "no warm-up")); scenario d: two wrk at once for ${DURATION}s, the $CONNECTIONS connections split between reads and writes (WRITE_CONNECTIONS=$WRITE_CONNECTIONS, READ_PAUSE_MS=$READ_PAUSE_MS, aiming at $WRITE_SHARE % of writes)
- answers: dashboard $DASHBOARD_BYTES bytes ($EDGES measures of region 84), \`{ me { role } }\` $ME_BYTES bytes
- command: \`$COMMAND\`

| scenario | target | req/s | p50 | p99 | failures | hub / bare |
|---|---|---|---|---|---|---|
EOF
row "a. dashboard, unique alias" hub-unique bare-unique
row "b. dashboard, same body" hub-same bare-same
row "c. \`{ me { role } }\`" hub-me bare-me
cat <<EOF

| d. mixed | connections (reads + writes) | readers' pause | reads/s | reads p99 | writes/s | writes p50 | writes p99 | write share | acknowledged (creations + commitments) | writes with errors | writes lost |
|---|---|---|---|---|---|---|---|---|---|---|---|
EOF
printf '%s\n' "${MIXED_ROWS[@]}"
echo
printf '%s\n' "${MIXED_NOTES[@]}"
echo "- start-up: /readyz answered 200 after $READY_MS ms; first national reconciliation answered (every region's state loaded) after $STATE_MS ms"
echo "- national reconciliation (CNSA, $NATIONAL_FINDINGS findings, 10 requests one after another): median $NATIONAL_MEDIAN, max $NATIONAL_MAX"
echo "- hub resident memory: $RSS_READY MB once ready, $RSS_END MB at the end, peak $RSS_PEAK MB (VmHWM)"
echo "- hub still running at the end: $hub_alive; wall time of the run: $((SECONDS - STARTED)) s"
if grep -qiE ' (ERROR|WARN) ' "$WORK/hub.log"; then
  echo "- the hub logged $(grep -ciE ' (ERROR|WARN) ' "$WORK/hub.log") warnings or errors, e.g.: \`$(grep -iE ' (ERROR|WARN) ' "$WORK/hub.log" | head -n 1 | cut -c1-300)\`"
fi
