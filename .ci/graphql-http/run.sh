#!/usr/bin/env bash
# Starts the hub built by the test command (debug profile) on a scratch SQLite file and runs the GraphQL over HTTP
# audit and the graphql-transport-ws checks against it (audit.mjs). Node.js and npm come from the distribution.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${CNH_HUB_BIN:-$root/target/debug/cnh-hub}"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "audit: installing Node.js and npm from the distribution's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
[ -x "$bin" ] || (cd "$root" && cargo build -q --bin cnh-hub)
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

scratch="$(mktemp -d)"
port=$(( 20000 + RANDOM % 20000 ))
export CNH_DEV_JWT_SECRET="graphql-http-audit-secret-0123456789abcdef"
DATABASE_URL="sqlite://$scratch/hub.db?mode=rwc" CNH_LISTEN="127.0.0.1:$port" "$bin" serve >"$scratch/hub.log" 2>&1 &
hub=$!
trap 'kill $hub 2>/dev/null || true; wait $hub 2>/dev/null || true; rm -rf "$scratch"' EXIT
for _ in $(seq 1 60); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 $hub 2>/dev/null || { cat "$scratch/hub.log" >&2; exit 1; }
  sleep 0.5
done
token=$("$bin" token --role cnsa --ttl 1h | tail -n 1)
node "$here/audit.mjs" "http://127.0.0.1:$port/graphql" "$token"
