#!/usr/bin/python3
"""gen_golden.py — writes the PyTorch golden cases in tests/golden/: one folder
per case with model.json, weights.safetensors, input.npy and expected.npy.

    /usr/bin/python3 tests/gen_golden.py --out tests/golden      (or: make golden)

Each case's weights come from torch's default initialisation under a seed
derived from the case name (so adding a case changes no other), BatchNorm
layers get random running statistics and affine parameters, and expected.npy
is the eval() model's output computed in float64 from the float32 weights
and input, rounded once to float32.
"""
import argparse
import os
import shutil
import sys
import warnings
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from convd_torch import SeparableConv2d, export_model, randomize_batchnorm, reference_output  # noqa: E402

Conv, Sep, BN = nn.Conv2d, SeparableConv2d, nn.BatchNorm2d
ReLU, ReLU6, Max, Avg = nn.ReLU, nn.ReLU6, nn.MaxPool2d, nn.AvgPool2d

# (name, input shape, layers builder, input scale, input shift). The builder
# runs under the case's seed; scale/shift push inputs past ReLU6's 6 or below
# zero where a case needs it.
CASES = []


def case(name, shape, build, scale=1.0, shift=0.0):
    CASES.append((name, shape, build, scale, shift))


# --- Conv2d: each argument alone, then combined
case("conv_basic", [1, 3, 8, 8], lambda: [Conv(3, 4, 3)])
case("conv_padding1", [1, 3, 8, 8], lambda: [Conv(3, 4, 3, padding=1)])
case("conv_no_bias", [1, 3, 8, 8], lambda: [Conv(3, 4, 3, padding=1, bias=False)])
case("conv_stride2", [1, 3, 9, 9], lambda: [Conv(3, 4, 3, stride=2, padding=1)])
case("conv_dilation2", [1, 3, 10, 10], lambda: [Conv(3, 4, 3, padding=2, dilation=2)])
case("conv_asym_kernel", [1, 3, 10, 12], lambda: [Conv(3, 5, (3, 5))])
case("conv_asym_stride", [1, 3, 11, 13], lambda: [Conv(3, 4, 3, stride=(2, 3))])
case("conv_asym_padding", [1, 3, 7, 9], lambda: [Conv(3, 4, 3, padding=(1, 2))])
case("conv_asym_dilation", [1, 3, 12, 14], lambda: [Conv(3, 4, 3, dilation=(2, 3))])
case("conv_asym_all", [2, 3, 9, 11],
     lambda: [Conv(3, 5, (2, 4), stride=(3, 1), padding=(2, 0), dilation=(1, 2))])
case("conv_groups2", [1, 4, 8, 8], lambda: [Conv(4, 6, 3, padding=1, groups=2)])
case("conv_groups4_stride2", [1, 8, 9, 9], lambda: [Conv(8, 8, 3, stride=2, padding=1, groups=4)])
case("conv_groups4_asym", [2, 8, 7, 10],
     lambda: [Conv(8, 12, (3, 2), stride=(1, 2), padding=(0, 1), dilation=(2, 1), groups=4)])
case("conv_depthwise", [1, 6, 8, 8], lambda: [Conv(6, 6, 3, padding=1, groups=6)])
case("conv_depthwise_mult2", [1, 4, 8, 8], lambda: [Conv(4, 8, 3, padding=1, groups=4)])
case("conv_depthwise_mult2_stride2_nobias", [2, 4, 9, 10],
     lambda: [Conv(4, 8, 3, stride=2, padding=1, groups=4, bias=False)])
case("conv_depthwise_asym", [1, 5, 9, 11],
     lambda: [Conv(5, 5, (3, 1), padding=(1, 2), dilation=(1, 2), groups=5)])
