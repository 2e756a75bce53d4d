#!/usr/bin/env bash
# CLI contract of build/convd: exit 0 on success, 2 on usage errors, 1 on any
# other error, always with one line naming the problem; invalid models and
# inputs never crash. Model folders are written here with the standard library.
set -u
convd=${CONVD_BIN:-build/convd}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
checks=0

# expect STATUS NEEDLE -- command...: exit status and a stderr line containing NEEDLE
expect() {
  local want=$1 needle=$2
  shift 3
  local out err status
  "$@" >"$work/out" 2>"$work/err"
  status=$?
  checks=$((checks + 1))
  if [ "$status" -ne "$want" ]; then
    echo "FAIL: '$*' exited $status, expected $want"; cat "$work/err"; failures=$((failures + 1)); return
  fi
  if [ -n "$needle" ] && ! grep -qF -- "$needle" "$work/err" "$work/out"; then
    echo "FAIL: '$*' output lacks \"$needle\":"; cat "$work/err"; failures=$((failures + 1)); return
  fi
  if [ "$want" -ne 0 ] && [ "$(wc -l <"$work/err")" -ne 1 ]; then
    echo "FAIL: '$*' printed $(wc -l <"$work/err") error lines, expected one:"; cat "$work/err"
    failures=$((failures + 1))
  fi
}

# mkmodel DIR 'LAYERS_JSON' 'NAME:d0xd1x..,...' writes model.json and float32 weights (value 0.01*i)
mkmodel() {
  mkdir -p "$1"
  python3 - "$@" <<'PY'
import json, struct, sys
d, layers, tensors = sys.argv[1], sys.argv[2], sys.argv[3]
open(f"{d}/model.json", "w").write('{"name": "t", "layers": %s}' % layers)
header, blobs, off = {}, [], 0
for spec in filter(None, tensors.split(",")):
    name, dims = spec.split(":")
    dtype = "F32"
    if name.endswith("@I64"):
        name, dtype = name[:-4], "I64"
    shape = [int(x) for x in dims.split("x")] if dims else []
    n = 1
    for s in shape: n *= s
    if dtype == "F32":
        blob = struct.pack(f"<{n}f", *[0.01 * i for i in range(n)])
    else:
        blob = struct.pack(f"<{n}q", *range(n))
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(blob)]}
    blobs.append(blob); off += len(blob)
h = json.dumps(header).encode()
h += b" " * (-len(h) % 8)
open(f"{d}/weights.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
PY
}

# mknpy PATH d0,d1,... [dtype] writes an .npy of zeros+i*0.001
mknpy() {
  python3 - "$@" <<'PY'
import struct, sys
path, shape = sys.argv[1], tuple(int(x) for x in sys.argv[2].split(","))
descr = sys.argv[3] if len(sys.argv) > 3 else "<f4"
fortran = len(sys.argv) > 4
n = 1
for s in shape: n *= s
hdr = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape if len(shape) != 1 else "(%d,)" % shape[0])
hdr += " " * (-(len(hdr) + 11) % 64) + "\n"
fmt = {"<f4": "f", "<f8": "d", "<i4": "i"}[descr]
data = struct.pack(f"<{n}{fmt}", *[0.001 * i if fmt != "i" else i for i in range(n)])
open(path, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + data)
PY
}

conv='[{"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": 1}]'
mkmodel "$work/good" "$conv" "0.weight:4x3x3x3,0.bias:4"
mknpy "$work/x.npy" 1,3,8,8

# help, version, usage errors (exit 2)
expect 0 "usage: convd" -- "$convd" --help
expect 0 "convd " -- "$convd" --version
expect 0 "usage: convd run" -- "$convd" run --help
expect 0 "usage: convd analyze" -- "$convd" analyze --help
expect 2 "missing command" -- "$convd"
expect 2 "unknown command" -- "$convd" frobnicate
expect 2 "needs MODEL_DIR" -- "$convd" run "$work/good"
expect 2 "unknown option --bogus" -- "$convd" run "$work/good" "$work/x.npy" -o "$work/y.npy" --bogus
expect 2 "--threads" -- "$convd" run "$work/good" "$work/x.npy" -o "$work/y.npy" --threads 0
expect 2 "--input-shape" -- "$convd" analyze "$work/good" --input-shape 1,3,8
expect 2 "declares no input shape" -- "$convd" analyze "$work/good"

# success
expect 0 "" -- "$convd" run "$work/good" "$work/x.npy" -o "$work/y.npy"
expect 0 '"flops": 13824' -- "$convd" run "$work/good" "$work/x.npy" -o "$work/y.npy" --stats
expect 0 "total:" -- "$convd" analyze "$work/good" --input-shape 1,3,8,8
expect 0 '"macs": 6912' -- "$convd" analyze "$work/good" --input-shape 1,3,8,8 --json

