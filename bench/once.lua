-- wrk script of scripts/bench: POSTs each pre-signed body of a file once, in
-- order (run with one wrk thread), and counts the answers: a signed XML
-- `ok`, any other 2xx answer, and non-2xx statuses. When the bodies run out
-- the thread stops (the cell is then marked `exhausted`: too few bodies for
-- its duration) rather than repeat one, which would be a duplicate.
--
-- usage: BENCH_BODIES=FILE [BENCH_BODIES_COUNT=N] [BENCH_BODIES_FROM=K] BENCH_OUT=JSON \
--          wrk -t1 -c C -d Ds --timeout 30s -s bench/once.lua URL
-- BENCH_BODIES_COUNT: read only the file's first N bodies (scripts/bench
-- writes one file for its longest cell; the shorter cells use its start).
-- BENCH_BODIES_FROM: skip the first K of them (the paired cells' slices:
-- each slice goes on where the service's previous slice stopped).
--
-- The counters are globals: `done` runs in wrk's main Lua state and reads
-- them from the thread's state with thread:get, which sees globals only.

bodies, next_body = {}, 1
answered_ok, answered_other, non2xx = 0, 0, 0
exhausted = false
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(_)
  local limit = tonumber(os.getenv("BENCH_BODIES_COUNT") or "") or math.huge
  local skip = tonumber(os.getenv("BENCH_BODIES_FROM") or "") or 0
  local read = 0
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    if read >= limit then
      break
    end
    read = read + 1
    if read > skip then
      bodies[#bodies + 1] = line
    end
  end
end

function request()
  local body = bodies[next_body]
  if body == nil then
    if not exhausted then
      exhausted = true
      wrk.thread:stop()
    end
    -- Something harmless until the thread stops; its answer is not counted.
    return wrk.format("GET", "/")
  end
  next_body = next_body + 1
  return wrk.format("POST", nil, headers, body)
end

function response(status, _, body)
  if exhausted then
    return
  end
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  elseif body and body:find("<pg_status>ok</pg_status>", 1, true) then
    answered_ok = answered_ok + 1
  else
    answered_other = answered_other + 1
  end
end

function done(summary, latency, _)
  local ok, other, bad, sent, ran_out = 0, 0, 0, 0, false
  for _, thread in ipairs(threads) do
    ok = ok + thread:get("answered_ok")
    other = other + thread:get("answered_other")
    bad = bad + thread:get("non2xx")
    -- wrk calls request() once to check it before the run; that body is never sent.
    sent = sent + thread:get("next_body") - 2
    ran_out = ran_out or thread:get("exhausted")
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  local out = assert(io.open(os.getenv("BENCH_OUT"), "w"))
  out:write(string.format(
    '{"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, '
      .. '"ok": %d, "other_answers": %d, "non2xx": %d, "bodies_sent": %d, "exhausted": %s, '
      .. '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    ok, other, bad, sent, tostring(ran_out),
    e.connect, e.read, e.write, e.timeout))
  out:close()
end
