-- wrk script of bench/floods.sh: logins with unknown usernames (a different one per request),
-- counting the answers by status.
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end

function init(args)
  n = 0
  s2, s401, s429, s5, other = 0, 0, 0, 0, 0
end

function request()
  n = n + 1
  local body = '{"username":"nobody' .. id .. '_' .. n .. '","password":"wrong-password-123"}'
  return wrk.format("POST", "/api/v1/auth/login", { ["Content-Type"] = "application/json" }, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then s2 = s2 + 1
  elseif status == 401 then s401 = s401 + 1
  elseif status == 429 then s429 = s429 + 1
  elseif status >= 500 then s5 = s5 + 1
  else other = other + 1 end
end

function done(summary, latency, requests)
  local t = { 0, 0, 0, 0, 0 }
  for _, th in ipairs(threads) do
    t[1] = t[1] + th:get("s2"); t[2] = t[2] + th:get("s401"); t[3] = t[3] + th:get("s429")
    t[4] = t[4] + th:get("s5"); t[5] = t[5] + th:get("other")
  end
  io.write(string.format("answers: 2xx %d, 401 %d, 429 %d, 5xx %d, other %d; socket errors: connect %d, read %d, timeout %d\n",
    t[1], t[2], t[3], t[4], t[5], summary.errors.connect, summary.errors.read, summary.errors.timeout))
end