case("conv_depthwise_5x5_dilated", [1, 8, 12, 12], lambda: [Conv(8, 8, 5, padding=4, dilation=2, groups=8)])
case("conv_same_k3", [1, 3, 8, 8], lambda: [Conv(3, 4, 3, padding="same")])
case("conv_same_k4_even", [1, 3, 8, 7], lambda: [Conv(3, 4, 4, padding="same")])
case("conv_same_k2x5", [1, 3, 6, 9], lambda: [Conv(3, 4, (2, 5), padding="same")])
case("conv_same_dilation", [1, 3, 9, 9], lambda: [Conv(3, 4, 3, padding="same", dilation=2)])
case("conv_same_even_dilation", [1, 3, 9, 10], lambda: [Conv(3, 4, (2, 4), padding="same", dilation=(3, 1))])
case("conv_same_depthwise", [1, 4, 7, 7], lambda: [Conv(4, 8, 4, padding="same", groups=4)])
case("conv_valid", [1, 3, 8, 8], lambda: [Conv(3, 4, 3, padding="valid")])
case("conv_valid_stride", [1, 3, 9, 12], lambda: [Conv(3, 4, (3, 2), stride=(2, 3), padding="valid")])
case("conv_reflect", [1, 3, 8, 8], lambda: [Conv(3, 4, 3, padding=1, padding_mode="reflect")])
case("conv_reflect_asym", [1, 3, 7, 9], lambda: [Conv(3, 4, (3, 5), padding=(1, 3), padding_mode="reflect")])
case("conv_reflect_same_even", [1, 3, 8, 8], lambda: [Conv(3, 4, 4, padding="same", padding_mode="reflect")])
case("conv_reflect_stride_dilation", [2, 3, 11, 9],
     lambda: [Conv(3, 4, 3, stride=2, padding=2, dilation=2, padding_mode="reflect")])
case("conv_replicate", [1, 3, 8, 8], lambda: [Conv(3, 4, 3, padding=1, padding_mode="replicate")])
case("conv_replicate_asym", [1, 3, 6, 8], lambda: [Conv(3, 4, 3, padding=(3, 1), padding_mode="replicate")])
case("conv_replicate_same", [1, 3, 7, 8],
     lambda: [Conv(3, 4, (2, 3), padding="same", dilation=(1, 2), padding_mode="replicate")])
case("conv_circular", [1, 3, 8, 8], lambda: [Conv(3, 4, 3, padding=1, padding_mode="circular")])
case("conv_circular_asym", [1, 3, 6, 9], lambda: [Conv(3, 4, 3, padding=(2, 1), padding_mode="circular")])
case("conv_circular_same", [1, 3, 8, 8],
     lambda: [Conv(3, 4, 3, padding="same", dilation=2, padding_mode="circular")])
case("conv_circular_groups", [1, 4, 7, 7],
     lambda: [Conv(4, 6, 3, stride=2, padding=1, groups=2, bias=False, padding_mode="circular")])
case("conv_batch3", [3, 3, 8, 8], lambda: [Conv(3, 4, 3, padding=1)])
case("conv_input_1x1_k1", [2, 3, 1, 1], lambda: [Conv(3, 5, 1)])
case("conv_input_1x1_padded", [1, 3, 1, 1], lambda: [Conv(3, 5, 3, padding=1)])
case("conv_input_1x1_k1_pad2", [1, 3, 1, 1], lambda: [Conv(3, 4, 1, padding=2)])
case("conv_input_1x1_replicate", [1, 2, 1, 1], lambda: [Conv(2, 3, 3, padding=1, padding_mode="replicate")])
case("conv_input_1x1_circular", [1, 2, 1, 1], lambda: [Conv(2, 3, 3, padding=1, padding_mode="circular")])
case("conv_stride_gt_kernel", [1, 3, 10, 10], lambda: [Conv(3, 4, 2, stride=3)])
case("conv_stride_gt_kernel_asym", [1, 3, 9, 11], lambda: [Conv(3, 4, (1, 2), stride=(4, 3), padding=(1, 0))])
case("conv_nonsquare", [1, 3, 5, 17], lambda: [Conv(3, 4, 3, padding=1)])
case("conv_wide_kernel_1x7", [1, 3, 6, 15], lambda: [Conv(3, 4, (1, 7), padding=(0, 3))])
case("conv_kernel_equals_input", [2, 3, 5, 5], lambda: [Conv(3, 6, 5)])
case("conv_pointwise", [2, 8, 6, 7], lambda: [Conv(8, 5, 1)])
case("conv_pointwise_nobias", [1, 16, 5, 5], lambda: [Conv(16, 12, 1, bias=False)])
case("conv_pointwise_stride2", [1, 8, 7, 7], lambda: [Conv(8, 5, 1, stride=2)])
case("conv_pointwise_padded", [1, 8, 5, 5], lambda: [Conv(8, 5, 1, padding=1)])
case("conv_pointwise_groups2", [1, 8, 5, 6], lambda: [Conv(8, 6, 1, groups=2)])
case("conv_wider_channels", [2, 16, 12, 12], lambda: [Conv(16, 24, 3, padding=1)])

