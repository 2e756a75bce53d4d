#!/usr/bin/env bash
# The Open Inference Protocol's REST examples (KServe v2 / Triton HTTP,
# including the binary tensor extension) as curl requests against a live
# `convd serve --models examples`: status codes, content types, the
# {"error": "..."} object, framing errors, gzip/deflate bodies.
set -u
convd=${CONVD_BIN:-build/convd}
work=$(mktemp -d)
log="$work/server.log"
"$convd" serve --port 0 --models examples >"$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
port=
for _ in $(seq 200); do
  port=$(sed -n 's|.*listening on http://[^ ]*:\([0-9][0-9]*\).*|\1|p' "$log" | head -1)
  [ -n "$port" ] && break
  kill -0 $pid 2>/dev/null || { echo "FAIL: the server exited:"; cat "$log"; exit 1; }
  sleep 0.05
done
[ -n "$port" ] || { echo "FAIL: no 'listening on' line"; cat "$log"; exit 1; }
URL="http://127.0.0.1:$port"
for _ in $(seq 200); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v2/health/ready")" = 200 ] && break
  sleep 0.05
done

failed=0
# check NAME STATUS [CONTENT-TYPE|-] [BODY-REGEX|-] -- curl args...
check() {
  local name=$1 want=$2 want_ct=$3 want_body=$4; shift 5
  local got ct
  got=$(curl -s -o "$work/body" -D "$work/headers" -w '%{http_code}' "$@")
  ct=$(sed -n 's/^[Cc]ontent-[Tt]ype: *\([^;\r]*\).*/\1/p' "$work/headers" | head -1)
  if [ "$got" != "$want" ]; then
    echo "FAIL $name: status $got, want $want: $(head -c 300 "$work/body")"; failed=1; return
  fi
  if [ "$want_ct" != - ] && [ "$ct" != "$want_ct" ]; then
    echo "FAIL $name: Content-Type '$ct', want '$want_ct'"; failed=1; return
  fi
  if [ "$want_body" != - ] && ! head -c 4096 "$work/body" | grep -aEq "$want_body"; then
    echo "FAIL $name: body does not match /$want_body/: $(head -c 300 "$work/body")"; failed=1; return
  fi
  echo "ok   $name"
}
empty() { [ ! -s "$work/body" ] || { echo "FAIL $1: body not empty"; failed=1; }; }

# request bodies: atrous takes [N, 3, 64, 64]
python3 - "$work" <<'PY'
import json, struct, sys, zlib, gzip
w = sys.argv[1]
n = 3 * 64 * 64
vals = [((i * 37) % 101) / 50.0 - 1 for i in range(n)]
req = {"id": "42", "inputs": [{"name": "input", "shape": [1, 3, 64, 64], "datatype": "FP32", "data": vals}],
       "outputs": [{"name": "output"}]}
open(f"{w}/infer.json", "w").write(json.dumps(req))
hdr = json.dumps({"inputs": [{"name": "input", "shape": [1, 3, 64, 64], "datatype": "FP32",
                              "parameters": {"binary_data_size": 4 * n}}],
                  "outputs": [{"name": "output", "parameters": {"binary_data": True}}]}).encode()
blob = struct.pack("<%df" % n, *vals)
open(f"{w}/infer.bin", "wb").write(hdr + blob)
open(f"{w}/hdrlen", "w").write(str(len(hdr)))
open(f"{w}/infer.short", "wb").write(hdr + blob[:-4])
open(f"{w}/infer.long", "wb").write(hdr + blob + b"\0\0\0\0")
open(f"{w}/infer.json.gz", "wb").write(gzip.compress(json.dumps(req).encode()))
open(f"{w}/infer.bin.zz", "wb").write(zlib.compress(hdr + blob))
req["outputs"] = [{"name": "nope"}]
open(f"{w}/badoutput.json", "w").write(json.dumps(req))
req["outputs"] = [{"name": "output"}]
req["inputs"][0]["datatype"] = "INT64"
req["inputs"][0]["data"] = [2 ** 24 + 1] * n
open(f"{w}/int64.json", "w").write(json.dumps(req))
bad = {"inputs": [{"name": "input", "shape": [1, 4, 64, 64], "datatype": "FP32", "data": [0] * (4 * 64 * 64)}]}
open(f"{w}/badshape.json", "w").write(json.dumps(bad))
PY
H=$(cat "$work/hdrlen")
M=$URL/v2/models/atrous

