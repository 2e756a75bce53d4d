-- wrk script: POST a .npy body and ask for a .npy reply.
-- usage: BODY=bench/models/tiny/input.npy wrk -t2 -c32 -d10s -s bench/post_npy.lua http://127.0.0.1:8080/v1/models/tiny/infer
local path = os.getenv("BODY") or "bench/models/tiny/input.npy"
local f = assert(io.open(path, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/x-npy"
wrk.headers["Accept"] = "application/x-npy"

local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  io.write(string.format("p50 %.3f ms  p99 %.3f ms  max %.3f ms\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
