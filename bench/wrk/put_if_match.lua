-- Compare-and-swap writes: PUT with If-Match carrying the ETag of the last response.
--
-- Each wrk thread owns one item (the "path" arguments are dealt out to the threads in
-- turn) and should run one connection (-c equal to -t), so that no two writers race on
-- an item and every PUT is expected to succeed. The first request of a thread is a GET
-- that learns the item's ETag; each 200 to a PUT carries the next one (and a 412 the
-- current one, so a lost race heals itself).
--
--   wrk -t2 -c2 ... -s bench/wrk/put_if_match.lua http://127.0.0.1:PORT -- \
--       path=/api/v1/posts/1 path=/api/v1/posts/2 "header=Authorization: Bearer T" \
--       'body={"body": "edited"}'

-- The argument parser the scripts share (options.lua), loaded from this script's folder.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local options = require("options")

local threads_started = 0

local threads = {}

function setup(thread)
  threads_started = threads_started + 1
  threads[threads_started] = thread
  thread:set("number", threads_started)
end

local path, body, etag
local read_headers, write_headers = {}, {}

function init(args)
  local o = options(args)
  path = o.paths[((number or 1) - 1) % #o.paths + 1]
  body = o.body
  for name, value in pairs(o.headers) do
    read_headers[name] = value
    write_headers[name] = value
  end
  write_headers["Content-Type"] = "application/json"
end

function request()
  if etag == nil then
    return wrk.format("GET", path, read_headers)
  end
  write_headers["If-Match"] = etag
  return wrk.format("PUT", path, write_headers, body)
end

-- Statuses other than 2xx, as "status=count" pairs (a string: wrk copies strings between
-- threads), printed by done() as "Statuses: 412=1" for bench/wrk_output.py. The response
-- hook runs anyway, for the ETag, so counting costs the measurement nothing.
local unexpected = {}
statuses = ""

function response(status, response_headers, response_body)
  etag = response_headers["ETag"] or response_headers["Etag"] or response_headers["etag"] or etag
  if status < 200 or status > 299 then
    unexpected[status] = (unexpected[status] or 0) + 1
    local pairs_ = {}
    for code, count in pairs(unexpected) do
      pairs_[#pairs_ + 1] = code .. "=" .. count
    end
    statuses = table.concat(pairs_, " ")
  end
end

function done(summary, latency, requests)
  local all = {}
  for i = 1, threads_started do
    local counted = threads[i]:get("statuses")
    for code, count in string.gmatch(counted or "", "(%d+)=(%d+)") do
      all[code] = (all[code] or 0) + tonumber(count)
    end
  end
  local line = {}
  for code, count in pairs(all) do
    line[#line + 1] = code .. "=" .. count
  end
  if #line > 0 then
    table.sort(line)
    io.write("Statuses: " .. table.concat(line, " ") .. "\n")
  end
end