# --- SeparableConv2d
case("sep_basic", [1, 3, 8, 8], lambda: [Sep(3, 5, 3, padding=1)])
case("sep_dm2", [1, 3, 8, 8], lambda: [Sep(3, 5, 3, padding=1, depth_multiplier=2)])
case("sep_stride2", [1, 4, 9, 9], lambda: [Sep(4, 6, 3, stride=2, padding=1)])
case("sep_dilation", [1, 4, 10, 10], lambda: [Sep(4, 6, 3, padding=2, dilation=2)])
case("sep_no_bias", [1, 4, 8, 8], lambda: [Sep(4, 6, 3, padding=1, bias=False)])
case("sep_reflect", [1, 3, 8, 8], lambda: [Sep(3, 5, 3, padding=1, padding_mode="reflect")])
case("sep_replicate_dm2", [1, 3, 8, 8],
     lambda: [Sep(3, 5, 3, padding=(2, 1), depth_multiplier=2, padding_mode="replicate")])
case("sep_circular", [1, 3, 8, 8], lambda: [Sep(3, 5, 3, padding=1, padding_mode="circular")])
case("sep_same_even", [1, 3, 7, 8], lambda: [Sep(3, 5, 4, padding="same")])
case("sep_same_reflect_dilation", [1, 3, 9, 9],
     lambda: [Sep(3, 4, 3, padding="same", dilation=2, padding_mode="reflect")])
case("sep_valid", [1, 3, 8, 8], lambda: [Sep(3, 4, 3, padding="valid")])
case("sep_asym", [1, 3, 9, 11], lambda: [Sep(3, 5, (3, 5), stride=(2, 1), padding=(1, 2))])
case("sep_combo_batch3", [3, 4, 11, 9],
     lambda: [Sep(4, 7, 3, stride=2, padding=2, dilation=2, depth_multiplier=2, bias=False,
                  padding_mode="reflect")])
case("sep_input_1x1", [1, 4, 1, 1], lambda: [Sep(4, 6, 3, padding=1)])

# --- BatchNorm2d: folded after a convolution, standalone elsewhere
case("bn_after_conv", [1, 3, 8, 8], lambda: [Conv(3, 6, 3, padding=1), BN(6)])
case("bn_after_conv_nobias", [2, 3, 8, 8], lambda: [Conv(3, 6, 3, padding=1, bias=False), BN(6)])
case("bn_after_depthwise", [1, 6, 8, 8], lambda: [Conv(6, 6, 3, padding=1, groups=6, bias=False), BN(6)])
case("bn_after_sep", [1, 3, 8, 8], lambda: [Sep(3, 5, 3, padding=1), BN(5)])
case("bn_first_layer", [2, 4, 6, 6], lambda: [BN(4)])
case("bn_after_pool", [1, 3, 8, 8], lambda: [Conv(3, 4, 3, padding=1), Max(2), BN(4)])
case("bn_after_relu", [1, 3, 8, 8], lambda: [Conv(3, 4, 3), ReLU(), BN(4)])
case("bn_affine_false_after_conv", [1, 3, 8, 8], lambda: [Conv(3, 4, 3, padding=1), BN(4, affine=False)])
case("bn_affine_false_standalone", [1, 4, 5, 7], lambda: [BN(4, affine=False)])
case("bn_eps_large", [1, 3, 6, 6], lambda: [Conv(3, 4, 3), BN(4, eps=0.5), ReLU()])
case("bn_standalone_eps", [1, 5, 4, 4], lambda: [BN(5, eps=1e-3, momentum=0.3)])

