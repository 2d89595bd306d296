-- wrk script of bench/capacity.sh: POST /api/v1/doses, one dose per client, each wrk thread
-- taking its own share of the UICs in the file (so no dose is asked twice).
-- Arguments (after --): UICS_FILE TOKEN THREADS
local count = 0
function setup(thread)
  thread:set("id", count)
  count = count + 1
end

function init(args)
  local file, token, threads = args[1], args[2], tonumber(args[3])
  uics = {}
  local i = 0
  for line in io.lines(file) do
    if line ~= "" then
      if i % threads == id then uics[#uics + 1] = line end
      i = i + 1
    end
  end
  n = 0
  headers = { ["Content-Type"] = "application/json" }
  if token ~= "-" then headers["Authorization"] = "Bearer " .. token end
end

function request()
  n = n + 1
  -- Past the end of the share a dose is asked again (refused, counted as non-2xx by wrk).
  local uic = uics[((n - 1) % #uics) + 1]
  return wrk.format("POST", nil, headers, '{"uic":"' .. uic .. '"}')
end
