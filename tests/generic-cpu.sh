#!/usr/bin/env bash
# The scalar fallback, checked: runs the core test binaries and a conformance
# batch against torch with convd emulated on a CPU without AVX2/FMA
# (qemu-x86_64 -cpu Nehalem), so the dispatch never reaches an AVX2 kernel on
# a machine that lacks it and the portable kernels compute what torch does.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
models=${GENERIC_CPU_MODELS:-60}
cpu=${GENERIC_CPU:-Nehalem}
command -v qemu-x86_64 >/dev/null || tools/install-deps.sh qemu-user

# the emulated CPU must really lack AVX2, or this checks nothing
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <stdio.h>\nint main(void){__builtin_cpu_init();return __builtin_cpu_supports("avx2")||__builtin_cpu_supports("fma");}\n' >"$probe/p.c"
cc "$probe/p.c" -o "$probe/p"
if ! qemu-x86_64 -cpu "$cpu" "$probe/p"; then
  echo "generic-cpu: qemu's $cpu still reports AVX2/FMA" >&2; exit 1
fi

failed=0
for t in test_core test_golden test_dwconv test_winograd test_implicit_gemm test_autotune; do
  if qemu-x86_64 -cpu "$cpu" "$build/tests/$t" >"$build/tests/$t.generic-cpu.log" 2>&1; then
    echo "PASS $t (no AVX2)"
  else
    echo "FAIL $t (no AVX2)"; tail -20 "$build/tests/$t.generic-cpu.log"; failed=1
  fi
done
printf '#!/bin/sh\nexec qemu-x86_64 -cpu %s "%s" "$@"\n' "$cpu" "$(realpath "$build/convd")" >"$probe/convd"
chmod +x "$probe/convd"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  /usr/bin/python3 tests/conformance.py --convd "$probe/convd" --models "$models" || failed=1
else
  echo "generic-cpu: no torch, conformance skipped" >&2
fi
exit "$failed"