# --- activations
case("relu_after_conv", [1, 3, 8, 8], lambda: [Conv(3, 4, 3, padding=1), ReLU()])
case("relu6_after_conv", [1, 3, 8, 8], lambda: [Conv(3, 4, 3, padding=1), ReLU6()], scale=12.0)
case("relu_standalone", [2, 3, 5, 5], lambda: [ReLU()])
case("relu6_standalone", [1, 3, 5, 5], lambda: [ReLU6()], scale=8.0)
case("conv_bn_relu6", [1, 3, 8, 8], lambda: [Conv(3, 6, 3, padding=1), BN(6), ReLU6()], scale=10.0)
case("sep_relu6", [1, 3, 8, 8], lambda: [Sep(3, 5, 3, padding=1), ReLU6()], scale=15.0)

# --- MaxPool2d
case("maxpool_k2", [1, 3, 8, 8], lambda: [Max(2)])
case("maxpool_k3_s2", [1, 3, 9, 9], lambda: [Max(3, stride=2)])
case("maxpool_ceil", [1, 3, 8, 8], lambda: [Max(3, stride=2, ceil_mode=True)])
case("maxpool_ceil_padding", [2, 3, 8, 9], lambda: [Max(3, stride=2, padding=1, ceil_mode=True)])
case("maxpool_padding_negative", [1, 3, 6, 6], lambda: [Max(3, stride=1, padding=1)], shift=-10.0)
case("maxpool_dilation", [1, 3, 10, 10], lambda: [Max(3, stride=1, dilation=2)])
case("maxpool_asym", [1, 3, 9, 10], lambda: [Max((2, 3), stride=(1, 2), padding=(1, 0), dilation=(2, 1))])
case("maxpool_stride_none_asym", [1, 3, 9, 10], lambda: [Max((2, 3))])
# the ceil-mode window that would start inside the right padding is dropped: 5 -> 2, not 3
case("maxpool_ceil_drop_last", [1, 2, 5, 8], lambda: [Max(3, stride=3, padding=1, ceil_mode=True)], shift=-3.0)
case("maxpool_ceil_dilation", [1, 2, 11, 10], lambda: [Max(2, stride=3, dilation=2, ceil_mode=True)])

# --- AvgPool2d
case("avgpool_k2", [1, 3, 8, 8], lambda: [Avg(2)])
case("avgpool_pad_include", [1, 3, 7, 7], lambda: [Avg(3, stride=2, padding=1)])
case("avgpool_pad_exclude", [1, 3, 7, 7], lambda: [Avg(3, stride=2, padding=1, count_include_pad=False)])
case("avgpool_ceil_include", [1, 3, 8, 8], lambda: [Avg(3, stride=2, padding=1, ceil_mode=True)])
case("avgpool_ceil_exclude", [1, 3, 8, 8],
     lambda: [Avg(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)])
case("avgpool_ceil_nopad", [2, 3, 8, 9], lambda: [Avg(3, stride=2, ceil_mode=True)])
case("avgpool_divisor_override", [1, 3, 8, 8], lambda: [Avg(2, divisor_override=3)])
case("avgpool_divisor_override_pad_ceil", [1, 3, 8, 7],
     lambda: [Avg(3, stride=2, padding=1, ceil_mode=True, divisor_override=5)])
case("avgpool_ceil_drop_last", [1, 2, 5, 8], lambda: [Avg(3, stride=3, padding=1, ceil_mode=True)])
case("avgpool_asym", [1, 3, 9, 10], lambda: [Avg((2, 3), stride=(1, 2), padding=(1, 0))])
case("avgpool_asym_exclude_ceil", [1, 3, 9, 10],
     lambda: [Avg((3, 2), stride=(2, 3), padding=(1, 1), ceil_mode=True, count_include_pad=False)])

