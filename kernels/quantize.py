"""`quantize_`: replace the linear layers (and 1x1 convolutions) of a model by SVDQuant W4A4.

Which layers:
    * every ``nn.Linear`` (attention q/k/v/out, feed-forward, time-embedding and projection
      layers of a diffusers UNet) with both dimensions >= ``config.min_features``;
    * every 1x1, stride-1, ungrouped ``nn.Conv2d`` (resnet ``conv_shortcut``, transformer
      ``proj_in``/``proj_out`` when the UNet does not use linear projections): a per-pixel
      linear map, so it is the same GEMM over B*H*W tokens.
    * every other ungrouped, zero-padded nn.Conv2d (3x3 resnet convs, down/upsamplers) when
      ``config.convs``: `SVDQuantConv2d`, an im2col GEMM with a tap-major K, so activations are
      quantized once per pixel and channel group and the CPU path is one F.conv2d (see
      `kernels.svdquant_conv`). Both channel counts must be >= ``config.min_features``, so
      ``conv_in`` (4 or 8 latent channels) and ``conv_out`` stay in full precision.

Calibration: ``calibration`` gives a handful of real inputs; a forward hook records each target
layer's per-input-channel max |x|, from which the smoothing factor λ is computed.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn

from kernels.config import SVDQuantConfig
from kernels.svdquant_conv import SVDQuantConv2d, is_quantizable_conv
from kernels.svdquant_linear import SVDQuantConv1x1, SVDQuantLinear, is_pointwise_conv

FilterFn = Callable[[nn.Module, str], bool]
Calibration = Iterable[Any] | Callable[[nn.Module], None]


def _is_target(module: nn.Module, name: str, config: SVDQuantConfig, filter_fn: FilterFn | None):
    if isinstance(module, nn.Linear):
        k, n = module.in_features, module.out_features
    elif is_pointwise_conv(module) or (config.convs and is_quantizable_conv(module)):
        k, n = module.in_channels, module.out_channels
    else:
        return False
    if min(k, n) < config.min_features or name in config.skip:
        return False
    return filter_fn is None or filter_fn(module, name)


def _run(module: nn.Module, batch: Any) -> None:
    if isinstance(batch, dict):
        module(**batch)
    elif isinstance(batch, (tuple, list)):
        module(*batch)
    else:
        module(batch)


@torch.no_grad()
def calibrate(
    module: nn.Module, calibration: Calibration, names: Iterable[str]
) -> dict[str, torch.Tensor]:
    """Per-input-channel max |x| seen by the named layers.

    Args:
        module: the model, in full precision.
        calibration: an iterable of batches (a tensor, a tuple of positional arguments or a
            dict of keyword arguments, each passed to ``module``), or a callable that runs the
            model itself (e.g. a few denoising steps of a pipeline).
        names: ``named_modules`` names of nn.Linear / 1x1 nn.Conv2d layers to observe.

    Returns:
        name -> float32 (K,) on the layer's device; layers that saw no input are absent.
    """
    stats: dict[str, torch.Tensor] = {}
    modules = dict(module.named_modules())

    def hook(name: str, layer: nn.Module):
        def record(_mod: nn.Module, args: tuple, _out: Any) -> None:
            x = args[0].detach()
            if isinstance(layer, nn.Conv2d):
                amax = x.abs().amax(dim=(0, 2, 3)).float()  # (C_in,)
            else:
                amax = x.abs().reshape(-1, x.shape[-1]).amax(dim=0).float()  # (K,)
            stats[name] = torch.maximum(stats[name], amax) if name in stats else amax

        return record

    handles = [modules[n].register_forward_hook(hook(n, modules[n])) for n in names]
    try:
        if callable(calibration) and not isinstance(calibration, (torch.Tensor, nn.Module)):
            calibration(module)
        else:
            for batch in calibration:
                _run(module, batch)
    finally:
        for h in handles:
            h.remove()
    return stats


def _set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, new)


def planned_layers(
    module: nn.Module, config: SVDQuantConfig, filter_fn: FilterFn | None = None
) -> list[str]:
    """Names of the layers `quantize_` would replace (works on a ``meta``-device model)."""
    return [name for name, m in module.named_modules() if _is_target(m, name, config, filter_fn)]


@torch.no_grad()
def quantize_(
    module: nn.Module,
    config: SVDQuantConfig,
    calibration: Calibration | None = None,
    filter_fn: FilterFn | None = None,
) -> nn.Module:
    """Quantize a model's linear layers and 1x1 convolutions to SVDQuant W4A4, in place.

    Args:
        module: the model (e.g. a diffusers ``UNet2DConditionModel``), or a single nn.Linear /
            1x1 nn.Conv2d (then the quantized layer is returned, as it cannot replace itself).
        config: `SVDQuantConfig`.
        calibration: a handful of inputs for smoothing (see `calibrate`). None skips smoothing
            (λ = 1) with a warning: outliers then stay in the activations.
        filter_fn: optional ``filter_fn(module, fqn) -> bool`` to choose layers further.

    Returns:
        ``module`` with its layers replaced (or the new layer, for a single-layer input).
    """
    targets = planned_layers(module, config, filter_fn)
    if calibration is None:
        warnings.warn("quantize_ without calibration: no smoothing (λ = 1)", stacklevel=3)
        stats: dict[str, torch.Tensor] = {}
    else:
        stats = calibrate(module, calibration, targets)
    modules = dict(module.named_modules())
    for name in targets:
        old = modules[name]
        absmax = stats.get(name)
        if calibration is not None and absmax is None:
            warnings.warn(f"{name} saw no calibration input: no smoothing", stacklevel=3)
        if isinstance(old, nn.Linear):
            new = SVDQuantLinear.from_float(old, absmax, config)
        elif is_pointwise_conv(old):
            new = SVDQuantConv1x1.from_conv(old, absmax, config)
        else:
            new = SVDQuantConv2d.from_conv(old, absmax, config)
        if name == "":
            return new
        _set_submodule(module, name, new)
    return module


def quantized_layers(module: nn.Module) -> Iterator[tuple[str, SVDQuantLinear]]:
    """(name, layer) for every SVDQuant layer in ``module``."""
    for name, m in module.named_modules():
        if isinstance(m, SVDQuantLinear):
            yield name, m


def weight_bytes(module: nn.Module) -> dict[str, float]:
    """Storage of the quantized layers against the same layers in bfloat16.

    Returns:
        ``{"layers", "bf16_bytes", "quantized_bytes", "ratio"}``; bf16 bytes count weight and
        bias at 2 bytes, quantized bytes everything the layers store (int4 weights, scales,
        smoothing, low-rank factors, bias).
    """
    bf16 = quant = layers = 0
    for _, layer in quantized_layers(module):
        n = layer.out_features
        bf16 += 2 * (layer.weight_numel() + (n if layer.bias is not None else 0))
        quant += layer.quantized_bytes()
        layers += 1
    return {
        "layers": layers,
        "bf16_bytes": bf16,
        "quantized_bytes": quant,
        "ratio": bf16 / quant if quant else float("nan"),
    }


@torch.no_grad()
def dequantize_(module: nn.Module) -> nn.Module:
    """Replace every SVDQuant layer by a float32 nn.Linear / nn.Conv2d, in place.

    The new weight is `SVDQuantLinear.dequantize` (weight error only; the activations are no
    longer quantized). For inspection and comparison; returns ``module``.
    """
    for name, layer in list(quantized_layers(module)):
        n, k = layer.out_features, layer.in_features
        w = layer.dequantize()  # (N, K)
        has_bias = layer.bias is not None
        if isinstance(layer, SVDQuantConv2d):
            geometry = (layer.kernel_size, layer.stride, layer.padding, layer.dilation)
            new = nn.Conv2d(layer.in_channels, n, *geometry, bias=has_bias, device=w.device)
            new.weight.copy_(w)
        elif isinstance(layer, SVDQuantConv1x1):
            new: nn.Module = nn.Conv2d(k, n, 1, bias=has_bias, device=w.device)
            new.weight.copy_(w.view(n, k, 1, 1))
        else:
            new = nn.Linear(k, n, bias=has_bias, device=w.device)
            new.weight.copy_(w)
        if has_bias:
            new.bias.copy_(layer.bias.float())
        if name == "":
            return new
        _set_submodule(module, name, new)
    return module
