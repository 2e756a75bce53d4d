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


# replies convd serve never sends, from a raw HTTP/1.1 server: chunked bodies
# (with "stats" split across chunks), Connection: close, bodies that run to the
# close, keep-alive sockets the server drops silently, and garbage
cat >"$work/raw_server.py" <<'PY'
import socket, socketserver, sys, time
STATS = b'{"output":"AAAA","stats":{"queue_ms":0.25,"compute_ms":1.5}}'
class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        buf, served = b"", 0
        while True:
            while b"\r\n\r\n" not in buf:
                data = self.request.recv(65536)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            path = head.split(b" ")[1].decode()
            served += 1
            if path == "/chunked":
                parts = [STATS[:20], STATS[20:23], STATS[23:]]
                body = b"".join(b"%x;x=1\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\nT: 1\r\n\r\n"
                self.request.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
            elif path == "/close":
                self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                return
            elif path == "/eof":
                self.request.sendall(b"HTTP/1.0 200 OK\r\nServer-Timing: queue;dur=0.5, compute;dur=2\r\n\r\nuntil the close")
                return
            elif path == "/hang":
                time.sleep(3)
                return
            elif path == "/flaky":
                self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                if served % 3 == 0:
                    self.request.shutdown(socket.SHUT_RDWR)
                    return
            else:
                self.request.sendall(b"HTTP/1.1 2x0 OK\r\n\r\n")
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
srv = Server(("127.0.0.1", 0), Handler)
print(srv.server_address[1], flush=True)
srv.serve_forever()
PY
python3 "$work/raw_server.py" >"$work/raw.port" 2>"$work/raw.log" &
raw=$!
trap 'kill "$server" "$raw" 2>/dev/null; wait "$server" "$raw" 2>/dev/null; rm -rf "$work"' EXIT
raw_url=
for _ in $(seq 50); do
  raw_url=$(head -1 "$work/raw.port" 2>/dev/null)
  [ -n "$raw_url" ] && break
  sleep 0.1
done
raw_url="http://127.0.0.1:$raw_url"
"$convd" load --url "$raw_url/chunked" --requests 100 --concurrency 4 --json >"$work/chunked.json"
check "chunked replies: all ok, stats read across chunk borders" \
  'd["ok"] == 100 and d["transport_errors"] == 0 and d["server"]["replies_with_stats"] == 100 and abs(d["server"]["compute_ms"]["p50"] - 1.5) < 0.01' \
  "$work/chunked.json"
"$convd" load --url "$raw_url/close" --requests 50 --concurrency 2 --json >"$work/close.json"
check "Connection: close: a new connection per request, all ok" \
  'd["ok"] == 50 and d["transport_errors"] == 0' "$work/close.json"
"$convd" load --url "$raw_url/eof" --requests 50 --concurrency 2 --json >"$work/eof.json"
check "HTTP/1.0 body to the close: all ok, Server-Timing read" \
  'd["ok"] == 50 and d["transport_errors"] == 0 and d["server"]["replies_with_stats"] == 50 and abs(d["server"]["queue_ms"]["p50"] - 0.5) < 0.01' \
  "$work/eof.json"
"$convd" load --url "$raw_url/flaky" --requests 300 --concurrency 3 --json >"$work/flaky.json"
check "keep-alive sockets closed silently: requests sent again, all ok" \
  'd["ok"] == 300 and d["transport_errors"] == 0' "$work/flaky.json"
"$convd" load --url "$raw_url/hang" --requests 3 --concurrency 3 --timeout 0.3 --json >"$work/hang.json" 2>/dev/null
check "a server that never replies: timeouts" \
  'd["transport"] == {"timeout": 3} and d["duration_s"] < 2' "$work/hang.json"
"$convd" load --url "$raw_url/garbage" --requests 20 --concurrency 2 --json >"$work/garbage.json" 2>"$work/err"
status=$?
check "malformed replies: transport errors, not statuses" \
  'd["requests"] == 20 and d["transport_errors"] == 20 and d["transport"] == {"malformed reply": 20} and d["status"] == {}' \
  "$work/garbage.json"
checks=$((checks + 1))
if [ "$status" -ne 1 ] || ! grep -q "status line" "$work/err"; then
  echo "FAIL: all-malformed run exited $status:"; cat "$work/err"; failures=$((failures + 1))
fi
# nobody listening: every request fails to connect, exit 1 with the reason
kill "$raw"; wait "$raw" 2>/dev/null
"$convd" load --url "$raw_url/" --requests 5 --json >"$work/refused.json" 2>"$work/err"
status=$?
check "connection refused: counted as connect failures" \
  'd["transport"] == {"connect failed": 5}' "$work/refused.json"
checks=$((checks + 1))
if [ "$status" -ne 1 ] || ! grep -qi "refused" "$work/err"; then
  echo "FAIL: refused run exited $status:"; cat "$work/err"; failures=$((failures + 1))
fi
# https is refused up front (convd serve has no TLS)
checks=$((checks + 1))
"$convd" load --url "https://127.0.0.1:1/" --requests 1 >/dev/null 2>"$work/err"; status=$?
if [ "$status" -ne 2 ] || ! grep -q "https is not supported" "$work/err"; then
  echo "FAIL: https URL exited $status:"; cat "$work/err"; failures=$((failures + 1))
fi

echo "$((checks - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
