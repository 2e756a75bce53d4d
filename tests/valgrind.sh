#!/usr/bin/env bash
# Runs the integration suites (test_server, test_faults, test_batching and
# tests/cli/*.sh) with every convd process they start under valgrind
# (memcheck: definite leaks and invalid accesses are errors, exit 99), then
# prints each process's ERROR SUMMARY and definitely-lost bytes.
# Usage: tests/valgrind.sh [build-dir] [suite...]   (make valgrind)
set -u
build=${1:-build}
shift || true
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=("$build/tests/test_server" "$build/tests/test_faults" "$build/tests/test_batching" tests/cli/test_*.sh)
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)"; exit 1; }

out=$(realpath -m "$build/valgrind")
rm -rf "$out"
mkdir -p "$out/logs"
real=$(realpath "$build/convd")
# CONVD_BIN is this wrapper for the test binaries and the scripts alike; exec
# keeps the pid, so the tests' signals reach the server under valgrind
cat >"$out/convd" <<EOF
#!/bin/sh
exec valgrind --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \\
  --error-exitcode=99 --num-callers=30 --log-file="\$CONVD_VALGRIND_LOGS/%p.log" "$real" "\$@"
EOF
chmod +x "$out/convd"

# valgrind runs the server 20-50x slower: the tests' waits scale with this,
# and the servers' own default deadlines (flags given by a test still win)
# are stretched so that a queued job is not answered 504 for its slowness
export CONVD_TIMEOUT_SCALE=${CONVD_TIMEOUT_SCALE:-20}
# convd re-executes itself to pick OpenBLAS's core where OpenBLAS chose one
# without AVX2 (server/main.c); an exec would leave valgrind, so the core is
# set here (valgrind emulates AVX2, not AVX-512)
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
export CONVD_REQUEST_TIMEOUT_MS=${CONVD_REQUEST_TIMEOUT_MS:-600000}
export CONVD_DRAIN_TIMEOUT_MS=${CONVD_DRAIN_TIMEOUT_MS:-600000}
passed=0
failed=0
for t in "${suites[@]}"; do
  name=$(basename "$t")
  mkdir -p "$out/logs/$name"
  if CONVD_VALGRIND_LOGS="$out/logs/$name" CONVD_BIN="$out/convd" "$t" >"$out/$name.log" 2>&1; then
    passed=$((passed + 1))
    echo "PASS $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name (log: $out/$name.log)"
    tail -20 "$out/$name.log"
  fi
done

# one line a convd process: its suite, command, errors, definitely lost
errors=0
processes=0
for f in "$out"/logs/*/*.log; do
  [ -e "$f" ] || continue
  cmd=$(sed -n 's/^==[0-9]*== Command: [^ ]*convd //p' "$f" | head -1)
  summary=$(sed -n 's/^==[0-9]*== ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$f" | tail -1)
  lost=$(sed -n 's/^==[0-9]*==    definitely lost: \([0-9,]*\) bytes.*/\1/p' "$f" | tail -1)
  processes=$((processes + 1))
  printf '%-20s errors=%-3s definitely_lost=%-6s convd %s\n' "$(basename "$(dirname "$f")")" "${summary:-?}" \
    "${lost:-0}" "${cmd:0:80}" >>"$out/summary.txt"
  [ "${summary:-1}" = 0 ] || errors=$((errors + 1))
done
echo
cat "$out/summary.txt" 2>/dev/null
echo
echo "$passed passed, $failed failed; $processes convd processes, $errors with valgrind errors (logs: $out/logs)"
[ "$failed" -eq 0 ] && [ "$errors" -eq 0 ]
