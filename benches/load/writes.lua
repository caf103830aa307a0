-- Scenario d, the writes: an ARS creates a measure (upsertMeasure with a reference of its own, never used before),
-- then commits the assurance-maladie side on it (commit), and so on: about as many creations as commitments. The
-- creations differ in their number of solutions (10 to 49), as real ones do: identical measures would all fall in one
-- group of possible duplicates, whose findings every creation changes.
-- Each creation goes to the next (region, département) pair of WRITE_TARGETS ("84:38 11:77 …"), with the token of that
-- region's ARS (TOKEN_<region>); the commitment is sent with the token of the measure's region, read from the answer.
-- response() counts the writes the hub acknowledged (HTTP 200, no `errors`) and appends their ids to
-- ACK_FILE.<thread> ("measure <id>", "commitment <measure id> <id>"), so that the shell script can look each one up
-- in the hub afterwards; every write answered otherwise is counted by its error code, with one answer kept as a sample.
-- wrk -s writes.lua URL   (WRITE_TARGETS, TOKEN_<region>, ACK_FILE, RUN_TAG)
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")

local UPSERT = json_string("mutation($input: MeasureInput!, $key: String) { upsertMeasure(input: $input, "
  .. "idempotencyKey: $key) { created measure { id regionCode } } }")
local COMMIT = json_string("mutation($input: CommitmentInput!, $key: String) { commit(input: $input, "
  .. "idempotencyKey: $key) { created commitment { id measureId } } }")

local targets, tokens, pending = {}, {}, {}
local counter, next_target, tag, acknowledged = 0, 0, nil, nil
local error_table, sample_table = {}, {}

-- Read by done() through thread:get: they must be globals.
created, committed, replayed, graphql_errors, non200, unparsed = 0, 0, 0, 0, 0, 0
error_counts, error_samples = "", ""

function init(args)
  for region, departement in (os.getenv("WRITE_TARGETS") or "84:38"):gmatch("(%w+):(%w+)") do
    if not tokens[region] then
      tokens[region] = "Bearer " .. assert(os.getenv("TOKEN_" .. region), "TOKEN_" .. region .. " is not set")
    end
    table.insert(targets, { region = region, departement = departement })
  end
  tag = run_tag() .. "-" .. thread_number
  next_target = thread_number - 1
  acknowledged = assert(io.open(assert(os.getenv("ACK_FILE"), "ACK_FILE is not set") .. "." .. thread_number, "w"))
end

local function post(region, body)
  return wrk.format("POST", "/graphql",
    { ["Content-Type"] = "application/json", ["Authorization"] = tokens[region] }, body)
end

function request()
  counter = counter + 1
  local key = '"WRK-' .. tag .. "-" .. counter .. '"'
  local measure = table.remove(pending, 1)
  if measure then
    return post(measure.region, '{"query":' .. COMMIT .. ',"variables":{"key":' .. key .. ',"input":{"measureId":"'
      .. measure.id .. '","costComponent":"GLOBAL","fullYearAmount":"450000.00","decisionRef":"Arrete ARS wrk",'
      .. '"capacity":30,"installationDate":"2026-09-01"}}}')
  end
  next_target = next_target % #targets + 1
  local target = targets[next_target]
  return post(target.region, '{"query":' .. UPSERT .. ',"variables":{"key":' .. key .. ',"input":{"reference":'
    .. key .. ',"label":"SESSAD TND (charge wrk)","departementCode":"' .. target.departement .. '",'
    .. '"categoryCode":"182","publics":["ENFANTS","TND"],"solutions":' .. (10 + counter % 40) .. ',"unit":"PLACES_INSTALLEES",'
    .. '"nature":"CREATION","procedure":"APPEL_A_PROJETS","compartment":"SOCLE_ENFANTS",'
    .. '"plannedInstallation":"2026-09-01"}}}')
end

local function refused(code, body)
  error_table[code] = (error_table[code] or 0) + 1
  local counts = {}
  for c, n in pairs(error_table) do table.insert(counts, c .. "=" .. n) end
  error_counts = table.concat(counts, " ")
  if not sample_table[code] then
    sample_table[code] = true
    error_samples = error_samples .. code .. "\t" .. body:sub(1, 600):gsub("[\t\n]", " ") .. "\n"
  end
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    return refused("HTTP_" .. status, body)
  end
  if body:find('"errors"', 1, true) then
    graphql_errors = graphql_errors + 1
    return refused(body:match('"code":"([%w_]+)"') or "NO_CODE", body)
  end
  local id, region = body:match('"measure":{"id":"([^"]+)","regionCode":"([^"]+)"')
  if id then
    if body:find('"created":true', 1, true) then created = created + 1 else replayed = replayed + 1 end
    acknowledged:write("measure ", id, "\n")
    acknowledged:flush()
    table.insert(pending, { id = id, region = region })
    return
  end
  local commitment, measure = body:match('"commitment":{"id":"([^"]+)","measureId":"([^"]+)"')
  if commitment then
    if body:find('"created":true', 1, true) then committed = committed + 1 else replayed = replayed + 1 end
    acknowledged:write("commitment ", measure, " ", commitment, "\n")
    acknowledged:flush()
    return
  end
  unparsed = unparsed + 1
  refused("UNPARSED", body)
end

function done(summary, latency, requests)
  print(result_line(summary, latency))
  local totals = { created = 0, committed = 0, replayed = 0, graphql_errors = 0, non200 = 0, unparsed = 0 }
  local codes, samples = {}, {}
  for _, thread in ipairs(all_threads()) do
    for name in pairs(totals) do totals[name] = totals[name] + (thread:get(name) or 0) end
    for code, n in (thread:get("error_counts") or ""):gmatch("(%S+)=(%d+)") do
      codes[code] = (codes[code] or 0) + tonumber(n)
    end
    for code, sample in (thread:get("error_samples") or ""):gmatch("([^\t\n]+)\t([^\n]*)\n") do
      samples[code] = samples[code] or sample
    end
  end
  print(string.format("WRITES created=%d committed=%d replayed=%d graphql_errors=%d non200=%d unparsed=%d",
    totals.created, totals.committed, totals.replayed, totals.graphql_errors, totals.non200, totals.unparsed))
  for code, n in pairs(codes) do
    print(string.format("WRITE_ERROR code=%s count=%d sample=%s", code, n, samples[code] or ""))
  end
end
