#!/usr/bin/env bash
# Runs the curl examples quoted in the README against a live `convd serve`
# (started here on a free port with --models examples) and checks each one's
# HTTP status. The examples are the list below, verbatim apart from $URL;
# they run from the repository root.
set -u

# --- README examples: "expected-status | command" -------------------------
EXAMPLES=(
'200 | curl -s $URL/healthz'
'200 | curl -s $URL/readyz'
'200 | curl -s $URL/v1/models'
'200 | curl -s $URL/v1/models/mobilenet_v1'
'200 | curl -s -X POST $URL/v1/models/separable_classic/infer -H "Content-Type: application/x-npy" -H "Accept: application/x-npy" --data-binary @examples/separable_classic/input.npy -o out.npy'
'200 | curl -s -X POST $URL/v1/models/separable_classic/infer -H "Content-Type: application/json" -d "{\"input\": {\"init\": \"random\", \"seed\": 1}}"'
'200 | curl -s -X POST "$URL/v1/models/atrous/infer?encoding=b64" -H "Content-Type: application/json" -d "{\"input\": {\"shape\": [1, 3, 64, 64], \"init\": \"random\", \"seed\": 7}}"'
'200 | curl -s -X POST $URL/v1/conv2d -H "Content-Type: application/json" -d "{\"layer\": {\"type\": \"Conv2d\", \"in_channels\": 1, \"out_channels\": 1, \"kernel_size\": 2}, \"weight\": {\"data\": [1, 1, 1, 1]}, \"bias\": {\"data\": [0.5]}, \"input\": {\"shape\": [1, 1, 2, 3], \"data\": [1, 2, 3, 4, 5, 6]}}"'
'200 | curl -s -X POST $URL/v1/conv2d -H "Content-Type: application/json" -d "{\"layer\": {\"type\": \"SeparableConv2d\", \"in_channels\": 3, \"out_channels\": 10, \"kernel_size\": 3, \"padding\": 1}, \"weights\": {\"depthwise.weight\": {\"init\": \"random\", \"seed\": 1}, \"depthwise.bias\": {\"init\": \"random\", \"seed\": 2}, \"pointwise.weight\": {\"init\": \"random\", \"seed\": 3}, \"pointwise.bias\": {\"init\": \"random\", \"seed\": 4}}, \"input\": {\"shape\": [1, 3, 32, 32], \"init\": \"random\"}}"'
'200 | curl -s -X POST $URL/v1/conv2d -H "Accept: application/x-npy" -F request=@layer.json -F input=@examples/separable_classic/input.npy -F weight=@weight.npy -F bias=@bias.npy -o out.npy'
'200 | curl -s -X POST $URL/v1/infer -H "Content-Type: application/json" -d "{\"model\": {\"layers\": [{\"type\": \"Conv2d\", \"in_channels\": 3, \"out_channels\": 8, \"kernel_size\": 3}, {\"type\": \"ReLU\"}]}, \"weights\": {\"0.weight\": {\"init\": \"random\"}, \"0.bias\": {\"init\": \"random\"}}, \"input\": {\"shape\": [1, 3, 16, 16], \"init\": \"random\"}}"'
'200 | curl -s -X POST $URL/v1/analyze -H "Content-Type: application/json" -d "{\"layer\": {\"type\": \"SeparableConv2d\", \"in_channels\": 3, \"out_channels\": 10, \"kernel_size\": 3, \"padding\": 1}, \"input_shape\": [1, 3, 128, 128]}"'
'200 | curl -s $URL/metrics'
'200 | curl -s $URL/openapi.json'
'404 | curl -s $URL/v1/models/no_such_model'
'422 | curl -s -X POST $URL/v1/models/separable_classic/infer -H "Content-Type: application/json" -d "{\"input\": {\"shape\": [1, 4, 8, 8], \"init\": \"random\"}}"'
)
# ---------------------------------------------------------------------------

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
[ -n "$port" ] || { echo "FAIL: no 'listening on' line:"; cat "$log"; exit 1; }
URL="http://127.0.0.1:$port"
for _ in $(seq 200); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/readyz")" = 200 ] && break
  sleep 0.05
done

# files the multipart example names: the layer JSON and its weights as .npy
cat >"$work/layer.json" <<'JSON'
{"layer": {"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": 1}}
JSON
python3 - "$work" <<'PY'
import struct, sys
def npy(path, shape):
    n = 1
    for d in shape: n *= d
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }" % "".join("%d, " % d for d in shape)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack("<%df" % n, *[((i * 7) % 11 - 5) / 8 for i in range(n)]))
npy(sys.argv[1] + "/weight.npy", (4, 3, 3, 3))
npy(sys.argv[1] + "/bias.npy", (4,))
PY

failures=0
root=$(pwd)
for example in "${EXAMPLES[@]}"; do
  want=${example%% | *}
  cmd=${example#* | }
  # run in $work so -o out.npy and @layer.json land there; examples/ is reached through a link
  ln -sfn "$root/examples" "$work/examples"
  # print only the status: the body goes to /dev/null unless the example saves it
  if [ "${cmd#*-o out.npy}" != "$cmd" ]; then run=${cmd/curl -s/curl -s -w %\{http_code\}}
  else run=${cmd/curl -s/curl -s -o /dev/null -w %\{http_code\}}; fi
  got=$(cd "$work" && URL=$URL eval "$run" 2>&1)
  if [ "$got" != "$want" ]; then
    echo "FAIL ($got, expected $want): $cmd"
    failures=$((failures + 1))
  else
    echo "ok $want: ${cmd:0:100}"
  fi
done

# every curl line the README quotes must be one of the examples run above
while IFS= read -r line; do
  found=
  for example in "${EXAMPLES[@]}"; do
    [ "${example#* | }" = "$line" ] && { found=1; break; }
  done
  if [ -z "$found" ]; then
    echo "FAIL: README.md quotes an example this script does not run: $line"
    failures=$((failures + 1))
  fi
done < <(grep -E '^curl -s ' "$root/README.md")

kill -TERM $pid
wait $pid
status=$?
trap 'rm -rf "$work"' EXIT
[ $status -eq 0 ] || { echo "FAIL: convd serve exited $status after SIGTERM"; failures=$((failures + 1)); }
echo "${#EXAMPLES[@]} examples, $failures failed"
[ $failures -eq 0 ]
