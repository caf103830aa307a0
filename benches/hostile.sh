#!/usr/bin/env bash
# What the hub spends on hostile GraphQL documents, with and without a token: starts the hub on a fresh SQLite file,
# sends each document a few times with curl, prints the slowest answer time (a CPU budget per request, as seen from
# outside). PROFILE=dist (default, the shipped optimisation) or debug (an upper bound, no optimised build needed).
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-dist}
PORT=${PORT:-18099}
export CNH_DEV_JWT_SECRET=bench-secret-of-the-development-issuer-0123456789
if [ "$PROFILE" = dist ]; then cargo build -q --profile dist; else cargo build -q; fi
BIN="${CARGO_TARGET_DIR:-target}/$PROFILE/cnh-hub"
DIR=$(mktemp -d)
trap 'kill $HUB 2>/dev/null || true; rm -rf "$DIR"' EXIT
DATABASE_URL="sqlite://$DIR/hub.db?mode=rwc" CNH_LISTEN=127.0.0.1:$PORT CNH_LOG=warn CNH_RATE_LIMIT_READS=0 CNH_RATE_LIMIT_WRITES=0 "$BIN" serve &
HUB=$!
for _ in $(seq 1 100); do curl -sf localhost:$PORT/healthz >/dev/null && break; sleep 0.2; done
TOKEN=$("$BIN" token --role cnsa --ttl 1h | tail -n 1)

python3 - "$DIR" <<'PY'
import json, sys
d = sys.argv[1]
def w(name, query, variables=None):
    open(f"{d}/{name}.json", "w").write(json.dumps({"query": query, "variables": variables or {}}))
w("nested-list-2000", "{ regions(a: " + "[" * 2000 + "1" + "]" * 2000 + ") { code } }")
w("nested-object-1000", "mutation { upsertMeasure(input: " + "{ reference: " * 1000 + "1" + "}" * 1000 + ") { measure { id } } }")
frag = "query { ...F26 }\nfragment F0 on Query { regions { code } }\n" + "".join(f"fragment F{i} on Query {{ ...F{i-1} ...F{i-1} }}\n" for i in range(1, 27))
w("fragments-doubling-26", frag)
frag9 = "query { ...F9 }\nfragment F0 on Query { __typename }\n" + "".join(f"fragment F{i} on Query {{ ...F{i-1} ...F{i-1} }}\n" for i in range(1, 10))
w("fragments-doubling-9-allowed", frag9)
w("aliases-5000-allowed", "{ " + " ".join(f"a{i}: __typename" for i in range(5000)) + " }")
w("tokens-20000-allowed", "{ " + " ".join(f"a{i}: __typename" for i in range(6600)) + " }")
w("directives-3000", "{ regions " + "@include(if: true) " * 3000 + "{ code } }")
w("token-soup-19000", " ".join(["{", "[", "(", "regions", ":", "$v", "..."] * 2700))
PY

printf '%-32s %14s %14s\n' document "anonymous max" "token max"
for f in "$DIR"/*.json; do
  name=$(basename "$f" .json)
  worst_anon=0; worst_tok=0
  for _ in 1 2 3; do
    t=$(curl -s -o /dev/null -w '%{time_total}' -H 'content-type: application/json' --data-binary @"$f" localhost:$PORT/graphql)
    worst_anon=$(python3 -c "print(max($worst_anon, $t))")
    t=$(curl -s -o /dev/null -w '%{time_total}' -H 'content-type: application/json' -H "authorization: Bearer $TOKEN" --data-binary @"$f" localhost:$PORT/graphql)
    worst_tok=$(python3 -c "print(max($worst_tok, $t))")
  done
  printf '%-32s %11.1f ms %11.1f ms\n' "$name" "$(python3 -c "print($worst_anon*1000)")" "$(python3 -c "print($worst_tok*1000)")"
done
curl -sf localhost:$PORT/healthz >/dev/null && echo "hub alive after every document"
