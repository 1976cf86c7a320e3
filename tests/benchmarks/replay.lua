-- wrk script: replays prepared requests and prints the figures as JSON.
--
-- BENCH_WRK_REQUESTS names a file of lines "METHOD<TAB>PATH<TAB>TOKEN<TAB>BODY"
-- (TOKEN and BODY may be empty). Every request is formatted once in init(),
-- so wrk spends no time building bodies during the measurement. Each thread
-- starts at its own offset and walks the list round-robin.
-- BENCH_WRK_EXPECT is the status every answer must have; the others are
-- counted and reported, so a run full of errors cannot pass for a fast one.

local prepared = {}
local cursor = 0
local expected = tonumber(os.getenv("BENCH_WRK_EXPECT") or "200")
local threads = {}
unexpected = 0

function setup(thread)
  thread:set("thread_number", #threads)
  table.insert(threads, thread)
end

function init(args)
  local path = os.getenv("BENCH_WRK_REQUESTS")
  for line in io.lines(path) do
    local method, target, token, body =
      line:match("^(%u+)\t([^\t]+)\t([^\t]*)\t(.*)$")
    if method then
      local headers = {}
      if token ~= "" then
        headers["Authorization"] = "Bearer " .. token
      end
      if body == "" then
        body = nil
      else
        headers["Content-Type"] = "application/json"
      end
      table.insert(prepared, wrk.format(method, target, headers, body))
    end
  end
  if #prepared == 0 then
    error("no request lines in " .. tostring(path))
  end
  cursor = (thread_number or 0) * math.floor(#prepared / 2)
end

function request()
  cursor = cursor + 1
  return prepared[(cursor % #prepared) + 1]
end

function response(status, headers, body)
  if status ~= expected then
    unexpected = unexpected + 1
  end
end

function done(summary, latency, requests)
  local wrong = 0
  for _, thread in ipairs(threads) do
    wrong = wrong + (thread:get("unexpected") or 0)
  end
  local errors = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, '
      .. '"unexpected_status": %d, "errors": {"connect": %d, "read": %d, '
      .. '"write": %d, "status": %d, "timeout": %d}, "latency_us": '
      .. '{"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
    summary.requests, summary.duration, summary.bytes, wrong,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean
  ))
end
