-- POST a JSON body from BODY_FILE, replacing __AGENCY__ with one of AGENCIES (comma separated),
-- round robin per thread, and a fresh Idempotency-Key per request. With PER_AGENCY set, every thread
-- sends PER_AGENCY requests to one agency before moving to the next (one agency at a time, without
-- running out of its 9,999 codes of the day).
local f = io.open(os.getenv("BODY_FILE"), "r")
local template = f:read("*a")
f:close()
local token = os.getenv("TOKEN") or ""
local agencies = {}
for code in string.gmatch(os.getenv("AGENCIES") or "", "[^,]+") do table.insert(agencies, code) end
local per_agency = tonumber(os.getenv("PER_AGENCY") or "")
local counter = 0
thread_id = 0
setup = function(thread)
  thread:set("thread_id", math.random(1, 1000000000))
end
request = function()
  counter = counter + 1
  local agency
  if per_agency then
    agency = agencies[math.floor((counter - 1) / per_agency) % #agencies + 1]
  else
    agency = agencies[(counter + thread_id) % #agencies + 1]
  end
  local body = string.gsub(template, "__AGENCY__", agency)
  local headers = { ["Content-Type"] = "application/json",
                    ["Idempotency-Key"] = string.format("bench-%d-%d-%d", thread_id, counter, os.time()),
                    ["Authorization"] = "Bearer " .. token }
  return wrk.format("POST", nil, headers, body)
end
