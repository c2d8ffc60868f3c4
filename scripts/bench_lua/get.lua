-- GET with an optional bearer token.
local token = os.getenv("TOKEN") or ""
request = function()
  local headers = {}
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("GET", nil, headers)
end
