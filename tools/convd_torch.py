"""convd_torch.py — the PyTorch side of the convd model folder: the
SeparableConv2d module, model.json <-> nn.Sequential, safetensors by hand.

Importable with only torch, numpy and the standard library
(run with Debian's /usr/bin/python3). A model folder is `model.json` plus
`weights.safetensors`, keyed like the state_dict() of the equivalent
nn.Sequential; see README "The model folder".
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn


class SeparableConv2d(nn.Module):
    """A k x k depthwise convolution (groups = in_channels, depth_multiplier
    filters per channel) followed by a 1 x 1 pointwise convolution: the
    module convd's `SeparableConv2d` layer computes."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 depth_multiplier=1, bias=True, padding_mode="zeros"):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.depth_multiplier = depth_multiplier
        mid = in_channels * depth_multiplier
        self.depthwise = nn.Conv2d(in_channels, mid, kernel_size, stride=stride, padding=padding,
                                   dilation=dilation, groups=in_channels, bias=bias,
                                   padding_mode=padding_mode)
        self.pointwise = nn.Conv2d(mid, out_channels, 1, bias=bias)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


# ----------------------------------------------------------------- model.json

def _pair_json(value, as_list=False):
    """torch keeps sizes as ints or tuples; model.json writes an int when both
    sides agree (unless as_list) and an [h, w] list otherwise."""
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, (tuple, list)):
        h, w = (int(v) for v in value)
        return [h, w] if (as_list or h != w) else h
    return [int(value), int(value)] if as_list else int(value)


def layer_to_json(module, explicit=False, as_lists=False):
    """The model.json layer object for one torch module. By default only
    arguments that differ from torch's defaults are written; explicit=True
    writes every argument, as_lists=True writes every size as an [h, w] list
    (both spellings mean the same model)."""
    p = lambda v: _pair_json(v, as_lists)
    out = {}

    def put(key, value, default):
        if explicit or value != default:
            out[key] = value

    if isinstance(module, SeparableConv2d):
        dw = module.depthwise
        out = {"type": "SeparableConv2d", "in_channels": module.in_channels,
               "out_channels": module.out_channels, "kernel_size": p(dw.kernel_size)}
        put("stride", p(dw.stride), p(1))
        put("padding", p(dw.padding), p(0))
        put("dilation", p(dw.dilation), p(1))
        put("depth_multiplier", module.depth_multiplier, 1)
        put("bias", dw.bias is not None, True)
        put("padding_mode", dw.padding_mode, "zeros")
    elif isinstance(module, nn.Conv2d):
        out = {"type": "Conv2d", "in_channels": module.in_channels,
               "out_channels": module.out_channels, "kernel_size": p(module.kernel_size)}
        put("stride", p(module.stride), p(1))
        put("padding", p(module.padding), p(0))
        put("dilation", p(module.dilation), p(1))
        put("groups", module.groups, 1)
        put("bias", module.bias is not None, True)
        put("padding_mode", module.padding_mode, "zeros")
    elif isinstance(module, nn.BatchNorm2d):
        if not module.track_running_stats:
            raise ValueError("BatchNorm2d: track_running_stats must be true for inference")
        out = {"type": "BatchNorm2d", "num_features": module.num_features}
        put("eps", module.eps, 1e-5)
        if module.momentum is not None:  # None (cumulative average) has no JSON spelling convd takes
            put("momentum", module.momentum, 0.1)
        put("affine", module.affine, True)
        if explicit:
            out["track_running_stats"] = True
    elif isinstance(module, (nn.ReLU, nn.ReLU6)):
        out = {"type": type(module).__name__}
        if explicit:
            out["inplace"] = bool(module.inplace)
    elif isinstance(module, nn.MaxPool2d):
        if module.return_indices:
            raise ValueError("MaxPool2d: return_indices must be false")
        out = {"type": "MaxPool2d", "kernel_size": p(module.kernel_size)}
        put("stride", p(module.stride), p(module.kernel_size))
        put("padding", p(module.padding), p(0))
        put("dilation", p(module.dilation), p(1))
        put("ceil_mode", module.ceil_mode, False)
        if explicit:
            out["return_indices"] = False
    elif isinstance(module, nn.AvgPool2d):
        out = {"type": "AvgPool2d", "kernel_size": p(module.kernel_size)}
        put("stride", p(module.stride), p(module.kernel_size))
        put("padding", p(module.padding), p(0))
        put("ceil_mode", module.ceil_mode, False)
        put("count_include_pad", module.count_include_pad, True)
        put("divisor_override", module.divisor_override, None)
    else:
        raise ValueError("unsupported module for convd: %s" % type(module).__name__)
    return out


