#!/usr/bin/env python3
"""convd load against wrk on GET /healthz of one `convd serve`, side by side:
alternating runs (wrk first in odd pairs, convd load first in even ones, so
neither always meets the warmer machine), then medians of requests/s, of the
client's CPU time per request and of the server's. Prints a Markdown table.

  bench/load_vs_wrk.py [--convd build/convd] [--pairs 5] [--duration 5] [--connections 32]
"""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time


def cpu_of(pid):
    """user + system seconds of a running process (from /proc, clock ticks)"""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_client(cmd, server_pid, parse):
    """runs a client, returns (requests/s, requests, client cpu s, server cpu s)"""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = cpu_of(server_pid)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    server_cpu = cpu_of(server_pid) - server_before
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    rps, requests = parse(out)
    return rps, requests, client_cpu, server_cpu


def parse_wrk(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    if "Non-2xx" in out or "Socket errors" in out:
        sys.exit("wrk saw errors:\n" + out)
    return rps, requests


def parse_convd(out):
    d = json.loads(out)
    if d["errors"]:
        sys.exit("convd load saw errors:\n" + out)
    return d["throughput_rps"], d["requests"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--convd", default="build/convd")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=32)
    a = ap.parse_args()

    # the server's log goes to a file: a pipe nobody drains would stall it
    log = tempfile.NamedTemporaryFile(prefix="convd-serve-", suffix=".log")
    server = subprocess.Popen([a.convd, "serve", "--port", "0", "--models", "examples"],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        url = None
        for _ in range(100):
            m = re.search(r"listening on (http://\S+)", open(log.name).read())
            if m:
                url = m.group(1).rstrip("/") + "/healthz"
                break
            time.sleep(0.1)
        if not url:
            sys.exit("convd serve did not start")
        wrk = ["wrk", "-t1", f"-c{a.connections}", f"-d{a.duration}s", url]
        convd = [a.convd, "load", "--url", url, "--concurrency", str(a.connections),
                 "--duration", str(a.duration), "--json"]
        clients = {"wrk": (wrk, parse_wrk), "convd load": (convd, parse_convd)}
        rows = {name: [] for name in clients}
        for i in range(a.pairs):
            order = ["wrk", "convd load"] if i % 2 == 0 else ["convd load", "wrk"]
            for name in order:
                cmd, parse = clients[name]
                rows[name].append(run_client(cmd, server.pid, parse))
                time.sleep(1)
            w, c = rows["wrk"][-1][0], rows["convd load"][-1][0]
            print(f"pair {i + 1}: wrk {w:.0f} req/s, convd load {c:.0f} req/s, ratio {c / w:.3f}",
                  file=sys.stderr)
        print(f"| client | req/s (runs) | median req/s | client CPU µs/req | server CPU µs/req |")
        print(f"|---|---|---|---|---|")
        med = {}
        for name in clients:
            r = rows[name]
            med[name] = statistics.median(x[0] for x in r)
            cpu = statistics.median(x[2] / x[1] * 1e6 for x in r)
            scpu = statistics.median(x[3] / x[1] * 1e6 for x in r)
            runs = ", ".join(f"{x[0]:.0f}" for x in r)
            print(f"| {name} | {runs} | {med[name]:.0f} | {cpu:.1f} | {scpu:.1f} |")
        ratios = [c[0] / w[0] for w, c in zip(rows["wrk"], rows["convd load"])]
        print(f"\nconvd load / wrk: {med['convd load'] / med['wrk']:.3f} (ratio of medians); "
              f"per pair {', '.join(f'{x:.2f}' for x in ratios)}, median {statistics.median(ratios):.3f}")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
