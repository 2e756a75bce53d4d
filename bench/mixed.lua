-- wrk script for bench/rss_check.sh: cycles through good and bad requests
-- (a .npy inference, a JSON list inference, malformed .npy, malformed JSON,
-- an unknown model, a wrong content type, a wrong input shape).
local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end
local npy = read(os.getenv("BODY") or "bench/models/tiny/input.npy")
local npy_h = {["Content-Type"] = "application/x-npy", ["Accept"] = "application/x-npy"}
local json_h = {["Content-Type"] = "application/json"}
local requests = {}
local i = 0

function init(args)
  requests = {
    wrk.format("POST", "/v1/models/tiny/infer", npy_h, npy),
    wrk.format("POST", "/v1/models/tiny/infer", json_h,
      '{"input": {"shape": [1, 1, 4, 4], "data": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}}'),
    wrk.format("POST", "/v1/models/tiny/infer", npy_h, "\147NUMPY garbage"),
    wrk.format("POST", "/v1/models/tiny/infer", json_h, '{"input": [1, 2,'),
    wrk.format("POST", "/v1/models/nope/infer", json_h, '{}'),
    wrk.format("POST", "/v1/models/tiny/infer", {["Content-Type"] = "text/plain"}, "hi"),
    wrk.format("POST", "/v1/models/tiny/infer", json_h, '{"input": {"shape": [1, 2, 4, 4], "init": "random"}}'),
    wrk.format("POST", "/v1/conv2d", json_h,
      '{"layer": {"type": "Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 2}, ' ..
      '"weight": {"data": [1, 1, 1, 1]}, "bias": {"data": [0.5]}, "input": {"shape": [1, 1, 2, 3], "data": [1, 2, 3, 4, 5, 6]}}'),
  }
end

function request()
  i = i + 1
  return requests[(i % #requests) + 1]
end
