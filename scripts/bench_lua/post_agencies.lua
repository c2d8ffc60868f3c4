-- POST a JSON body from BODY_FILE, replacing __AGENCY__ with one of AGENCIES (comma separated),
-- round robin per thread, and a fresh Idempotency-Key per request.
local f = io.open(os.getenv("BODY_FILE"), "r")
local template = f:read("*a")
f:close()
local token = os.getenv("TOKEN") or ""
local agencies = {}
for code in string.gmatch(os.getenv("AGENCIES") or "", "[^,]+") do table.insert(agencies, code) end
local counter = 0
thread_id = 0
setup = function(thread)
  thread:set("thread_id", math.random(1, 1000000000))
end
request = function()
  counter = counter + 1
  local agency = agencies[(counter + thread_id) % #agencies + 1]
  local body = string.gsub(template, "__AGENCY__", agency)
  local headers = { ["Content-Type"] = "application/json",
                    ["Idempotency-Key"] = string.format("bench-%d-%d-%d", thread_id, counter, os.time()),
                    ["Authorization"] = "Bearer " .. token }
  return wrk.format("POST", nil, headers, body)
end
