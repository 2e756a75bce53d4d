#!/usr/bin/env bash
# Runs every test binary and test script, then prints one summary line
# ("N passed, M failed") that CI reads.
set -u
build=${1:-build}
passed=0; failed=0
for t in "$build"/tests/test_* tests/cli/test_*.sh; do
  case "$t" in *.log) continue ;; esac
  [ -x "$t" ] || continue
  name=$(basename "$t")
  if CONVD_BIN="$build/convd" "$t" > "$build/tests/$name.log" 2>&1; then
    passed=$((passed+1)); echo "PASS $name"
  else
    failed=$((failed+1)); echo "FAIL $name"; tail -40 "$build/tests/$name.log"
  fi
done
# On a CPU with AVX-512 the runs above take the AVX-512 kernels; the core
# suites run again capped at AVX2 (CONVD_ISA, core/algorithms.c), so the
# AVX2 kernels stay checked on such a machine too
if grep -qw avx512f /proc/cpuinfo; then
  for name in test_core test_golden test_dwconv test_winograd test_implicit_gemm test_fused_separable test_autotune; do
    [ -x "$build/tests/$name" ] || continue
    if CONVD_ISA=avx2 "$build/tests/$name" > "$build/tests/$name.avx2.log" 2>&1; then
      passed=$((passed+1)); echo "PASS $name (CONVD_ISA=avx2)"
    else
      failed=$((failed+1)); echo "FAIL $name (CONVD_ISA=avx2)"; tail -40 "$build/tests/$name.avx2.log"
    fi
  done
fi
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