# --- stacks
case("stack_mini_mobilenet", [1, 3, 16, 16], lambda: [
    Conv(3, 8, 3, stride=2, padding=1, bias=False), BN(8), ReLU6(),
    Conv(8, 8, 3, padding=1, groups=8, bias=False), BN(8), ReLU6(),
    Conv(8, 16, 1, bias=False), BN(16), ReLU6()], scale=3.0)
case("stack_atrous", [1, 3, 24, 24], lambda: [
    Conv(3, 8, 3, padding=1), ReLU(), Conv(8, 8, 3, padding=2, dilation=2), ReLU(),
    Conv(8, 8, 3, padding=4, dilation=4), ReLU(), Conv(8, 8, 3, padding=8, dilation=8), ReLU(),
    Conv(8, 4, 1)])
case("stack_separable", [2, 3, 12, 12], lambda: [
    Sep(3, 8, 3, padding=1), BN(8), ReLU(), Max(2, ceil_mode=True),
    Sep(8, 8, 3, padding=1, depth_multiplier=2), ReLU6(), Avg(2)], scale=4.0)
case("stack_mixed_modes", [1, 4, 13, 11], lambda: [
    Conv(4, 8, 3, padding="same", padding_mode="reflect"), BN(8), ReLU(),
    Max(3, stride=2, padding=1, ceil_mode=True),
    Conv(8, 6, 3, padding=1, groups=2, padding_mode="circular"), ReLU6(),
    Avg(2, ceil_mode=True, padding=1, count_include_pad=False), BN(6)])
case("stack_vgg_batch3", [3, 3, 12, 10], lambda: [
    Conv(3, 8, 3, padding=1), ReLU(), Conv(8, 8, 3, padding=1), ReLU(), Max(2),
    Conv(8, 12, 3, padding=1, padding_mode="replicate"), ReLU(), Avg(2, stride=1)])
case("stack_pool_first", [1, 3, 9, 9], lambda: [
    Avg(3, stride=1, padding=1, count_include_pad=False), BN(3), Conv(3, 4, 1), ReLU(), Max(2, padding=1)])

# --- fused depthwise-separable pairs (tiles of rows, odd tile sizes, batch, stride,
# dilation, padding modes, multiplier 2, 1x1 maps) and the packed 1x1 GEMM's edges
case("fused_sep_tiles", [2, 24, 45, 37], lambda: [Sep(24, 40, 3, padding=1)])
case("fused_sep_dm2_thin_tiles", [1, 32, 11, 150], lambda: [Sep(32, 48, 3, padding=1, depth_multiplier=2)])
case("fused_dw_bn_relu6_pw", [2, 16, 19, 23], lambda: [
    Conv(16, 16, 3, stride=2, padding=1, groups=16, bias=False), BN(16), ReLU6(),
    Conv(16, 24, 1, bias=False), BN(24), ReLU()], scale=4.0)
case("fused_dw_dilated_reflect_pw", [1, 8, 17, 13], lambda: [
    Conv(8, 16, 3, padding=2, dilation=2, groups=8, padding_mode="reflect"), ReLU(), Conv(16, 12, 1)])
case("fused_dw_pw_1x1_map", [3, 6, 1, 1], lambda: [
    Conv(6, 6, 3, padding=1, groups=6), BN(6), Conv(6, 10, 1), ReLU6()], scale=8.0)
case("conv1x1_partial_blocks", [1, 20, 17, 19], lambda: [Conv(20, 13, 1)])
case("conv1x1_deep", [1, 300, 16, 17], lambda: [Conv(300, 7, 1), ReLU()])
case("conv1x1_wide_out", [2, 8, 16, 16], lambda: [Conv(8, 130, 1), ReLU6()], scale=6.0)

