#!/usr/bin/env bash
# Soak: `convd serve` (examples/ models, a queue of 8 that 14 inference clients overflow, so 503s are part of the mix) at saturation for
# SOAK_SECONDS with mixed traffic — good inferences on two models, an inline
# conv2d, malformed JSON, unknown models, health checks — in windows of
# SOAK_WINDOW seconds. After each window it records the server's RSS, open
# file descriptors, the good requests' p99 and every status seen, into
# soak-report/soak.csv; the summary (first/last/max of each) goes to
# soak-report/summary.md and stdout. Not in CI: it takes 10 minutes.
# Usage: tools/soak.sh [build-dir]   (SOAK_SECONDS=600 SOAK_WINDOW=30 SOAK_OUT=soak-report)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
convd="$build/convd"
seconds=${SOAK_SECONDS:-600}
window=${SOAK_WINDOW:-30}
out=${SOAK_OUT:-soak-report}
mkdir -p "$out"
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

"$convd" serve --port 0 --models examples --queue-depth 8 > "$out/server.log" 2>&1 &
pid=$!
for _ in $(seq 200); do
  base=$(grep -o 'listening on http://[^ ]*' "$out/server.log" | head -1 | sed 's/^listening on //' || true)
  [ -n "$base" ] && break
  sleep 0.1
done
[ -n "$base" ] || { echo "soak: server did not start"; cat "$out/server.log"; exit 1; }
for _ in $(seq 300); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done

echo '{"input": {"init": "random", "seed": 1}}' > "$work/good.json"
echo '{"input": {"init": "random", "seed": 1' > "$work/broken.json"
cat > "$work/conv.json" <<'JSON'
{"layer": {"type": "Conv2d", "in_channels": 3, "out_channels": 8, "kernel_size": 3, "padding": 1},
 "weight": {"init": "random"}, "bias": {"init": "random"}, "input": {"shape": [1, 3, 64, 64], "init": "random"}}
JSON

load() { # name args...
  local name=$1; shift
  "$convd" load --duration "$window" --json "$@" > "$work/$name.json" 2>"$work/$name.err" || true
}
field() { # file jq-like python expression on the report d
  /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1" 2>/dev/null || echo "?"
}

echo "t_s,rss_kb,fds,good_rps,good_p99_ms,good_errors,statuses" > "$out/soak.csv"
start=$(date +%s)
while [ $(( $(date +%s) - start )) -lt "$seconds" ]; do
  loaders=()
  load sep --url "$base/v1/models/separable_classic/infer?encoding=b64" --body "$work/good.json" --concurrency 8 &
  loaders+=($!)
  load std --url "$base/v1/models/standard_classic/infer?encoding=b64" --body "$work/good.json" --concurrency 4 &
  loaders+=($!)
  load conv --url "$base/v1/conv2d?encoding=b64" --body "$work/conv.json" --concurrency 2 &
  loaders+=($!)
  load broken --url "$base/v1/infer" --body "$work/broken.json" --concurrency 1 &
  loaders+=($!)
  load missing --url "$base/v1/models/nope/infer" --body "$work/good.json" --concurrency 1 &
  loaders+=($!)
  load health --url "$base/healthz" --concurrency 1 &
  loaders+=($!)
  wait "${loaders[@]}" # not the server
  kill -0 "$pid" || { echo "soak: the server died"; tail -20 "$out/server.log"; exit 1; }
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  fds=$(ls "/proc/$pid/fd" | wc -l)
  rps=$(field "$work/sep.json" 'round(d["throughput_rps"]+0, 1)')
  p99=$(field "$work/sep.json" 'd["latency_ms"]["p99"]')
  errs=$(field "$work/sep.json" 'd["errors"]')
  statuses=$(cat "$work"/{sep,std,conv,broken,missing,health}.json | /usr/bin/python3 -c '
import json,sys,collections
text=sys.stdin.read(); dec=json.JSONDecoder(); i=0; c=collections.Counter()
while i < len(text):
    text_i=text[i:].lstrip()
    if not text_i: break
    d,n=dec.raw_decode(text_i); i=len(text)-len(text_i)+n
    c.update({k:v for k,v in d.get("status",{}).items()}); c["transport"]+=d.get("transport_errors",0)
print(" ".join(f"{k}:{v}" for k,v in sorted(c.items()) if v))')
  t=$(( $(date +%s) - start ))
  echo "$t,$rss,$fds,$rps,$p99,$errs,$statuses" | tee -a "$out/soak.csv"
done

/usr/bin/python3 - "$out" <<'PY' | tee "$out/summary.md"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/soak.csv")))
def col(k):
    return [float(r[k]) for r in rows if r[k] not in ("?", "")]
print(f"# soak: {rows[-1]['t_s']} s, {len(rows)} windows\n")
print("| metric | first | last | min | max |\n|---|---|---|---|---|")
for k in ("rss_kb", "fds", "good_rps", "good_p99_ms", "good_errors"):
    v = col(k)
    if v: print(f"| {k} | {v[0]:g} | {v[-1]:g} | {min(v):g} | {max(v):g} |")
print("\nstatuses per window (first, last):", rows[0]["statuses"], "|", rows[-1]["statuses"])
PY