def sequential_to_model_json(seq, name, input_shape=None, explicit=False, as_lists=False):
    """The model.json document (a dict) for an nn.Sequential."""
    doc = {"name": name}
    if input_shape is not None:
        doc["input"] = {"shape": [int(d) for d in input_shape]}
    doc["layers"] = [layer_to_json(m, explicit, as_lists) for m in seq]
    return doc


def _size_arg(value):
    return tuple(value) if isinstance(value, list) else value


# For each type: required arguments, optional arguments (torch's defaults),
# arguments accepted and ignored.
_LAYER_ARGS = {
    "Conv2d": (["in_channels", "out_channels", "kernel_size"],
               {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True,
                "padding_mode": "zeros"}, ["algorithm"]),
    "SeparableConv2d": (["in_channels", "out_channels", "kernel_size"],
                        {"stride": 1, "padding": 0, "dilation": 1, "depth_multiplier": 1,
                         "bias": True, "padding_mode": "zeros"}, ["algorithm"]),
    "BatchNorm2d": (["num_features"],
                    {"eps": 1e-5, "momentum": 0.1, "affine": True, "track_running_stats": True}, []),
    "ReLU": ([], {}, ["inplace"]),
    "ReLU6": ([], {}, ["inplace"]),
    "MaxPool2d": (["kernel_size"],
                  {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False,
                   "return_indices": False}, []),
    "AvgPool2d": (["kernel_size"],
                  {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True,
                   "divisor_override": None}, []),
}


def module_from_json(layer):
    """The torch module a model.json layer object describes, with torch's
    defaults for every argument left out. Unknown types or keys raise
    ValueError."""
    kind = layer.get("type")
    if kind not in _LAYER_ARGS:
        raise ValueError("unsupported layer type %r" % (kind,))
    required, optional, ignored = _LAYER_ARGS[kind]
    for key in layer:
        if key != "type" and key not in required and key not in optional and key not in ignored:
            raise ValueError("%s: unknown argument %r" % (kind, key))
    for key in required:
        if key not in layer:
            raise ValueError("%s: missing argument %r" % (kind, key))
    a = dict(optional)
    a.update({k: _size_arg(v) for k, v in layer.items() if k in required or k in optional})

    if kind == "Conv2d":
        return nn.Conv2d(a["in_channels"], a["out_channels"], a["kernel_size"], stride=a["stride"],
                         padding=a["padding"], dilation=a["dilation"], groups=a["groups"],
                         bias=a["bias"], padding_mode=a["padding_mode"])
    if kind == "SeparableConv2d":
        return SeparableConv2d(a["in_channels"], a["out_channels"], a["kernel_size"],
                               stride=a["stride"], padding=a["padding"], dilation=a["dilation"],
                               depth_multiplier=a["depth_multiplier"], bias=a["bias"],
                               padding_mode=a["padding_mode"])
    if kind == "BatchNorm2d":
        if not a["track_running_stats"]:
            raise ValueError("BatchNorm2d: track_running_stats must be true")
        return nn.BatchNorm2d(a["num_features"], eps=a["eps"], momentum=a["momentum"],
                              affine=a["affine"])
    if kind == "ReLU":
        return nn.ReLU()
    if kind == "ReLU6":
        return nn.ReLU6()
    if kind == "MaxPool2d":
        if a["return_indices"]:
            raise ValueError("MaxPool2d: return_indices must be false")
        return nn.MaxPool2d(a["kernel_size"], stride=a["stride"], padding=a["padding"],
                            dilation=a["dilation"], ceil_mode=a["ceil_mode"])
    return nn.AvgPool2d(a["kernel_size"], stride=a["stride"], padding=a["padding"],
                        ceil_mode=a["ceil_mode"], count_include_pad=a["count_include_pad"],
                        divisor_override=a["divisor_override"])


