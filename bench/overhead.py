#!/usr/bin/env python3
"""overhead.py — the service's own time per request at concurrency 1: sends N
sequential keep-alive .npy requests and reads Server-Timing (queue, compute,
total) from each reply. Prints median and p99 of total - compute (what the
server adds around the computation: parse, queue hand-off, serialise), of
queue, and of the client's round trip minus compute.

usage: bench/overhead.py [--port 8080] [--model separable_classic]
                         [--body examples/separable_classic/input.npy] [-n 2000]
"""
import argparse
import http.client
import statistics
import time


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--model", default="separable_classic")
    ap.add_argument("--body", default="examples/separable_classic/input.npy")
    ap.add_argument("-n", type=int, default=2000)
    a = ap.parse_args()
    body = open(a.body, "rb").read()
    conn = http.client.HTTPConnection(a.host, a.port)
    headers = {"Content-Type": "application/x-npy", "Accept": "application/x-npy"}
    series = {"total - compute": [], "queue": [], "compute": [], "client round trip - compute": []}
    for i in range(a.n + 50):
        t0 = time.perf_counter()
        conn.request("POST", f"/v1/models/{a.model}/infer", body, headers)
        r = conn.getresponse()
        r.read()
        rtt = (time.perf_counter() - t0) * 1e3
        if r.status != 200:
            raise SystemExit(f"HTTP {r.status}")
        timing = {}
        for part in r.getheader("Server-Timing").split(","):
            name, dur = part.split(";dur=")
            timing[name.strip()] = float(dur)
        if i < 50:  # warm-up
            continue
        series["total - compute"].append(timing["total"] - timing["compute"])
        series["queue"].append(timing["queue"])
        series["compute"].append(timing["compute"])
        series["client round trip - compute"].append(rtt - timing["compute"])
    print(f"{a.n} sequential requests to {a.model}")
    for name, v in series.items():
        print(f"  {name:28s} median {statistics.median(v):7.3f} ms   p99 {pct(v, 99):7.3f} ms")


if __name__ == "__main__":
    main()
