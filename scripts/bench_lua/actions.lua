-- POST an action on a different dossier each time (codes from CODES_FILE, version 1): no 412 between requests.
local token = os.getenv("TOKEN") or ""
local body = os.getenv("BODY") or '{"action":"assign","assignee":"canbo2.phuong"}'
local prefix = os.getenv("PREFIX") or "/api/workflow/v1/dossiers/"
local threads, codes, i, step = 0, {}, 0, 1

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(os.getenv("CODES_FILE")) do codes[#codes + 1] = line end
  i = id + 1
  step = 2
end

request = function()
  local code = codes[i]
  i = i + step
  if i > #codes then i = id + 1 end
  local headers = {["Content-Type"] = "application/json", ["If-Match"] = '"1"',
                   ["Authorization"] = "Bearer " .. token}
  return wrk.format("POST", prefix .. code .. "/actions", headers, body)
end
