-- Scenario c: `{ me { role } }`, the fixed cost of a request (authentication, GraphQL parsing, validation and
-- execution of a trivial field, a 30-byte answer).
-- wrk -s me.lua URL   (TOKEN: the bearer token)
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function init(args)
  wrk.method = "POST"
  wrk.path = "/graphql"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")
  wrk.body = '{"query":"{ me { role } }"}'
end
