-- Scenario a (and the reads of scenario d): the regional dashboard, coFinancingStatus of region 84 with measures,
-- commitments and findings, under a different alias at every request ("q<run>_<thread>_<n>: coFinancingStatus(…)"),
-- so that no cache keyed on the request's text can serve it: every answer is computed and serialised afresh.
-- The same script drives the bare handler, so that the client does the same work for both targets.
-- wrk -s dashboard_unique.lua URL -- <dashboard.graphql>   (TOKEN: the bearer token, empty for none)
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local prefix, suffix, headers
local counter = 0

function init(args)
  local query = read_file(args[1]):gsub("%s+$", "")
  local before, after = query:match("^(.-)ALIAS(.*)$")
  assert(before, "the query must hold the word ALIAS where the alias goes")
  prefix = '{"query":' .. json_string(before):sub(1, -2)
  suffix = json_string(after):sub(2) .. "}"
  headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "") }
  prefix = prefix .. "q" .. run_tag() .. "_" .. thread_number .. "_"
end

function request()
  counter = counter + 1
  return wrk.format("POST", "/graphql", headers, prefix .. counter .. suffix)
end
