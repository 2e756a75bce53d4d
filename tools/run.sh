#!/usr/bin/env bash
# `make run`: shows example (a), the classic 1x3x128x128 depthwise-separable
# exercise, through `convd run` with its statistics and the separable-vs-
# standard comparison, then starts the service on 127.0.0.1:8080 with
# examples/ as the model repository and prints curl commands to try.
set -euo pipefail
build=${1:-build}
convd="$build/convd"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== convd run examples/separable_classic (input 1x3x128x128) --stats"
"$convd" run examples/separable_classic examples/separable_classic/input.npy -o "$out/sep.npy" --stats \
  > "$out/sep.json"
"$convd" run examples/standard_classic examples/standard_classic/input.npy -o "$out/std.npy" --stats \
  > "$out/std.json"
/usr/bin/env python3 - "$out/sep.json" "$out/std.json" <<'PY'
import json, sys
sep, std = (json.load(open(p)) for p in sys.argv[1:3])
def show(name, s):
    print(f"{name}: output {s['output_shape']}, params {s['params']}, MACs {s['macs']}, "
          f"FLOPs {s['flops']}, compute {s['compute_ms']:.3f} ms")
    for l in s["layers"]:
        print(f"   layer {l['index']} {l['type']:<16} {l['execution']:<36} out {l['output_shape']} "
              f"RF {l['receptive_field']} FLOPs {l['flops']} {l['compute_ms']:.3f} ms")
show("separable", sep)
show("standard ", std)
eq = sep["layers"][0]["standard_equivalent"]
print()
print(f"FLOP ratio separable/standard: {sep['flops'] / std['flops']:.4f} "
      f"(textbook 1/n + 1/k^2 = {eq['textbook_ratio']:.4f}); "
      f"speedup bound {std['flops'] / sep['flops']:.2f}x; "
      f"measured in this one run: {std['compute_ms'] / max(sep['compute_ms'], 1e-9):.2f}x "
      "(single runs are noisy: bench/ has medians)")
PY
echo
echo "== convd analyze examples/mobilenet_v1"
"$convd" analyze examples/mobilenet_v1

host=${CONVD_HOST:-127.0.0.1}
port=${CONVD_PORT:-8080}
u="http://$host:$port"
echo
echo "== convd serve on $u (models: examples/). Try, from another terminal:"
cat <<TRY

  curl $u/v1/models
  curl -X POST $u/v1/models/separable_classic/infer -H 'Content-Type: application/x-npy' \\
       -H 'Accept: application/x-npy' --data-binary @examples/separable_classic/input.npy -o out.npy -D -
  curl -X POST '$u/v1/models/mobilenet_v1/infer?encoding=b64' -H 'Content-Type: application/json' \\
       -d '{"input": {"init": "random", "seed": 1, "shape": [1, 3, 224, 224]}}'
  curl -X POST $u/v1/conv2d -H 'Content-Type: application/json' -d '{"layer": {"type": "Conv2d",
       "in_channels": 1, "out_channels": 1, "kernel_size": 2}, "weight": {"data": [1, 1, 1, 1]},
       "bias": {"data": [0.5]}, "input": {"shape": [1, 1, 2, 3], "data": [1, 2, 3, 4, 5, 6]}}'
  curl $u/metrics

Ctrl-C stops it (in-flight requests finish first).
TRY
rm -rf "$out"; trap - EXIT
exec "$convd" serve --host "$host" --port "$port" --models examples
