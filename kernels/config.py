"""The one configuration object of `quantize_`: what SVDQuant W4A4 does to each layer."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass(frozen=True)
class SVDQuantConfig:
    """SVDQuant W4A4 with a 16-bit low-rank branch (y = Q(x/λ) Q(W_res) + (x/λ) L1 L2 + b).

    Attributes:
        rank: columns of the low-rank branch L1 (K, r) / rows of L2 (r, N). 32 is the paper's
            default; each rank costs 2 * (K + N) bytes per layer in 16 bit.
        group_size: weights and activations share one scale per group of this many input
            channels (along K). A power of two >= 32: half a group is the K of an int8 MMA.
        alpha: smoothing migration strength in [0, 1]; λ_j = max|x_j|^α / max|W_j|^(1-α).
            0 keeps the activations as they are, 1 moves all of their range into the weights.
        dtype: storage and compute dtype of the low-rank factors, weight scales and smoothing
            (16 bit on GPU; float32 is accepted for CPU-only use).
        min_features: layers with in_features or out_features below this stay in full
            precision (tiny layers save nothing and are accuracy-sensitive).
        skip: fully qualified module names (as in ``named_modules``) that stay unquantized.
        convs: also quantize k x k convolutions (3x3 resnet convs, down/upsamplers: 63% of
            an SD-1.5 UNet's weights) as `SVDQuantConv2d`; False keeps them in full precision.
    """

    rank: int = 32
    group_size: int = 64
    alpha: float = 0.5
    dtype: torch.dtype = torch.bfloat16
    min_features: int = 64
    skip: tuple[str, ...] = ()
    convs: bool = True

    def __post_init__(self) -> None:
        if self.rank < 0:
            raise ValueError(f"rank must be >= 0, got {self.rank}")
        gs = self.group_size
        if gs < 32 or gs & (gs - 1):
            raise ValueError(f"group_size must be a power of two >= 32, got {gs}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {self.alpha}")
        if self.dtype not in _DTYPES.values():
            raise ValueError(f"dtype must be float16, bfloat16 or float32, got {self.dtype}")

    def to_dict(self) -> dict:
        """JSON-ready form (dtype as its name), the inverse of `from_dict`."""
        d = dataclasses.asdict(self)
        d["dtype"] = str(self.dtype).removeprefix("torch.")
        d["skip"] = list(self.skip)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> SVDQuantConfig:
        """Rebuild a config written by `to_dict`."""
        d = dict(d)
        d["dtype"] = _DTYPES[d["dtype"]]
        d["skip"] = tuple(d.get("skip", ()))
        return cls(**d)
