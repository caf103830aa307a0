-- Scenario a (and the reads of scenario d): the regional dashboard, coFinancingStatus of region 84 with measures,
-- commitments and findings, under a different alias at every request ("q<run>_<thread>_<n>: coFinancingStatus(…)"),
-- so that no cache keyed on the request's text can serve it: every answer is computed and serialised afresh.
-- The same script drives the bare handler, so that the client does the same work for both targets.
-- wrk -s dashboard_unique.lua URL -- <dashboard.graphql>   (TOKEN: the bearer token, empty for none; PAUSE_MS: each
-- connection's pause, in milliseconds, between an answer and its next request, 0 for none)
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

-- wrk paces a connection only when the script defines delay(): defined for a pause, so that 0 leaves it unpaced.
local pause = tonumber(os.getenv("PAUSE_MS") or "0") or 0
if pause > 0 then
  function delay()
    return pause
  end
end

function request()
  counter = counter + 1
  return wrk.format("POST", "/graphql", headers, prefix .. counter .. suffix)
end
