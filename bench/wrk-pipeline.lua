-- bench/wrk-pipeline.lua: wrk sends DEPTH requests (the script's
-- argument, default 16) back to back on each connection and counts each
-- answer; bench/backends.sh's wrk jobs with DEPTH > 1.
init = function(args)
   local depth = tonumber(args[1]) or 16
   local r = {}
   for i = 1, depth do r[i] = wrk.format(nil, "/") end
   req = table.concat(r)
end
request = function() return req end
