#!/bin/sh
# rss_check.sh — starts convd serve, drives it with wrk through a mix of good
# and bad requests (bench/mixed.lua) and prints its resident set size (VmRSS)
# after 10,000 and after 100,000 requests; the two should agree within 10%.
# usage: bench/rss_check.sh [CONVD_BIN] (default build/convd); needs wrk and curl.
set -eu
BIN=${1:-build/convd}
PORT=${PORT:-18477}
LOG=$(mktemp)
"$BIN" serve --port "$PORT" --models bench/models --log-format text >"$LOG" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; kill $WRK 2>/dev/null; rm -f "$LOG"' EXIT
WRK=
i=0
until curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; do
  i=$((i + 1)); [ $i -lt 100 ] || { echo "server did not start:"; cat "$LOG"; exit 1; }
  sleep 0.1
done
requests() { # answered so far, from /metrics (excluding the /metrics scrapes themselves)
  curl -s "http://127.0.0.1:$PORT/metrics" |
    awk '/^convd_requests_total/ && !/route="\/metrics"/ { n += $2 } END { print n + 0 }'
}
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$PID/status"; }
wrk -t2 -c16 -d600s -s bench/mixed.lua "http://127.0.0.1:$PORT" >/dev/null 2>&1 &
WRK=$!
RSS10=
while :; do
  n=$(requests)
  if [ -z "$RSS10" ] && [ "$n" -ge 10000 ]; then RSS10=$(rss_kb); N10=$n; fi
  if [ "$n" -ge 100000 ]; then RSS100=$(rss_kb); N100=$n; break; fi
  kill -0 $WRK 2>/dev/null || { echo "wrk stopped early"; exit 1; }
  sleep 0.2
done
kill $WRK
echo "VmRSS after $N10 requests: $RSS10 kB"
echo "VmRSS after $N100 requests: $RSS100 kB"
awk -v a="$RSS10" -v b="$RSS100" 'BEGIN { d = (b - a) / a * 100; printf "change: %+.1f%% (%s)\n", d, (d <= 10 && d >= -10) ? "flat within 10%" : "NOT flat" }'
curl -s "http://127.0.0.1:$PORT/metrics" | grep '^convd_requests_total'
