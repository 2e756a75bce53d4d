#!/usr/bin/env bash
# `make loadtest`: starts convd serve on a free loopback port with examples/,
# loads it with `convd load --compare separable` (standard vs separable
# convolution at several concurrency levels), stops the server and prints
# where the report is. LOADTEST_OUT sets the folder, LOADTEST_ARGS adds
# options (e.g. LOADTEST_ARGS="--duration 1 --concurrency 1,2,4").
set -euo pipefail
build=${1:-build}
out=${LOADTEST_OUT:-loadtest-report}
log=$(mktemp)
"$build/convd" serve --port 0 --models examples >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -f "$log"' EXIT

url=
for _ in $(seq 100); do
  url=$(grep -o 'listening on http://[^ ]*' "$log" | head -1 | sed 's/^listening on //' || true)
  [ -n "$url" ] && break
  if ! kill -0 "$server" 2>/dev/null; then
    echo "loadtest: convd serve exited before listening:" >&2; cat "$log" >&2; exit 1
  fi
  sleep 0.1
done
[ -n "$url" ] || { echo "loadtest: convd serve did not print its address in 10 s" >&2; cat "$log" >&2; exit 1; }

# shellcheck disable=SC2086  # LOADTEST_ARGS is a list of options
"$build/convd" load --url "$url" --compare separable --out "$out" ${LOADTEST_ARGS:-}
echo "loadtest: report in $out/report.md (plots: $out/throughput.svg, $out/latency_p99.svg, $out/speedup.svg)"