# invalid models (exit 1, message names the problem)
expect 1 "model.json" -- "$convd" run "$work/missing" "$work/x.npy" -o "$work/y.npy"
mkmodel "$work/groups" '[{"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3, "groups": 2}]' ""
expect 1 "in_channels must be divisible by groups" -- "$convd" run "$work/groups" "$work/x.npy" -o "$work/y.npy"
mkmodel "$work/same" '[{"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": "same", "stride": 2}]' ""
expect 1 "padding='same' is not supported for strided" -- "$convd" run "$work/same" "$work/x.npy" -o "$work/y.npy"
mkmodel "$work/type" '[{"type": "Conv3d"}]' ""
expect 1 "Conv3d" -- "$convd" run "$work/type" "$work/x.npy" -o "$work/y.npy"
mkmodel "$work/arg" '[{"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernal_size": 3}]' ""
expect 1 "kernal_size" -- "$convd" run "$work/arg" "$work/x.npy" -o "$work/y.npy"
mkmodel "$work/noweight" "$conv" "0.weight:4x3x3x3"
expect 1 "0.bias" -- "$convd" run "$work/noweight" "$work/x.npy" -o "$work/y.npy"
mkmodel "$work/badshape" "$conv" "0.weight:4x3x3,0.bias:4"
expect 1 "[4, 3, 3, 3]" -- "$convd" run "$work/badshape" "$work/x.npy" -o "$work/y.npy"
mkmodel "$work/extra" "$conv" "0.weight:4x3x3x3,0.bias:4,5.weight:2"
expect 1 "5.weight" -- "$convd" run "$work/extra" "$work/x.npy" -o "$work/y.npy"
mkmodel "$work/tracked" "$conv" "0.weight:4x3x3x3,0.bias:4,1.num_batches_tracked@I64:"
expect 0 "" -- "$convd" run "$work/tracked" "$work/x.npy" -o "$work/y.npy"
mkdir -p "$work/broken"; printf 'not json' > "$work/broken/model.json"; cp "$work/good/weights.safetensors" "$work/broken/"
expect 1 "model.json" -- "$convd" run "$work/broken" "$work/x.npy" -o "$work/y.npy"
mkmodel "$work/reflect" '[{"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": 8, "padding_mode": "reflect"}]' "0.weight:4x3x3x3,0.bias:4"
expect 1 "reflect padding must be smaller than the input" -- "$convd" run "$work/reflect" "$work/x.npy" -o "$work/y.npy"
mkmodel "$work/big" '[{"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 11}]' "0.weight:4x3x11x11,0.bias:4"
expect 1 "kernel must fit the padded input" -- "$convd" run "$work/big" "$work/x.npy" -o "$work/y.npy"

# invalid inputs
mknpy "$work/x4.npy" 1,4,8,8
expect 1 "input channels must equal in_channels" -- "$convd" run "$work/good" "$work/x4.npy" -o "$work/y.npy"
mknpy "$work/x3d.npy" 3,8,8
expect 1 "4-dimensional" -- "$convd" run "$work/good" "$work/x3d.npy" -o "$work/y.npy"
mknpy "$work/int.npy" 1,3,8,8 "<i4"
expect 1 "npy" -- "$convd" run "$work/good" "$work/int.npy" -o "$work/y.npy"
mknpy "$work/fortran.npy" 1,3,8,8 "<f4" fortran
expect 1 "Fortran" -- "$convd" run "$work/good" "$work/fortran.npy" -o "$work/y.npy"
mknpy "$work/f64.npy" 1,3,8,8 "<f8"
expect 0 "" -- "$convd" run "$work/good" "$work/f64.npy" -o "$work/y.npy"
head -c 100 "$work/x.npy" > "$work/trunc.npy"
expect 1 "npy" -- "$convd" run "$work/good" "$work/trunc.npy" -o "$work/y.npy"
expect 1 "" -- "$convd" run "$work/good" "$work/nonexistent.npy" -o "$work/y.npy"
expect 1 "" -- "$convd" run "$work/good" "$work/x.npy" -o "$work/no/such/dir/y.npy"

# convd bench: the JSON its callers (bench/run.sh) read, and its errors
layer='{"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": 1, "algorithm": "im2col"}'
expect 0 '"algorithm": "im2col"' -- "$convd" bench --layer "$layer" --input-shape 1,3,16,16 --repeat 3 --json
for key in median_ms min_ms gflops_per_s output_shape blas_core; do
  checks=$((checks + 1))
  grep -q "\"$key\"" "$work/out" || { echo "FAIL: convd bench --json lacks $key: $(cat "$work/out")"; failures=$((failures + 1)); }
done
# where the CPU has AVX2 and FMA, OpenBLAS must not run its pre-AVX2 kernels
# (0.3.21 takes newer CPUs for a Prescott; convd then picks the core itself)
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  checks=$((checks + 1))
  core=$(sed -n 's/.*"blas_core": "\([^"]*\)".*/\1/p' "$work/out")
  case "$core" in
    Haswell | Zen | SkylakeX | Cooperlake | SapphireRapids) ;;
    *) echo "FAIL: convd bench ran OpenBLAS's \"$core\" core on an AVX2 CPU"; failures=$((failures + 1)) ;;
  esac
fi
expect 1 "layer.out_channels: required" -- "$convd" bench --layer '{"type": "Conv2d", "in_channels": 3}' --input-shape 1,3,8,8
expect 2 "--input-shape needs N,C,H,W" -- "$convd" bench --layer "$layer" --input-shape 1,3,8
expect 1 "input channels" -- "$convd" bench --layer "$layer" --input-shape 1,5,8,8 --repeat 1

echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
