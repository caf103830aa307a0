-- Shared by the scenario scripts of benches/load.sh (loaded with dofile by each of them).
-- Numbers wrk's threads (setup runs in wrk's main Lua state before each thread's init), reads a file, escapes text for
-- JSON, and prints one machine-readable RESULT line at the end of the run, which the shell script parses.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

function all_threads()
  return threads
end

function read_file(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

function json_string(text)
  return '"' .. text:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    if c == "\n" then return "\\n" end
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

-- A prefix that differs between runs of wrk, so that no answer cached during an earlier run can serve a later one.
function run_tag()
  return os.getenv("RUN_TAG") or tostring(os.time())
end

function result_line(summary, latency)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  return string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f errors=%d non2xx=%d timeouts=%d bytes_per_request=%.0f",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    e.connect + e.read + e.write + e.timeout, e.status, e.timeout,
    summary.requests > 0 and summary.bytes / summary.requests or 0)
end

function done(summary, latency, requests)
  print(result_line(summary, latency))
end
