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
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
