#!/usr/bin/python3
"""torch_bench.py — times PyTorch's nn.Conv2d (and SeparableConv2d as two Conv2d)
on bench/suite.txt entries, the PyTorch column of `make bench`. JSON lines out.

  torch_bench.py --entry 'conv 1,3,128,128 10 3 1 1 1 1' --threads 2
  torch_bench.py --suite bench/suite.txt --threads 1,2
  torch_bench.py --serve     # requests "THREADS ENTRY..." on stdin, one JSON line each

--serve exists because importing torch takes seconds: run.sh keeps one process
and interleaves its requests with convd's and oneDNN's runs.
Run it with Debian's /usr/bin/python3 (python3-torch).
"""
import argparse
import json
import statistics
import sys
import time

import ctypes

import torch
from torch import nn


def blas_thread_setter():
    """openblas_set_num_threads of the OpenBLAS torch loaded, or None.

    Debian's torch (BLAS_INFO=generic) runs its GEMM-backed convolutions (1x1
    among them) in the pthreads OpenBLAS, whose pool torch.set_num_threads does
    not touch: without this a "1 thread" torch timing used both cores."""
    with open("/proc/self/maps") as maps:
        libs = {line.split()[-1] for line in maps if "blas" in line and line.rstrip().endswith(".so")
                or "libopenblas" in line}
    for lib in sorted(libs):
        try:
            fn = ctypes.CDLL(lib).openblas_set_num_threads
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_int]
        return fn
    return None


_set_blas_threads = None


def parse_entry(text):
    """'KIND N,C,H,W OUT K STRIDE PAD DIL GROUPS' -> dict (the suite.txt format)."""
    tok = text.split()
    if len(tok) != 8 or tok[0] not in ("conv", "sep"):
        raise ValueError(f"bad entry {text!r}: want KIND N,C,H,W OUT K STRIDE PAD DIL GROUPS")
    n, c, h, w = (int(v) for v in tok[1].split(","))
    out, k, stride, pad, dil, groups = (int(v) for v in tok[2:])
    if tok[0] == "sep" and groups != 1:
        raise ValueError(f"bad entry {text!r}: a sep entry has GROUPS 1")
    return dict(kind=tok[0], shape=(n, c, h, w), out=out, k=k, stride=stride, pad=pad,
                dilation=dil, groups=groups, text=" ".join(tok))


def build_stages(e):
    """The Conv2d modules an entry runs back to back (two for a separable entry)."""
    c = e["shape"][1]
    if e["kind"] == "conv":
        return [nn.Conv2d(c, e["out"], e["k"], e["stride"], e["pad"], e["dilation"], e["groups"])]
    return [nn.Conv2d(c, c, e["k"], e["stride"], e["pad"], e["dilation"], groups=c),
            nn.Conv2d(c, e["out"], 1)]


def time_entry(e, threads, min_time, min_repeat, repeat, warmup):
    global _set_blas_threads
    torch.set_num_threads(threads)
    if _set_blas_threads is None:
        _set_blas_threads = blas_thread_setter() or (lambda n: None)
    _set_blas_threads(threads)
    torch.manual_seed(0)
    stages = [m.eval() for m in build_stages(e)]
    x = torch.empty(e["shape"]).uniform_(-1, 1)
    clock = time.perf_counter
    with torch.no_grad():
        # warm-up: at least `warmup` runs and 0.05 s, so caches, thread pools
        # and oneDNN's primitive cache inside torch are hot before timing
        start, done = clock(), 0
        while done < warmup or clock() - start < 0.05:
            y = x
            for m in stages:
                y = m(y)
            done += 1
        totals, parts = [], [[] for _ in stages]
        start = clock()
        while True:
            y, total = x, 0.0
            for i, m in enumerate(stages):
                t0 = clock()
                y = m(y)
                dt = clock() - t0
                parts[i].append(dt)
                total += dt
            totals.append(total)
            if repeat:
                if len(totals) >= repeat:
                    break
            elif len(totals) >= min_repeat and clock() - start >= min_time:
                break
    ms = lambda v: round(v * 1e3, 6)
    return {
        "tool": "torch",
        "entry": e["text"],
        "threads": threads,
        "median_ms": ms(statistics.median(totals)),
        "min_ms": ms(min(totals)),
        "stage_median_ms": [ms(statistics.median(p)) for p in parts],
        "repeat": len(totals),
        "version": torch.__version__,
    }


def read_suite(path):
    with open(path) as f:
        lines = [ln.split("#", 1)[0].strip() for ln in f]
    return [parse_entry(ln) for ln in lines if ln]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--entry", help="one suite.txt line")
    src.add_argument("--suite", help="a suite.txt file: every entry")
    src.add_argument("--serve", action="store_true", help='read "THREADS ENTRY" lines from stdin')
    src.add_argument("--version", action="store_true", help="print torch's version")
    ap.add_argument("--threads", default="1", help="T or a list T1,T2 (not with --serve)")
    ap.add_argument("--min-time", type=float, default=0.5, help="seconds of timed runs (default 0.5)")
    ap.add_argument("--min-repeat", type=int, default=20, help="at least this many timed runs (default 20)")
    ap.add_argument("--repeat", type=int, default=0, help="exactly this many timed runs (overrides the two above)")
    ap.add_argument("--warmup", type=int, default=3, help="warm-up runs (default 3, and at least 0.05 s)")
    a = ap.parse_args()
    if a.version:
        print(torch.__version__)
        return 0
    timing = (a.min_time, a.min_repeat, a.repeat, a.warmup)
    if a.serve:
        for line in sys.stdin:
            line = line.strip()
            if not line:
                continue
            try:
                threads, entry = line.split(None, 1)
                res = time_entry(parse_entry(entry), int(threads), *timing)
            except (ValueError, RuntimeError) as exc:
                res = {"tool": "torch", "request": line, "error": str(exc)}
            print(json.dumps(res), flush=True)
        return 0
    entries = [parse_entry(a.entry)] if a.entry else read_suite(a.suite)
    for e in entries:
        for t in (int(v) for v in a.threads.split(",")):
            print(json.dumps(time_entry(e, t, *timing)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