def sequential_from_model_json(doc):
    """The nn.Sequential a model.json document (dict) describes."""
    return nn.Sequential(*[module_from_json(layer) for layer in doc["layers"]])


# ----------------------------------------------------------------- safetensors

_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64,
           "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def write_safetensors(path, state_dict):
    """Writes `state_dict` (name -> tensor or array) as safetensors: float
    tensors as little-endian F32, integer tensors as I64, keys sorted."""
    header, blobs, offset = {}, [], 0
    for key in sorted(state_dict):
        value = state_dict[key]
        array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        if np.issubdtype(array.dtype, np.floating):
            dtype, array = "F32", array.astype("<f4")
        elif np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
            dtype, array = "I64", array.astype("<i8")
        else:
            raise ValueError("%s: unsupported dtype %s" % (key, array.dtype))
        blob = np.ascontiguousarray(array).tobytes()
        header[key] = {"dtype": dtype, "shape": list(array.shape),
                       "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def read_safetensors(path):
    """Reads a safetensors file into {name: torch.Tensor} (metadata dropped)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
        array = np.frombuffer(data[base + begin:base + end], dtype=dtype).reshape(info["shape"])
        out[key] = torch.from_numpy(array.astype(dtype.newbyteorder("=")))
    return out


# ----------------------------------------------------------------- folders

def randomize_batchnorm(seq, generator=None):
    """Gives every BatchNorm2d non-trivial running statistics and affine
    parameters, so a model is not BatchNorm-as-identity (and folding is
    really exercised)."""
    with torch.no_grad():
        for m in seq.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(0.5 * torch.randn(c, generator=generator))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(c, generator=generator))
                if m.affine:
                    m.weight.copy_(1.0 + 0.3 * torch.randn(c, generator=generator))
                    m.bias.copy_(0.2 * torch.randn(c, generator=generator))
    return seq


def model_json_text(doc):
    """model.json text with one layer per line, readable in a diff."""
    head = {k: v for k, v in doc.items() if k != "layers"}
    lines = ["{"] + ["  %s: %s," % (json.dumps(k), json.dumps(v)) for k, v in head.items()]
    layers = [json.dumps(layer) for layer in doc.get("layers", [])]
    lines.append('  "layers": [')
    lines += ["    %s%s" % (text, "," if i + 1 < len(layers) else "") for i, text in enumerate(layers)]
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def export_model(seq, folder, name, input_shape=None, explicit=False, as_lists=False):
    """Writes `folder`/model.json and `folder`/weights.safetensors for the
    nn.Sequential `seq` (put in eval mode; weights written as float32)."""
    seq.eval()
    doc = sequential_to_model_json(seq, name, input_shape, explicit, as_lists)  # may refuse a module
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "model.json"), "w") as f:
        f.write(model_json_text(doc))
    write_safetensors(os.path.join(folder, "weights.safetensors"), seq.state_dict())
    return doc


def load_model(folder):
    """The eval()-mode nn.Sequential stored in a model folder (float32)."""
    with open(os.path.join(folder, "model.json")) as f:
        doc = json.load(f)
    seq = sequential_from_model_json(doc)
    seq.load_state_dict(read_safetensors(os.path.join(folder, "weights.safetensors")))
    return seq.eval()


def reference_output(seq, x):
    """torch's output for input `x` (array or tensor), computed in float64 on
    a float64 copy of the model and returned as a float32 array: the exact
    value rounded once."""
    import copy
    model = copy.deepcopy(seq).double().eval()
    inp = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    with torch.no_grad():
        return model(inp).numpy().astype(np.float32)
