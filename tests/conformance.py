#!/usr/bin/python3
"""conformance.py — random models checked against PyTorch: generates valid
layer stacks, runs each through `convd run` and compares with torch.

    /usr/bin/python3 tests/conformance.py --convd build/convd --models 250 [--seed S] [--keep DIR]

Every model is 1-5 layers drawn from all layer types and arguments, on small
random shapes (N 1-3, C 1-16, H/W 1-40); a layer torch rejects (or that
leaves nothing of the map) is drawn again. The reference is the float64
forward of the float32 weights and input (like tests/gen_golden.py);
agreement is max |out - expected| <= 1e-4 * max |expected| (1e-6 when the
expected output is all zeros). About 10% of runs also pass --stats and check
the printed totals: FLOPs = 2 x MACs counted here, params = torch's count.
Exit status 1 if any model fails.
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from convd_torch import SeparableConv2d, export_model, randomize_batchnorm, reference_output  # noqa: E402

TOLERANCE = 1e-4
ZERO_FLOOR = 1e-6
MAX_SIDE = 48          # a padded layer may grow the map a little beyond 40
MAX_LAYER_MACS = 4_000_000
PADDING_MODES = ["zeros", "zeros", "reflect", "replicate", "circular"]
LAYER_TYPES = ["Conv2d", "Conv2d", "SeparableConv2d", "BatchNorm2d", "ReLU", "ReLU6", "MaxPool2d", "AvgPool2d"]


# ----------------------------------------------------------------- random layers

def pair(rng, lo, hi, skew_to=None):
    """An int or an (h, w) tuple in [lo, hi]; skew_to is picked half the time."""
    def one():
        return skew_to if skew_to is not None and rng.random() < 0.5 else rng.randint(lo, hi)
    if rng.random() < 0.5:
        return one()
    return (one(), one())


def conv_padding(rng):
    r = rng.random()
    if r < 0.15:
        return "same"
    if r < 0.25:
        return "valid"
    return pair(rng, 0, 3, skew_to=None if rng.random() < 0.5 else 1)


def random_layer(rng, c):
    """A random layer taking `c` input channels."""
    kind = rng.choice(LAYER_TYPES)
    if kind == "Conv2d":
        divisors = [g for g in range(1, c + 1) if c % g == 0]
        r = rng.random()
        groups = 1 if r < 0.5 else c if r < 0.75 else rng.choice(divisors)
        out = groups * rng.randint(1, max(1, 16 // groups))
        return nn.Conv2d(c, out, pair(rng, 1, 5, skew_to=3), stride=pair(rng, 1, 3, skew_to=1),
                         padding=conv_padding(rng), dilation=pair(rng, 1, 3, skew_to=1), groups=groups,
                         bias=rng.random() < 0.7, padding_mode=rng.choice(PADDING_MODES))
    if kind == "SeparableConv2d":
        return SeparableConv2d(c, rng.randint(1, 16), pair(rng, 1, 5, skew_to=3),
                               stride=pair(rng, 1, 3, skew_to=1), padding=conv_padding(rng),
                               dilation=pair(rng, 1, 3, skew_to=1), depth_multiplier=rng.randint(1, 3),
                               bias=rng.random() < 0.7, padding_mode=rng.choice(PADDING_MODES))
    if kind == "BatchNorm2d":
        return nn.BatchNorm2d(c, eps=rng.choice([1e-5, 1e-5, 1e-3, 0.1]), momentum=rng.choice([0.1, 0.01]),
                              affine=rng.random() < 0.7)
    if kind == "ReLU":
        return nn.ReLU(inplace=rng.random() < 0.2)
    if kind == "ReLU6":
        return nn.ReLU6(inplace=rng.random() < 0.2)
    kernel = pair(rng, 1, 4, skew_to=2)
    stride = None if rng.random() < 0.4 else pair(rng, 1, 4)
    padding = pair(rng, 0, 2, skew_to=0)
    if kind == "MaxPool2d":
        return nn.MaxPool2d(kernel, stride=stride, padding=padding, dilation=pair(rng, 1, 3, skew_to=1),
                            ceil_mode=rng.random() < 0.4)
    return nn.AvgPool2d(kernel, stride=stride, padding=padding, ceil_mode=rng.random() < 0.4,
                        count_include_pad=rng.random() < 0.6,
                        divisor_override=None if rng.random() < 0.7 else rng.randint(1, 10))


def layer_macs(module, prev, in_shape, out_shape):
    """MACs by the README's conventions (prev: the module before, or None)."""
    n, _, ho, wo = out_shape
    if isinstance(module, SeparableConv2d):
        dw = module.depthwise
        kh, kw = dw.kernel_size
        mid = dw.out_channels
        return n * mid * ho * wo * kh * kw + n * module.out_channels * ho * wo * mid
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return n * module.out_channels * ho * wo * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.BatchNorm2d):
        return 0 if isinstance(prev, (nn.Conv2d, SeparableConv2d)) else int(np.prod(out_shape))
    if isinstance(module, nn.AvgPool2d):
        k = module.kernel_size
        kh, kw = (k, k) if isinstance(k, int) else k
        return int(np.prod(out_shape)) * kh * kw
    return 0


