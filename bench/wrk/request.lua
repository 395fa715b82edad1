-- One fixed request, repeated: GET with credentials, or POST with a body.
--
--   wrk ... -s bench/wrk/request.lua http://127.0.0.1:PORT -- \
--       method=POST path=/api/v1/posts "header=Authorization: Bearer T" body='{"body": "hi"}'
--
-- Arguments are key=value; "header" may repeat. The request is built once, in init.

-- The argument parser the scripts share (options.lua), loaded from this script's folder.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local options = require("options")

function init(args)
  local o = options(args)
  wrk.method = o.method or "GET"
  wrk.path = o.paths[1] or wrk.path
  for name, value in pairs(o.headers) do
    wrk.headers[name] = value
  end
  wrk.body = o.body
end
