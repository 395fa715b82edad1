-- Walk a collection by following rel="next" in each response's Link header (RFC 8288),
-- as a client paging through it would. Every wrk thread walks on its own from "path";
-- at the last page (no next link) or on an error it starts again from there.
--
--   wrk ... -s bench/wrk/follow_next.lua http://127.0.0.1:PORT -- \
--       "path=/api/v1/students?cursor=...&per_page=25" "header=Authorization: Bearer T"

-- The argument parser the scripts share (options.lua), loaded from this script's folder.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local options = require("options")

local start, current, headers
pages, restarts = 0, 0

function init(args)
  local o = options(args)
  start = o.paths[1]
  current = start
  headers = o.headers
end

function request()
  return wrk.format("GET", current, headers)
end

function response(status, response_headers, body)
  local link = response_headers["Link"] or response_headers["link"]
  local target = status == 200 and link and link:match('<([^>]*)>;%s*rel="next"')
  if target then
    -- Links are absolute; wrk wants the path and query on the server it targets.
    current = target:gsub("^https?://[^/]+", "")
    pages = pages + 1
  else
    current = start
    restarts = restarts + 1
  end
end
