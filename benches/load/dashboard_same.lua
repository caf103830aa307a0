-- Scenario b: the same dashboard request as scenario a, with one fixed alias, the same bytes at every request (what an
-- answer cache keyed on the request can serve).
-- wrk -s dashboard_same.lua URL -- <dashboard.graphql>   (TOKEN: the bearer token)
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

function init(args)
  local query = read_file(args[1]):gsub("%s+$", ""):gsub("ALIAS", "dashboard")
  wrk.method = "POST"
  wrk.path = "/graphql"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")
  wrk.body = '{"query":' .. json_string(query) .. "}"
end
