-- wrk script for scripts/bench.sh: every request gets its own body, and the run
-- ends with one machine-readable line `BENCH_JSON {...}`.
--
--   wrk ... -s scenario.lua URL -- MODE TAG LIMIT NDOMAINS
--
-- MODE     new      POST /generate, a new domain per request (new-domain path)
--          reuse    POST /generate, a new email on one of NDOMAINS existing domains
--                   d<i>.<TAG>.example of the caller's organization (reuse path)
--          reuse-orgs  the same, spread over many organizations (one domain each),
--                   read from the file BENCH_ORGS_FILE: "access secret domain" lines
--          rejected POST /generate with random token pairs in the issued shape
--                   (dak_ + 64 characters) but not tagged by this deployment (401
--                   path: rejected before any database lookup). Each wrk thread
--                   draws 2048 pairs at start and cycles through them: building
--                   107 random characters in Lua per request cost wrk ~20 us of CPU
--                   per request, a core at this rate, so the load generator, not
--                   the service, was the bottleneck. The service keeps no memory of
--                   rejected tokens, so a repeated pair costs it what a new one does.
--          rejected-revoked  POST /generate with one revoked token pair of ours
--                   (BENCH_ACCESS/BENCH_SECRET): the tag verifies, so every request
--                   costs the one indexed lookup before its 401
--          empty    GET / (the empty-handler ceiling)
-- TAG      makes this run's emails/domains unique in the database
-- LIMIT    0: run for wrk's -d duration. N > 0: stop after N responses (use with
--          -t1: the one thread then interrupts wrk, so the run and its req/s cover
--          exactly the burst; -d is only an upper bound)
-- NDOMAINS reuse mode only (default 1); REUSE_TAG env names the seeded domains' tag.
--
-- Tokens come from the environment (BENCH_ACCESS, BENCH_SECRET), not the command
-- line. BENCH_IDEMPOTENCY=1 sends a fresh `Idempotency-Key` with every request. LuaJIT's ffi is used only to interrupt wrk at the end of a fixed burst.

local ffi = require("ffi")
ffi.cdef [[
int kill(int pid, int sig);
int getpid(void);
]]

local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

local charset = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
local function random_token(prefix, length)
  local out = { prefix }
  for i = 1, length do
    local k = math.random(1, #charset)
    out[#out + 1] = charset:sub(k, k)
  end
  return table.concat(out)
end

function init(args)
  mode = args[1] or "empty"
  tag = args[2] or "t"
  limit = tonumber(args[3] or "0") or 0
  ndomains = tonumber(args[4] or "1") or 1
  reuse_tag = os.getenv("REUSE_TAG") or tag
  keyed = os.getenv("BENCH_IDEMPOTENCY") == "1"
  access = os.getenv("BENCH_ACCESS") or ""
  secret = os.getenv("BENCH_SECRET") or ""
  orgs = {}
  if mode == "reuse-orgs" then
    for line in io.lines(os.getenv("BENCH_ORGS_FILE")) do
      local a, s, d = line:match("^(%S+) (%S+) (%S+)$")
      if a then orgs[#orgs + 1] = { a, s, d } end
    end
    assert(#orgs > 0, "BENCH_ORGS_FILE has no organizations")
  end
  counter = 0
  responses = 0
  s2xx, s401, s4xx, s5xx, sother = 0, 0, 0, 0, 0
  math.randomseed(os.time() * 1000 + id)
  forged = {}
  if mode == "rejected" then
    for i = 1, 2048 do
      forged[i] = { random_token("dak_", 64), random_token("das_", 43) }
    end
  end
end

local path = "/api/v1/emails/domains/generate"

function request()
  counter = counter + 1
  if mode == "empty" then
    return wrk.format("GET", "/")
  end
  local headers = {
    ["Content-Type"] = "application/json",
    ["X-Api-Access-Token"] = access,
    ["X-Api-Secret-Token"] = secret,
  }
  local email
  if mode == "new" then
    email = string.format("noreply@n%d-%d.%s.example", id, counter, tag)
  elseif mode == "reuse" then
    email = string.format("s%d-%d-%s@d%d.%s.example", id, counter, tag, counter % ndomains, reuse_tag)
  elseif mode == "rejected-revoked" then
    email = string.format("noreply@v%d-%d.%s.example", id, counter, tag)
  elseif mode == "reuse-orgs" then
    local o = orgs[(counter * 7 + id) % #orgs + 1]
    headers["X-Api-Access-Token"] = o[1]
    headers["X-Api-Secret-Token"] = o[2]
    email = string.format("s%d-%d-%s@%s", id, counter, tag, o[3])
  else -- rejected
    local pair = forged[counter % #forged + 1]
    headers["X-Api-Access-Token"] = pair[1]
    headers["X-Api-Secret-Token"] = pair[2]
    email = string.format("noreply@x%d-%d.%s.example", id, counter, tag)
  end
  if keyed then
    headers["Idempotency-Key"] = string.format("%s-%d-%d", tag, id, counter)
  end
  local body = '{"email":"' .. email .. '","replyTo":"support@' .. email:match("@(.*)$") .. '","inbound":false}'
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  responses = responses + 1
  if status >= 200 and status < 300 then
    s2xx = s2xx + 1
  elseif status == 401 then
    s401 = s401 + 1
  elseif status >= 400 and status < 500 then
    s4xx = s4xx + 1
  elseif status >= 500 then
    s5xx = s5xx + 1
  else
    sother = sother + 1
  end
  if limit > 0 and responses == limit then
    wrk.thread:stop()
    ffi.C.kill(ffi.C.getpid(), 2) -- SIGINT: wrk's main thread stops waiting and reports
  end
end

function done(summary, latency, requests)
  local st = { s2xx = 0, s401 = 0, s4xx = 0, s5xx = 0, sother = 0 }
  for _, t in ipairs(threads) do
    for k, _ in pairs(st) do
      st[k] = st[k] + (tonumber(t:get(k)) or 0)
    end
  end
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_s":%.4f,"rps":%.1f,' ..
    '"latency_ms":{"mean":%.3f,"p50":%.3f,"p90":%.3f,"p99":%.3f,"max":%.3f},' ..
    '"status":{"2xx":%d,"401":%d,"4xx":%d,"5xx":%d,"other":%d},' ..
    '"socket_errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d}}\n',
    summary.requests, secs, summary.requests / secs,
    latency.mean / 1e3, latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3,
    st.s2xx, st.s401, st.s4xx, st.s5xx, st.sother,
    e.connect, e.read, e.write, e.timeout))
end