# --- strided, dilated and grouped standard convolutions on the polyphase paths
# (implicit GEMM over stride phases; dilation split into its phase sub-images)
case("conv_s2_rgb_odd", [1, 3, 23, 21], lambda: [Conv(3, 32, 3, stride=2, padding=1), ReLU6()], scale=4.0)
case("conv_s2_rgb_batch", [2, 3, 16, 18], lambda: [Conv(3, 16, 3, stride=2, padding=1, bias=False)])
case("conv_s2_reflect", [1, 3, 15, 17], lambda: [Conv(3, 8, 3, stride=2, padding=1, padding_mode="reflect")])
case("conv_s2_replicate", [1, 3, 14, 13], lambda: [Conv(3, 8, 3, stride=2, padding=2, padding_mode="replicate")])
case("conv_s2_circular", [1, 3, 13, 16], lambda: [Conv(3, 8, 3, stride=2, padding=1, padding_mode="circular")])
case("conv_s2_k5_asym", [1, 4, 19, 14], lambda: [Conv(4, 6, (5, 3), stride=2, padding=(2, 1))])
case("conv_s3_k3", [1, 3, 20, 22], lambda: [Conv(3, 5, 3, stride=3, padding=1)])
case("conv_s2_dilation2", [1, 3, 17, 17], lambda: [Conv(3, 8, 3, stride=2, padding=2, dilation=2)])
case("conv_s2_groups", [2, 16, 13, 12], lambda: [Conv(16, 16, 3, stride=2, padding=1, groups=4)])
case("conv_dilation2_wide", [1, 40, 13, 15], lambda: [Conv(40, 24, 3, padding=2, dilation=2), ReLU()])
case("conv_dilation3", [2, 16, 20, 19], lambda: [Conv(16, 20, 3, padding=3, dilation=3)])
case("conv_dilation2_odd_pad", [1, 16, 11, 14], lambda: [Conv(16, 16, 3, padding=1, dilation=2)])
case("conv_dilation2_reflect", [1, 16, 12, 9], lambda: [Conv(16, 16, 3, padding=2, dilation=2, padding_mode="reflect")])
case("conv_dilation_asym", [1, 16, 14, 17], lambda: [Conv(16, 16, 3, padding=(2, 3), dilation=(2, 3))])
case("conv_groups4_16ch", [1, 64, 12, 11], lambda: [Conv(64, 64, 3, padding=1, groups=4), ReLU()])


def seed_of(name):
    return zlib.crc32(name.encode("utf-8"))


def generate(out_dir):
    # torch warns that even "same" kernels need a padded copy; that is the case under test
    warnings.filterwarnings("ignore", message=".*padding=.same. with even kernel.*")
    os.makedirs(out_dir, exist_ok=True)
    # stale cases from an older case list would otherwise linger
    for entry in sorted(os.listdir(out_dir)):
        path = os.path.join(out_dir, entry)
        if os.path.isdir(path) and os.path.exists(os.path.join(path, "model.json")):
            shutil.rmtree(path)
    names = set()
    for name, shape, build, scale, shift in CASES:
        assert name not in names, name
        names.add(name)
        seed = seed_of(name)
        torch.manual_seed(seed)
        seq = nn.Sequential(*build())
        randomize_batchnorm(seq, torch.Generator().manual_seed(seed + 1))
        seq.eval()
        g = torch.Generator().manual_seed(seed + 2)
        x = (torch.randn(shape, generator=g) * scale + shift).to(torch.float32).numpy()
        expected = reference_output(seq, x)
        folder = os.path.join(out_dir, name)
        export_model(seq, folder, name, shape)
        np.save(os.path.join(folder, "input.npy"), x)
        np.save(os.path.join(folder, "expected.npy"), expected)
    return len(CASES)


def main():
    ap = argparse.ArgumentParser(description="Generate the PyTorch golden cases for convd.")
    ap.add_argument("--out", default=os.path.join(HERE, "golden"), help="output folder (default tests/golden)")
    args = ap.parse_args()
    n = generate(args.out)
    print("wrote %d golden cases to %s" % (n, args.out))


if __name__ == "__main__":
    main()
