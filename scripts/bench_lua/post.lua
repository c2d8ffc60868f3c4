-- POST a JSON body from BODY_FILE with a fresh Idempotency-Key per request.
local body_file = os.getenv("BODY_FILE")
local f = io.open(body_file, "r")
local body = f:read("*a")
f:close()
local token = os.getenv("TOKEN") or ""
local counter = 0
thread_id = 0
setup = function(thread)
  thread:set("thread_id", math.random(1, 1000000000))
end
request = function()
  counter = counter + 1
  local headers = { ["Content-Type"] = "application/json",
                    ["Idempotency-Key"] = string.format("bench-%d-%d-%d", thread_id, counter, os.time()) }
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("POST", nil, headers, body)
end
