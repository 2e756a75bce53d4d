#!/usr/bin/python3
"""make_examples.py — regenerates the example model folders in examples/
with PyTorch (fixed seeds, so the output is byte-for-byte reproducible).

    /usr/bin/python3 examples/make_examples.py [--out examples]
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from convd_torch import SeparableConv2d, export_model, randomize_batchnorm  # noqa: E402

READMES = {
    "separable_classic": """\
# separable_classic

The classic exercise: a 1x3x128x128 input through `SeparableConv2d(3 -> 10, kernel 3, padding 1)`
(a 3x3 depthwise stage, then a 1x1 pointwise stage). Compare with `../standard_classic`
(same input, same output shape, one standard 3x3 `Conv2d`): `make run` shows both FLOP counts
and the textbook ratio 1/n + 1/k^2. `input.npy` is randn with seed 0.
""",
    "standard_classic": """\
# standard_classic

The baseline for `../separable_classic`: the same 1x3x128x128 input (`input.npy`, randn seed 0)
through one standard `Conv2d(3 -> 10, kernel 3, padding 1)`, for comparing cost and time.
""",
    "mobilenet_v1": """\
# mobilenet_v1

The start of a MobileNet-v1 on a 1x3x224x224 input: a stride-2 3x3 `Conv2d`, then depthwise
(`groups` = channels) / pointwise (1x1) pairs, each followed by `BatchNorm2d` and `ReLU6`
(32 -> 64, 64 stride 2 -> 128, 128 -> 128, 128 stride 2 -> 256). The BatchNorm layers have random
running statistics and affine parameters, so folding them into the convolutions really matters.
""",
    "atrous": """\
# atrous

Dilated (atrous) 3x3 convolutions with dilation 1, 2, 4, 8 and matching padding on a 1x3x64x64
input, then a 1x1 projection: the receptive field grows 3 -> 7 -> 15 -> 31 while the map stays
64x64 (`convd analyze examples/atrous` shows it layer by layer).
""",
}


def dw_pw(cin, cout, stride):
    """A MobileNet-v1 depthwise/pointwise pair, each stage with BatchNorm and ReLU6."""
    return [nn.Conv2d(cin, cin, 3, stride=stride, padding=1, groups=cin, bias=False),
            nn.BatchNorm2d(cin), nn.ReLU6(),
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU6()]


def build(name):
    if name == "separable_classic":
        return nn.Sequential(SeparableConv2d(3, 10, 3, padding=1)), [1, 3, 128, 128]
    if name == "standard_classic":
        return nn.Sequential(nn.Conv2d(3, 10, 3, padding=1)), [1, 3, 128, 128]
    if name == "mobilenet_v1":
        layers = [nn.Conv2d(3, 32, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU6()]
        layers += dw_pw(32, 64, 1) + dw_pw(64, 128, 2) + dw_pw(128, 128, 1) + dw_pw(128, 256, 2)
        return nn.Sequential(*layers), [1, 3, 224, 224]
    if name == "atrous":
        layers = [nn.Conv2d(3, 16, 3, padding=1), nn.ReLU()]
        for d in (2, 4, 8):
            layers += [nn.Conv2d(16, 16, 3, padding=d, dilation=d), nn.ReLU()]
        layers.append(nn.Conv2d(16, 8, 1))
        return nn.Sequential(*layers), [1, 3, 64, 64]
    raise KeyError(name)


def main():
    ap = argparse.ArgumentParser(description="Regenerate the convd example model folders.")
    ap.add_argument("--out", default=HERE, help="where to write the folders (default: examples/)")
    args = ap.parse_args()

    for seed, name in enumerate(READMES):
        torch.manual_seed(seed)
        seq, shape = build(name)
        randomize_batchnorm(seq, torch.Generator().manual_seed(1000 + seed))
        folder = os.path.join(args.out, name)
        export_model(seq, folder, name, shape)
        with open(os.path.join(folder, "README.md"), "w") as f:
            f.write(READMES[name])
        with torch.no_grad():
            out = seq(torch.zeros(shape))
        n_params = sum(p.numel() for p in seq.parameters())
        print("%-18s %2d layers, %6d parameters, output %s" % (name, len(seq), n_params, list(out.shape)))

    sample = np.random.RandomState(0).randn(1, 3, 128, 128).astype(np.float32)
    for name in ("separable_classic", "standard_classic"):
        np.save(os.path.join(args.out, name, "input.npy"), sample)


if __name__ == "__main__":
    main()
