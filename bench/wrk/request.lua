-- One fixed request, repeated: GET with credentials, or POST with a body.
--
--   wrk ... -s bench/wrk/request.lua http://127.0.0.1:PORT -- \
--       method=POST path=/api/v1/posts "header=Authorization: Bearer T" body='{"body": "hi"}'
--
-- Arguments are key=value; "header" may repeat. The request is built once, in init.

local function options(args)
  local o = { headers = {}, paths = {} }
  for _, arg in ipairs(args) do
    local key, value = arg:match("^(%w+)=(.*)$")
    if key == "header" then
      local name, v = value:match("^([^:]+):%s*(.*)$")
      o.headers[name] = v
    elseif key == "path" then
      table.insert(o.paths, value)
    elseif key then
      o[key] = value
    end
  end
  return o
end

function init(args)
  local o = options(args)
  wrk.method = o.method or "GET"
  wrk.path = o.paths[1] or wrk.path
  for name, value in pairs(o.headers) do
    wrk.headers[name] = value
  end
  wrk.body = o.body
end
