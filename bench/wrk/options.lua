-- The arguments every script in bench/wrk takes after wrk's "--", parsed once here.
--
-- key=value pairs: "header=Name: value" and "path=..." may repeat (headers by name, paths
-- in order); any other key is kept as it is (method, body, ...).
--
-- A script loads it from its own folder, so it works wherever wrk is started from:
--
--   local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
--   package.path = here .. "?.lua;" .. package.path
--   local options = require("options")

return function(args)
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
