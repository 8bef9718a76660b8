-- wrk script for bench/api_accept.py: POSTs one JSON body to a list of paths, each thread taking
-- every n-th path in turn so that no two requests go to the same server until the list wraps.
-- Environment: BENCH_PATHS (a file, one path a line), BENCH_BODY, BENCH_TOKEN, BENCH_VERSION.
-- At the end it prints one JSON line: counts per status, latency percentiles (us), duration.
local threads, created = {}, 0

function setup(thread)
  thread:set("id", created)
  created = created + 1
  table.insert(threads, thread)
end

function init(args)
  paths = {}
  for line in io.lines(os.getenv("BENCH_PATHS")) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  step = tonumber(os.getenv("BENCH_THREADS"))
  index = id + 1
  statuses = {}
  wrk.method = "POST"
  wrk.body = os.getenv("BENCH_BODY")
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Auth-Token"] = os.getenv("BENCH_TOKEN") or "admin:admin"
  wrk.headers["OpenStack-API-Version"] = "compute " .. (os.getenv("BENCH_VERSION") or "2.1")
end

function request()
  local path = paths[index]
  index = index + step
  if index > #paths then index = id + 1 end
  return wrk.format(nil, path)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local counts = {}
  for _, t in ipairs(threads) do
    for status, n in pairs(t:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do parts[#parts + 1] = string.format('"%d": %d', status, n) end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"statuses": {%s}, "requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}}\n',
    table.concat(parts, ", "), summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), e.connect, e.read, e.write, e.timeout))
end