def try_layer(module, shape):
    """The output shape of `module` on `shape`, or None if torch rejects it
    or it leaves an empty or oversized map."""
    try:
        with torch.no_grad():
            y = module(torch.zeros(shape))
    except (RuntimeError, ValueError):
        return None
    if y.numel() == 0 or y.shape[2] > MAX_SIDE or y.shape[3] > MAX_SIDE:
        return None
    return list(y.shape)


def random_model(rng):
    """(nn.Sequential, input shape, per-layer MACs) of a valid random model."""
    shape = [rng.randint(1, 3), rng.randint(1, 16), rng.randint(1, 40), rng.randint(1, 40)]
    layers, macs = [], []
    cur = shape
    for _ in range(rng.randint(1, 5)):
        for _attempt in range(100):
            try:
                module = random_layer(rng, cur[1])
            except ValueError:  # e.g. "same" with a stride: torch refuses to build it
                continue
            out = try_layer(module, cur)
            if out is None:
                continue
            m = layer_macs(module, layers[-1] if layers else None, cur, out)
            if m > MAX_LAYER_MACS:
                continue
            layers.append(module)
            macs.append(m)
            cur = out
            break
    if not layers:  # every attempt failed: a 1-layer model always fits
        layers, macs = [nn.ReLU()], [0]
    return nn.Sequential(*layers), shape, macs


# ----------------------------------------------------------------- checks

def compare(out_path, expected):
    """(ok, message) for convd's output against the reference."""
    try:
        got = np.load(out_path)
    except Exception as e:  # a missing or malformed file is a failure, not a crash
        return False, "cannot read output: %s" % e
    if got.shape != expected.shape:
        return False, "output shape %s, expected %s" % (list(got.shape), list(expected.shape))
    if got.dtype != np.float32:
        return False, "output dtype %s, expected float32" % got.dtype
    if (np.isnan(got) != np.isnan(expected)).any():
        return False, "NaN where torch has none (or the reverse)"
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    tol = TOLERANCE * scale if scale > 0 else ZERO_FLOOR
    err = float(np.nanmax(np.abs(got.astype(np.float64) - expected.astype(np.float64)))) if got.size else 0.0
    if err > tol:
        return False, "max error %.3g > tolerance %.3g (max |expected| %.3g)" % (err, tol, scale)
    return True, "max error %.3g" % err


