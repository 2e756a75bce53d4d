#!/usr/bin/python3
"""Writes the .npy and safetensors fixtures used by tests/unit/test_npy.c and
tests/unit/test_safetensors.c. The .npy files come from numpy itself; the
safetensors files from the small writer below, which follows the format
(and the reference writer's ordering and padding) without the safetensors
package. Run from the repository root: /usr/bin/python3 tests/data/gen_codec_fixtures.py
"""
import json
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
NPY_DIR = os.path.join(HERE, "npy")
ST_DIR = os.path.join(HERE, "safetensors")


def save_npy(name, array, **kwargs):
    np.save(os.path.join(NPY_DIR, name), array, **kwargs)


def save_expected(name, array):
    """numpy's own conversion to float32, raw little-endian: the oracle the C
    decoder is compared with bit for bit."""
    with open(os.path.join(NPY_DIR, name), "wb") as f:
        f.write(np.ascontiguousarray(array, dtype="<f4").tobytes())


def write_with_version(name, array, version):
    with open(os.path.join(NPY_DIR, name), "wb") as f:
        np.lib.format.write_array(f, array, version=version)


def half_patterns():
    """Every subnormal, inf/NaN and smallest/largest-exponent half, plus a
    sample of the normal ones."""
    bits = np.arange(65536, dtype=np.uint32)
    exponent = (bits >> 10) & 0x1F
    keep = (exponent == 0) | (exponent == 31) | (exponent == 1) | (exponent == 30) | (bits % 11 == 0)
    return bits[keep].astype("<u2").view("<f2")


def gen_npy():
    os.makedirs(NPY_DIR, exist_ok=True)
    save_npy("f32_rank0.npy", np.array(3.25, dtype="<f4"))
    save_npy("f32_rank1.npy", (np.arange(5, dtype="<f4") * 0.5 - 1).astype("<f4"))
    save_npy("f32_rank4.npy", (np.arange(120, dtype="<f4").reshape(2, 3, 4, 5) * 0.25 - 7).astype("<f4"))
    save_npy("f32_empty.npy", np.zeros((0, 3), dtype="<f4"))

    f64 = np.array([[0.1, 1 / 3, -2.5], [1e-40, 1e300, -1e300], [np.inf, -0.0, 2**-149]], dtype="<f8")
    save_npy("f64_rank2.npy", f64)
    with np.errstate(over="ignore"):
        save_expected("f64_rank2.expected.f32", f64.astype("<f4"))

    halves = half_patterns()
    save_npy("f16_patterns.npy", halves)
    save_expected("f16_patterns.expected.f32", halves.astype("<f4"))

    write_with_version("v2_f32.npy", np.arange(12, dtype="<f4").reshape(3, 4), (2, 0))
    write_with_version("v3_f32.npy", (np.arange(8, dtype="<f4") - 4).reshape(2, 2, 2), (3, 0))

    save_npy("fortran_f32.npy", np.asfortranarray(np.arange(6, dtype="<f4").reshape(2, 3)))
    save_npy("int32.npy", np.arange(4, dtype="<i4"))
    save_npy("big_endian_f32.npy", np.arange(3, dtype=">f4"))
    save_npy("object.npy", np.array([1, "a", None], dtype=object), allow_pickle=True)
    save_npy("structured.npy", np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")]))
    save_npy("rank5_f32.npy", np.zeros((1, 1, 1, 2, 1), dtype="<f4"))


# ------------------------------------------------------------ safetensors

DTYPE_SIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def write_safetensors(path, tensors, metadata=None):
    """tensors: {name: (dtype, shape, raw little-endian bytes)}. Ordered like
    the reference writer: larger dtypes first, then by name; compact JSON
    padded with spaces to a multiple of 8."""
    order = sorted(tensors, key=lambda n: (-DTYPE_SIZE[tensors[n][0]], n))
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    data = b""
    for name in order:
        dtype, shape, raw = tensors[name]
        assert len(raw) == DTYPE_SIZE[dtype] * int(np.prod(shape, dtype=np.int64))
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def bf16_bytes(values):
    """bfloat16 as the upper half of float32; the values are exact in bf16."""
    as_f32 = np.asarray(values, dtype="<f4")
    assert np.all((as_f32.view("<u4") & 0xFFFF) == 0), "value not exact in bfloat16"
    return (as_f32.view("<u4") >> 16).astype("<u2").tobytes()


def gen_safetensors():
    os.makedirs(ST_DIR, exist_ok=True)
    # A Conv2d(1, 2, 3) + BatchNorm2d(2) state_dict with mixed dtypes; the C
    # test knows the values by these formulas.
    write_safetensors(
        os.path.join(ST_DIR, "model.safetensors"),
        {
            "0.weight": ("F32", [2, 1, 3, 3], (np.arange(18, dtype="<f4") * 0.125 - 1).tobytes()),
            "0.bias": ("F32", [2], np.array([0.5, -0.5], dtype="<f4").tobytes()),
            "1.weight": ("F16", [2], np.array([1.5, 2**-24], dtype="<f2").tobytes()),
            "1.bias": ("BF16", [2], bf16_bytes([-3.0, 0.15625])),
            "1.running_mean": ("F64", [2], np.array([0.1, -1e300], dtype="<f8").tobytes()),
            "1.running_var": ("F32", [2], np.array([1.0, 4.0], dtype="<f4").tobytes()),
            "1.num_batches_tracked": ("I64", [], np.array(7, dtype="<i8").tobytes()),
        },
        metadata={"format": "pt"},
    )
    write_safetensors(
        os.path.join(ST_DIR, "scalar_and_empty.safetensors"),
        {
            "scalar": ("F32", [], np.array(2.5, dtype="<f4").tobytes()),
            "empty": ("F32", [0, 4], b""),
            "mask": ("BOOL", [3], bytes([1, 0, 1])),
        },
    )


if __name__ == "__main__":
    gen_npy()
    gen_safetensors()