check "server live" 200 - - -- "$URL/v2/health/live"; empty "server live"
check "server ready" 200 - - -- "$URL/v2/health/ready"; empty "server ready"
check "server metadata" 200 application/json '"extensions":\["binary_tensor_data","model_configuration","model_repository","statistics"\]' -- "$URL/v2"
check "model metadata" 200 application/json '"inputs":\[\{"name":"input","datatype":"FP32","shape":\[-1,3,64,64\]\}\]' -- "$M"
check "model metadata, version 1" 200 application/json '"versions":\["1"\]' -- "$M/versions/1"
check "model ready" 200 - - -- "$M/ready"; empty "model ready"
check "model config" 200 application/json '"layers":\[' -- "$M/config"
check "infer, JSON" 200 application/json '^\{"model_name":"atrous","model_version":"1","id":"42","parameters":\{"convd_flops":[0-9]+.*"outputs":\[\{"name":"output","datatype":"FP32","shape":\[1,8,64,64\],"data":\[' \
  -- -X POST "$M/infer" -H "Content-Type: application/json" --data-binary @"$work/infer.json"
check "infer, JSON, no Content-Type" 200 application/json '"data":\[' -- -X POST "$M/infer" -H "Content-Type:" --data-binary @"$work/infer.json"
check "infer, versioned" 200 application/json '"model_version":"1"' -- -X POST "$M/versions/1/infer" --data-binary @"$work/infer.json"
check "infer, binary" 200 application/octet-stream '"binary_data_size":131072' \
  -- -X POST "$M/infer" -H "Content-Type:" -H "Inference-Header-Content-Length: $H" --data-binary @"$work/infer.bin"
reply_h=$(sed -n 's/^[Ii]nference-[Hh]eader-[Cc]ontent-[Ll]ength: *\([0-9]*\).*/\1/p' "$work/headers")
size=$(stat -c %s "$work/body")
if [ -z "$reply_h" ] || [ $((size - reply_h)) -ne $((8 * 64 * 64 * 4)) ]; then
  echo "FAIL binary reply framing: header '$reply_h', body $size bytes"; failed=1
else echo "ok   binary reply framing"; fi
check "infer, gzip JSON" 200 application/json '"data":\[' -- -X POST "$M/infer" -H "Content-Encoding: gzip" --data-binary @"$work/infer.json.gz"
check "infer, deflate binary" 200 application/octet-stream - \
  -- -X POST "$M/infer" -H "Content-Encoding: deflate" -H "Inference-Header-Content-Length: $H" --data-binary @"$work/infer.bin.zz"
check "statistics, one model" 200 application/json '"model_stats":\[\{"name":"atrous","version":"1".*"success":\{"count":[1-9]' -- "$M/stats"
check "statistics, every model" 200 application/json '"name":"standard_classic"' -- "$URL/v2/models/stats"
check "repository index" 200 application/json '\{"name":"atrous","version":"1","state":"READY","reason":""\}' -- -X POST "$URL/v2/repository/index"
check "unload" 200 - - -- -X POST "$URL/v2/repository/models/mobilenet_v1/unload" -d '{"parameters": {"unload_dependents": false}}'
check "unloaded: not ready" 404 - - -- "$URL/v2/models/mobilenet_v1/ready"
check "unloaded in the index" 200 application/json '"name":"mobilenet_v1","version":"1","state":"UNAVAILABLE"' -- -X POST "$URL/v2/repository/index"
check "load" 200 - - -- -X POST "$URL/v2/repository/models/mobilenet_v1/load" -d '{}'
check "loaded: metadata" 200 application/json '"shape":\[-1,3,224,224\]' -- "$URL/v2/models/mobilenet_v1"

