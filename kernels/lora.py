"""LoRA on SVDQuant layers: an adapter joins the low-rank branch; the int4 weights stay as they are.

A LoRA adapter adds ``scale * x A^T B^T`` (A: (r, K) down, B: (N, r) up) in the original input
space. The layer sees x_s = x / λ, so the adapter becomes columns ``λ ⊙ A^T`` of L1 and rows
``scale * B^T`` of L2: the fused kernels then run it at no extra pass, and nothing is
re-quantized. Removing an adapter slices those columns/rows out again, which gives back the
previous factors bit for bit.
"""

from __future__ import annotations

import torch
from torch import nn

from kernels.svdquant_linear import SVDQuantLinear


@torch.no_grad()
def add_lora(
    layer: SVDQuantLinear,
    name: str,
    down: torch.Tensor,
    up: torch.Tensor,
    scale: float = 1.0,
) -> None:
    """Concatenate a LoRA adapter into the layer's low-rank branch.

    Args:
        layer: an SVDQuant layer (linear or 1x1 conv).
        name: adapter name, unique per layer.
        down: A, (r, K) (a (r, K, 1, 1) conv weight is accepted; for a k x k conv layer its
            (r, C, kh, kw) LoRA down conv), any float dtype.
        up: B, (N, r) (or (N, r, 1, 1)), any float dtype.
        scale: LoRA scale (alpha / r in peft terms).

    The adapter is stored in the layer's factor dtype (rounded once). The quantized weights,
    scales and the SVD branch are untouched.
    """
    if name in layer.adapters:
        raise ValueError(f"adapter {name!r} already on this layer")
    up = up.flatten(1).float()  # (N, r)
    r = down.shape[0]
    fits = down[0].numel() == layer.smooth.numel() * getattr(layer, "taps", 1)
    if not fits or up.shape != (layer.out_features, r):
        raise ValueError(
            f"LoRA shapes {tuple(down.shape)}, {tuple(up.shape)} do not fit a layer "
            f"{layer.in_features} -> {layer.out_features}"
        )
    device, dtype = layer.l1.device, layer.l1.dtype
    l1_new = layer.lora_down_to_l1(down).to(device, dtype)  # (K, r): λ ⊙ A^T
    l2_new = (up.T.to(device) * scale).to(dtype)  # (r, N)
    start = layer.rank
    layer.l1 = torch.cat((layer.l1, l1_new), dim=1)
    layer.l2 = torch.cat((layer.l2, l2_new), dim=0)
    layer.adapters[name] = (start, start + r)


@torch.no_grad()
def remove_lora(layer: SVDQuantLinear, name: str) -> None:
    """Remove an adapter added by `add_lora`; the factors return exactly to what they were."""
    if name not in layer.adapters:
        raise KeyError(f"no adapter {name!r} on this layer; have {sorted(layer.adapters)}")
    start, stop = layer.adapters.pop(name)
    width = stop - start
    layer.l1 = torch.cat((layer.l1[:, :start], layer.l1[:, stop:]), dim=1).contiguous()
    layer.l2 = torch.cat((layer.l2[:start], layer.l2[stop:]), dim=0).contiguous()
    for other, (a, b) in layer.adapters.items():
        if a >= stop:
            layer.adapters[other] = (a - width, b - width)


def add_lora_to_model(
    module: nn.Module,
    name: str,
    weights: dict[str, tuple[torch.Tensor, torch.Tensor]],
    scale: float = 1.0,
) -> None:
    """`add_lora` on several layers of a quantized model.

    Args:
        module: model after `kernels.quantize_`.
        name: adapter name.
        weights: layer name (as in ``named_modules``) -> (down A (r, K), up B (N, r)).
        scale: LoRA scale for all of them.
    """
    for layer_name, (down, up) in weights.items():
        layer = module.get_submodule(layer_name)
        if not isinstance(layer, SVDQuantLinear):
            raise TypeError(f"{layer_name} is not an SVDQuant layer: {type(layer).__name__}")
        add_lora(layer, name, down, up, scale)


def remove_lora_from_model(module: nn.Module, name: str) -> int:
    """Remove adapter ``name`` from every SVDQuant layer that has it; returns how many."""
    count = 0
    for m in module.modules():
        if isinstance(m, SVDQuantLinear) and name in m.adapters:
            remove_lora(m, name)
            count += 1
    return count
