"""Save and load SVDQuant models as safetensors (never pickle).

The file holds the model's whole state dict, with each quantized layer as its stored tensors
(``qweight`` packed int4, ``wscales``, ``smooth``, ``l1``, ``l2``, ``bias``), and in its
metadata a JSON description of every quantized layer (kind, shape, rank, group size, dtype,
LoRA adapters) plus an optional config. Loading builds a skeleton of the model on the ``meta``
device, swaps in empty quantized layers of the stored shapes, and assigns the stored tensors:
no full-precision weight of a quantized layer is ever allocated.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from kernels.config import SVDQuantConfig
from kernels.quantize import _set_submodule, quantized_layers
from kernels.svdquant_conv import SVDQuantConv2d
from kernels.svdquant_linear import SVDQuantConv1x1, SVDQuantLinear

FORMAT = "cofrida-svdquant"
VERSION = "2"  # 2: k x k conv layers ("conv2d"), 16-bit storage of the other weights
READABLE = ("1", "2")


def _kind(layer: SVDQuantLinear) -> str:
    if isinstance(layer, SVDQuantConv2d):
        return "conv2d"
    return "conv1x1" if isinstance(layer, SVDQuantConv1x1) else "linear"


def _layer_meta(layer: SVDQuantLinear) -> dict:
    meta = {
        "kind": _kind(layer),
        "in_features": layer.in_features,
        "out_features": layer.out_features,
        "rank": layer.rank,
        "base_rank": layer.base_rank,
        "group_size": layer.group_size,
        "dtype": str(layer.wscales.dtype).removeprefix("torch."),
        "bias": layer.bias is not None,
        "adapters": {k: list(v) for k, v in layer.adapters.items()},
    }
    if isinstance(layer, SVDQuantConv2d):
        meta["conv"] = {
            "in_channels": layer.in_channels,
            "kernel_size": list(layer.kernel_size),
            "stride": list(layer.stride),
            "padding": list(layer.padding),
            "dilation": list(layer.dilation),
        }
    return meta


def _in_quantized_layer(key: str, names: set[str]) -> bool:
    prefix = key.rpartition(".")[0]
    return prefix in names or (prefix == "" and "" in names)


def save_quantized(
    module: nn.Module,
    path: str | Path,
    config: SVDQuantConfig | None = None,
    float_dtype: torch.dtype | None = torch.float16,
) -> None:
    """Write a quantized model (quantized layers and all other weights) to one safetensors file.

    Args:
        module: a model after `kernels.quantize_` (LoRA adapters included).
        path: destination file (``.safetensors``).
        config: optional; stored in the metadata for reference.
        float_dtype: storage dtype of the float weights outside the quantized layers (norms,
            conv_in/conv_out, layers too narrow to quantize); None keeps them as they are. The
            quantized layers' tensors are stored as they are (their factors and scales are in
            the quantization dtype, 16 bit by default; λ in float32).
    """
    layers = {name: _layer_meta(layer) for name, layer in quantized_layers(module)}
    names = set(layers)
    tensors = {}
    for k, v in module.state_dict().items():
        v = v.detach()
        if float_dtype is not None and v.is_floating_point() and not _in_quantized_layer(k, names):
            v = v.to(float_dtype)
        tensors[k] = v.contiguous()
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "layers": json.dumps(layers),
        "config": json.dumps(config.to_dict() if config is not None else None),
    }
    save_file(tensors, str(path), metadata=metadata)


def read_metadata(path: str | Path) -> dict:
    """The decoded metadata of a file written by `save_quantized`: layers, config, version."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not an SVDQuant file (format={meta.get('format')!r})")
    if meta.get("version") not in READABLE:
        raise ValueError(
            f"{path}: SVDQuant format version {meta.get('version')!r}; this version reads "
            f"{READABLE} (a newer cofrida wrote it?)"
        )
    return {
        "version": meta["version"],
        "layers": json.loads(meta["layers"]),
        "config": json.loads(meta["config"]),
    }


def load_quantized(
    skeleton: nn.Module | Callable[[], nn.Module],
    path: str | Path,
    device: torch.device | str = "cpu",
    float_dtype: torch.dtype | None = torch.float32,
) -> nn.Module:
    """Rebuild a quantized model from `save_quantized` output.

    Args:
        skeleton: a zero-argument factory for the float model (called under
            ``torch.device("meta")``, so it allocates nothing), or a model instance (ideally
            already on ``meta``); its layers named in the file are replaced.
        path: file written by `save_quantized`.
        device: where the loaded tensors go.
        float_dtype: dtype the float weights outside the quantized layers are computed in
            (stored in 16 bit since version 2; float32 suits CPUs); None keeps the stored one.

    Returns:
        The model with quantized layers holding the stored tensors, every other parameter and
        buffer loaded from the file as well (strict: missing or unexpected keys raise).
    """
    meta = read_metadata(path)
    if isinstance(skeleton, nn.Module):
        model = skeleton
    else:
        with torch.device("meta"):
            model = skeleton()
    for name, info in meta["layers"].items():
        common = {
            "rank": info["rank"],
            "group_size": info["group_size"],
            "dtype": getattr(torch, info["dtype"]),
            "bias": info["bias"],
            "device": "meta",
        }
        if info["kind"] == "conv2d":
            c = info["conv"]
            layer = SVDQuantConv2d(
                c["in_channels"], info["out_features"], c["kernel_size"], c["stride"],
                c["padding"], c["dilation"], **common,
            )  # fmt: skip
        else:
            cls = SVDQuantConv1x1 if info["kind"] == "conv1x1" else SVDQuantLinear
            layer = cls(info["in_features"], info["out_features"], **common)
        layer.base_rank = info["base_rank"]
        layer.adapters = {k: (v[0], v[1]) for k, v in info["adapters"].items()}
        if name == "":
            model = layer
        else:
            _set_submodule(model, name, layer)
    tensors = load_file(str(path), device=str(device))
    if float_dtype is not None:
        names = set(meta["layers"])
        for k, v in tensors.items():
            if v.is_floating_point() and not _in_quantized_layer(k, names):
                tensors[k] = v.to(float_dtype)
    model.load_state_dict(tensors, strict=True, assign=True)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise RuntimeError(f"tensors not in the file stayed on meta: {left[:5]}")
    return model