# errors: {"error": "..."} as application/json
E='^\{"error":"'
check "unknown model" 404 application/json "$E"'.*no_such' -- "$URL/v2/models/no_such"
check "unknown model, infer" 404 application/json "$E" -- -X POST "$URL/v2/models/no_such/infer" --data-binary @"$work/infer.json"
check "unknown version" 404 application/json "$E" -- "$M/versions/7"
check "unknown route" 404 application/json "$E" -- "$URL/v2/nothing/here"
check "wrong method" 405 application/json "$E" -- -X GET "$M/infer"
check "bad shape" 400 application/json "$E"'.*shape' -- -X POST "$M/infer" --data-binary @"$work/badshape.json"
check "INT64 beyond 2^24" 400 application/json "$E"'.*2\^24' -- -X POST "$M/infer" --data-binary @"$work/int64.json"
check "invalid JSON" 400 application/json "$E" -- -X POST "$M/infer" -d '{"inputs": ['
check "header length past the body" 400 application/json "$E"'Inference-Header-Content-Length' \
  -- -X POST "$M/infer" -H "Inference-Header-Content-Length: 99999999" --data-binary @"$work/infer.bin"
check "header length not a number" 400 application/json "$E"'Inference-Header-Content-Length' \
  -- -X POST "$M/infer" -H "Inference-Header-Content-Length: -3" --data-binary @"$work/infer.bin"
check "missing tensor bytes" 400 application/json "$E"'.*only' \
  -- -X POST "$M/infer" -H "Inference-Header-Content-Length: $H" --data-binary @"$work/infer.short"
check "extra bytes" 400 application/json "$E"'4 bytes after the JSON header' \
  -- -X POST "$M/infer" -H "Inference-Header-Content-Length: $H" --data-binary @"$work/infer.long"
check "binary without the header" 400 application/json "$E" -- -X POST "$M/infer" --data-binary @"$work/infer.bin"
check "broken gzip" 400 application/json "$E"'Content-Encoding gzip' -- -X POST "$M/infer" -H "Content-Encoding: gzip" -d 'not gzip'
check "unknown output" 400 application/json "$E"'.*unexpected inference output' \
  -- -X POST "$M/infer" --data-binary @"$work/badoutput.json"
check "load unknown" 400 application/json "$E" -- -X POST "$URL/v2/repository/models/no_such/load"

# the repository extension behind the API key
echo "v2-secret" >"$work/key"
"$convd" serve --port 0 --models examples --api-key-file "$work/key" --max-body-mb 1 >"$work/keyed.log" 2>&1 &
kpid=$!
kport=
for _ in $(seq 200); do
  kport=$(sed -n 's|.*listening on http://[^ ]*:\([0-9][0-9]*\).*|\1|p' "$work/keyed.log" | head -1)
  [ -n "$kport" ] && break
  sleep 0.05
done
K="http://127.0.0.1:$kport"
# a body over --max-body-mb is refused from Content-Length, in the v2 error format
head -c $((1024 * 1024 + 1)) /dev/zero >"$work/over.bin"
check "body over the limit" 413 application/json '^\{"error":"the body \(1048577 bytes\) is over the limit' \
  -- -X POST "$K/v2/models/atrous/infer" -H "Expect:" --data-binary @"$work/over.bin"

check "unload without the key" 401 application/json "$E" -- -X POST "$K/v2/repository/models/atrous/unload"
check "load without the key" 401 application/json "$E" -- -X POST "$K/v2/repository/models/atrous/load"
check "unload with the key" 200 - - -- -X POST "$K/v2/repository/models/atrous/unload" -H "Authorization: Bearer v2-secret"
check "load with the key" 200 - - -- -X POST "$K/v2/repository/models/atrous/load" -H "Authorization: Bearer v2-secret"
kill -TERM $kpid; wait $kpid 2>/dev/null

[ "$failed" -eq 0 ] || { echo "some checks failed"; exit 1; }
echo "all v2 curl checks passed"
