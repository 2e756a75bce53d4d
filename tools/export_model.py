#!/usr/bin/python3
"""export_model.py — writes a convd model folder (model.json +
weights.safetensors) from a PyTorch nn.Sequential given as a Python expression.

Also importable: `from export_model import export_model, SeparableConv2d, ...`
re-exports the helpers of convd_torch.py.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from convd_torch import (SeparableConv2d, export_model, layer_to_json, load_model,  # noqa: E402,F401
                         module_from_json, randomize_batchnorm, read_safetensors,
                         reference_output, sequential_from_model_json,
                         sequential_to_model_json, write_safetensors)

# re-exported so `from export_model import ...` reaches every helper
__all__ = ["SeparableConv2d", "build_from_expression", "export_model", "layer_to_json", "load_model",
           "module_from_json", "randomize_batchnorm", "read_safetensors", "reference_output",
           "sequential_from_model_json", "sequential_to_model_json", "write_safetensors"]

EPILOG = """\
The expression is evaluated with `nn` (torch.nn), `torch` and `SeparableConv2d`
in scope and must give an nn.Sequential of Conv2d, SeparableConv2d,
BatchNorm2d, ReLU, ReLU6, MaxPool2d and AvgPool2d. Weights get torch's default
initialisation under the seed; every BatchNorm2d gets random running
statistics and affine parameters so it is not the identity.

example:
  /usr/bin/python3 tools/export_model.py --name mine --out /tmp/mine --input-shape 1,3,64,64 \\
    --python 'nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU6(),
                            SeparableConv2d(16, 32, 3, padding=1))'
"""


def parse_shape(text):
    dims = [int(d) for d in text.split(",")]
    if len(dims) != 4 or any(d <= 0 for d in dims):
        raise argparse.ArgumentTypeError("expected N,C,H,W with positive integers, got %r" % text)
    return dims


def build_from_expression(expression, seed=0):
    """Evaluates `expression` to an nn.Sequential under `seed`, with random
    BatchNorm statistics; returns it in eval mode."""
    torch.manual_seed(seed)
    seq = eval(expression, {"nn": nn, "torch": torch, "SeparableConv2d": SeparableConv2d})
    if isinstance(seq, nn.Module) and not isinstance(seq, nn.Sequential):
        seq = nn.Sequential(seq)
    if not isinstance(seq, nn.Sequential):
        raise ValueError("the expression must give an nn.Sequential, got %s" % type(seq).__name__)
    generator = torch.Generator().manual_seed(seed + 1)
    return randomize_batchnorm(seq, generator).eval()


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Write a convd model folder (model.json + weights.safetensors) from a "
                    "PyTorch nn.Sequential expression.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", required=True, metavar="EXPR",
                    help="Python expression giving the nn.Sequential")
    ap.add_argument("--out", required=True, metavar="DIR", help="model folder to write (created)")
    ap.add_argument("--name", required=True, help="model name written to model.json")
    ap.add_argument("--input-shape", type=parse_shape, metavar="N,C,H,W",
                    help="input shape recorded in model.json (also checked by a torch forward)")
    ap.add_argument("--seed", type=int, default=0, help="seed for the weights (default 0)")
    args = ap.parse_args(argv)

    try:
        seq = build_from_expression(args.python, args.seed)
        if args.input_shape:
            with torch.no_grad():
                out = seq(torch.zeros(args.input_shape))
        export_model(seq, args.out, args.name, args.input_shape)
    except Exception as e:  # a bad expression or model: one line, not a traceback
        print("export_model: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        return 1
    n_params = sum(p.numel() for p in seq.parameters())
    shape = " -> output %s" % list(out.shape) if args.input_shape else ""
    print("wrote %s (%d layers, %d parameters%s)" % (args.out, len(seq), n_params, shape))
    return 0


if __name__ == "__main__":
    sys.exit(main())