def check_stats(stdout, macs, params):
    try:
        stats = json.loads(stdout)
    except ValueError as e:
        return False, "--stats output is not JSON: %s" % e
    if not isinstance(stats, dict) or not all(k in stats for k in ("flops", "macs", "params", "layers")):
        return False, "--stats JSON lacks flops/macs/params/layers at the top level"
    want_macs = sum(macs)
    problems = []
    if stats["flops"] != 2 * want_macs:
        problems.append("flops %s, expected %d (per-layer MACs %s)" % (stats["flops"], 2 * want_macs, macs))
    if stats["macs"] != want_macs:
        problems.append("macs %s, expected %d" % (stats["macs"], want_macs))
    if stats["params"] != params:
        problems.append("params %s, expected %d" % (stats["params"], params))
    if not isinstance(stats["layers"], list) or len(stats["layers"]) != len(macs):
        problems.append("%s layer entries, expected %d" % (
            len(stats["layers"]) if isinstance(stats["layers"], list) else "no list of", len(macs)))
    return (not problems), "; ".join(problems)


def run_one(args, index, workdir):
    """Generates, runs and checks model `index`; returns (ok, message, doc)."""
    model_seed = args.seed * 1_000_003 + index
    rng = random.Random(model_seed)
    torch.manual_seed(model_seed)
    seq, shape, macs = random_model(rng)
    randomize_batchnorm(seq, torch.Generator().manual_seed(model_seed))
    seq.eval()

    folder = os.path.join(workdir, "%04d" % index)
    # both spellings of every argument (defaults omitted or written, ints or
    # pairs) must mean the same model
    doc = export_model(seq, folder, "conformance_%d" % index,
                       shape if rng.random() < 0.7 else None,
                       explicit=rng.random() < 0.3, as_lists=rng.random() < 0.3)
    scale = rng.choice([1.0, 1.0, 4.0])
    x = (torch.randn(shape, generator=torch.Generator().manual_seed(model_seed)) * scale).numpy()
    expected = reference_output(seq, x)
    in_path = os.path.join(folder, "input.npy")
    out_path = os.path.join(folder, "output.npy")
    np.save(in_path, x)
    np.save(os.path.join(folder, "expected.npy"), expected)

    want_stats = index % 10 == 0  # every tenth model, so short runs check statistics too
    cmd = [args.convd, "run", folder, in_path, "-o", out_path] + (["--stats"] if want_stats else [])
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return False, "convd run timed out after %gs" % args.timeout, doc, model_seed
    except OSError as e:
        return False, "cannot start %s: %s" % (args.convd, e), doc, model_seed
    if proc.returncode != 0:
        return False, "convd run exited %d: %s" % (proc.returncode, proc.stderr.strip()), doc, model_seed
    ok, message = compare(out_path, expected)
    if ok and want_stats:
        params = sum(p.numel() for p in seq.parameters())
        ok, message = check_stats(proc.stdout, macs, params)
    return ok, message, doc, model_seed


def main():
    ap = argparse.ArgumentParser(description="Check convd against PyTorch on random models.")
    ap.add_argument("--convd", required=True, help="path of the convd binary")
    ap.add_argument("--models", type=int, required=True, help="how many random models")
    ap.add_argument("--seed", type=int, default=0, help="seed of the model series (default 0)")
    ap.add_argument("--only", type=int, help="run only model number ONLY of the series")
    ap.add_argument("--keep", metavar="DIR", help="keep every model folder (with input, expected, output) in DIR")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per convd run (default 60)")
    args = ap.parse_args()
    # torch warns about padded copies for even "same" kernels; that is what is tested
    warnings.filterwarnings("ignore", message=".*padding=.same. with even kernel.*")
    torch.set_num_threads(1)

    workdir = args.keep or tempfile.mkdtemp(prefix="convd-conformance-")
    os.makedirs(workdir, exist_ok=True)
    passed = failed = 0
    indices = [args.only] if args.only is not None else range(args.models)
    try:
        for i in indices:
            ok, message, doc, model_seed = run_one(args, i, workdir)
            if ok:
                passed += 1
            else:
                failed += 1
                print("FAIL model %d (seed %d): %s\n  model.json: %s" % (i, model_seed, message,
                                                                      json.dumps(doc)), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
