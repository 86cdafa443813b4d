-- wrk script: send DEPTH requests back to back on each connection (TechEmpower plaintext method).
-- usage: wrk -s benchmarks/pipeline.lua URL -- [DEPTH]   (DEPTH defaults to 16)
-- wrk counts every response, so Requests/sec counts pipelined requests one by one.
init = function(args)
   local depth = tonumber(args[1]) or 16
   local r = {}
   for i = 1, depth do
      r[i] = wrk.format()
   end
   req = table.concat(r)
end

request = function()
   return req
end
