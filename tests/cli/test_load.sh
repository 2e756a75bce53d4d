#!/usr/bin/env bash
# convd load against a real `convd serve` on a free loopback port: request
# counts add up, error statuses are counted, the open loop holds its rate,
# and --compare separable writes its report with well-formed SVG plots.
# Skips (exit 0) only when the binary has no serve command.
set -u
convd=${CONVD_BIN:-build/convd}
if ! "$convd" serve --help >/dev/null 2>&1; then
  echo "SKIP: $convd serve --help failed (no server in this build)"
  exit 0
fi
work=$(mktemp -d)
"$convd" serve --port 0 --models examples >"$work/serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$work"' EXIT
url=
for _ in $(seq 100); do
  url=$(grep -o 'listening on http://[^ ]*' "$work/serve.log" | head -1 | sed 's/^listening on //')
  [ -n "$url" ] && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "FAIL: convd serve did not start:"; cat "$work/serve.log"; exit 1
fi

failures=0
checks=0
# check NAME PYTHON_EXPR_OVER_d FILE: the JSON report in FILE satisfies the expression
check() {
  checks=$((checks + 1))
  if ! python3 - "$2" "$3" <<'PY'
import json, sys
expr, path = sys.argv[1], sys.argv[2]
d = json.load(open(path))
if not eval(expr):
    print(json.dumps(d, indent=1)[:3000])
    sys.exit(1)
PY
  then
    echo "FAIL: $1 ($2)"; failures=$((failures + 1))
  else
    echo "ok: $1"
  fi
}

# usage errors exit 2 with one line
checks=$((checks + 1))
"$convd" load --concurrency 4 >/dev/null 2>"$work/err"; status=$?
if [ "$status" -ne 2 ] || [ "$(wc -l <"$work/err")" -ne 1 ]; then
  echo "FAIL: load without --url exited $status:"; cat "$work/err"; failures=$((failures + 1))
fi

# closed loop, bounded by count: every request is accounted for
"$convd" load --url "$url/healthz" --requests 200 --concurrency 4 --json >"$work/closed.json"
check "closed loop: 200 requests, all ok" \
  'd["requests"] == 200 and d["ok"] == 200 and d["errors"] == 0 and d["transport_errors"] == 0' "$work/closed.json"
check "closed loop: counts add up" \
  'd["requests"] == sum(d["status"].values()) + d["transport_errors"] and d["errors"] == d["requests"] - d["ok"]' \
  "$work/closed.json"
check "closed loop: latencies ordered" \
  'd["latency_ms"]["min"] <= d["latency_ms"]["p50"] <= d["latency_ms"]["p99"] <= d["latency_ms"]["max"]' "$work/closed.json"
check "closed loop: bytes counted" 'd["bytes_sent"] > 200 * 20 and d["bytes_received"] > 200 * 15' "$work/closed.json"

# a path the server does not have: every reply is a 404
"$convd" load --url "$url/no/such/path" --requests 60 --concurrency 3 --json >"$work/404.json"
check "bad path: every status counted as 404" \
  'd["requests"] == 60 and d["ok"] == 0 and d["errors"] == 60 and d["status"] == {"404": 60}' "$work/404.json"

# a real convolution: the server's stats are read from every reply
"$convd" load --url "$url" --layer '{"type": "Conv2d", "in_channels": 3, "out_channels": 10, "kernel_size": 3, "padding": 1}' \
  --input-shape 1,3,32,32 --requests 20 --concurrency 2 --json >"$work/conv.json"
check "conv2d: server compute times read from the replies" \
  'd["ok"] == 20 and d["server"]["replies_with_stats"] == 20 and d["server"]["compute_ms"]["p50"] > 0' "$work/conv.json"

# open loop: the achieved rate stays within 5% of the asked one
"$convd" load --url "$url/healthz" --rate 200 --duration 3 --json >"$work/open.json"
check "open loop: 200 req/s held within 5%" \
  'd["mode"] == "open" and abs(d["throughput_rps"] - 200) <= 10 and abs(d["requests"] - 600) <= 30 and d["not_sent"] == 0' \
  "$work/open.json"

# the comparison report
"$convd" load --url "$url" --compare separable --duration 1 --concurrency 1,2 --out "$work/report" \
  >"$work/compare.out" 2>"$work/compare.err"
status=$?
checks=$((checks + 1))
if [ "$status" -ne 0 ]; then
  echo "FAIL: --compare separable exited $status:"; cat "$work/compare.err"; failures=$((failures + 1))
fi
for f in report.md report.json throughput.svg latency_p99.svg speedup.svg; do
  checks=$((checks + 1))
  if [ ! -s "$work/report/$f" ]; then echo "FAIL: --compare did not write $f"; failures=$((failures + 1)); fi
done
check "report.json: three shapes, two levels each, no errors" \
  'len(d["shapes"]) == 3 and d["concurrency"] == [1, 2] and all(len(s[v]) == 2 and all(p["requests"] > 0 and p["errors"] == 0 for p in s[v]) for s in d["shapes"] for v in ("standard", "separable"))' \
  "$work/report/report.json"
check "report.json: FLOP ratio bounds" \
  'abs(d["shapes"][0]["flop_ratio_bound"] - 1 / (1 / 10 + 1 / 9)) < 1e-6 and all(s["speedup_compute"] > 0 for s in d["shapes"])' \
  "$work/report/report.json"
checks=$((checks + 1))
if ! grep -q "| concurrency | req/s std | req/s sep" "$work/report/report.md"; then
  echo "FAIL: report.md has no per-shape table"; failures=$((failures + 1))
fi
# svg_series FILE NAME...: the file is well-formed XML with these series
svg_series() {
  checks=$((checks + 1))
  if ! python3 - "$@" <<'PY'
import sys, xml.dom.minidom
path, names = sys.argv[1], sys.argv[2:]
doc = xml.dom.minidom.parse(path)
found = {g.getAttribute("data-name") for g in doc.getElementsByTagName("g")}
missing = [n for n in names if n not in found]
if missing or not doc.getElementsByTagName("text"):
    print("missing series:", missing, "found:", sorted(found))
    sys.exit(1)
PY
  then
    echo "FAIL: $1"; failures=$((failures + 1))
  else
    echo "ok: $(basename "$1") parses, with its series"
  fi
}
lines=()
for s in classic mobilenet_32_64 mobilenet_256; do lines+=("$s standard" "$s separable"); done
svg_series "$work/report/throughput.svg" "${lines[@]}"
svg_series "$work/report/latency_p99.svg" "${lines[@]}"
svg_series "$work/report/speedup.svg" "theoretical: FLOP ratio bound" "realised: compute median" "realised: best throughput"

echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
