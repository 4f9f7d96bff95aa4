"""Quantized layers: `SVDQuantLinear` (nn.Linear) and `SVDQuantConv1x1` (1x1 nn.Conv2d).

A layer stores only what inference needs (shapes for in_features K, out_features N, rank R,
group size gs, Kp = K rounded up to gs, G = Kp / gs):

    qweight  int8 (N, Kp/2)   residual weight, packed int4 (see `kernels.quant_ref`)
    wscales  dtype (N, G)     per-row, per-group weight scales
    smooth   float32 (K,)     λ: x_s = x / λ, W_s = W * λ
    l1       dtype (K, R)     low-rank down-projection (smoothed space)
    l2       dtype (R, N)     low-rank up-projection
    bias     dtype (N,)       optional

and computes y = Q(x_s) Q(W_res)^T + (x_s L1) L2 + b. On CUDA tensors the two Triton kernels run
(`kernels.act_quant_lowrank`, `kernels.w4a4_gemm`); elsewhere ("auto" on CPU) the weight is
dequantized once and cached, and each call fake-quantizes the activations with the same int4
rounding and does one float matmul (`quant_ref.w4a4_dequant_forward`: the same function, float32
summation order aside). ``backend="reference"`` runs the group-by-group integer reference the
kernels are tested against.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from kernels.config import SVDQuantConfig
from kernels.quant_ref import (
    act_quant_lowrank_ref,
    dequantize_int4_groups,
    low_rank_split,
    padded_k,
    quantize_int4_groups,
    smoothing_factor,
    w4a4_dequant_forward,
    w4a4_gemm_ref,
)

Backend = Literal["auto", "reference", "triton", "dequant"]


class SVDQuantLinear(nn.Module):
    """W4A4 linear layer with a 16-bit low-rank branch (SVDQuant).

    Build one with `from_float` (quantizes an nn.Linear) or, to load stored tensors, with the
    constructor (empty buffers of the right shapes, on any device including ``meta``) followed by
    ``load_state_dict``. No full-precision (N, K) weight is ever held.

    Args:
        in_features: K. out_features: N. rank: R >= 0 (grows when LoRA adapters are added).
        group_size: channels per scale along K (power of two >= 32).
        dtype: dtype of wscales, l1, l2 and bias.
        bias: whether the layer has a bias.
        device: where to allocate the (uninitialised) buffers.

    Attributes:
        backend: "auto" (Triton kernels on CUDA tensors, "dequant" elsewhere), "dequant"
            (cached float weight, one matmul), "reference" (integer groups, the kernels'
            specification) or "triton" (kernels always; on CPU only under TRITON_INTERPRET=1).
        adapters: LoRA name -> (start, stop) columns of l1 / rows of l2 (see `kernels.lora`).
        base_rank: rank of the SVD branch itself; adapters come after it.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        rank: int,
        group_size: int = 64,
        dtype: torch.dtype = torch.bfloat16,
        bias: bool = True,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.group_size = group_size
        kp = padded_k(in_features, group_size)
        n, k = out_features, in_features
        self.register_buffer("qweight", torch.empty(n, kp // 2, dtype=torch.int8, device=device))
        self.register_buffer(
            "wscales", torch.empty(n, kp // group_size, dtype=dtype, device=device)
        )
        self.register_buffer("smooth", torch.ones(k, dtype=torch.float32, device=device))
        self.register_buffer("l1", torch.empty(k, rank, dtype=dtype, device=device))
        self.register_buffer("l2", torch.empty(rank, n, dtype=dtype, device=device))
        b = torch.empty(n, dtype=dtype, device=device) if bias else None
        self.register_buffer("bias", b)
        self.backend: Backend = "auto"
        self._w_dq: tuple[tuple, torch.Tensor] | None = None  # (buffers' identity, (N, Kp))
        self.adapters: dict[str, tuple[int, int]] = {}
        self.base_rank = rank

    @property
    def rank(self) -> int:
        """Current width of the low-rank branch (SVD rank plus LoRA ranks)."""
        return self.l1.shape[1]

    @classmethod
    @torch.no_grad()
    def from_float(
        cls, linear: nn.Linear, act_absmax: torch.Tensor | None, config: SVDQuantConfig
    ) -> SVDQuantLinear:
        """Quantize a linear layer.

        Args:
            linear: the layer; its weight (N, K) is read in float32 and left untouched.
            act_absmax: float (K,) per-input-channel max |x| from calibration, or None for no
                smoothing (λ = 1).
            config: rank, group size, α and storage dtype.

        Returns:
            A new layer on the weight's device.
        """
        w = linear.weight.detach().float()
        return cls._from_weight(w, linear.bias, act_absmax, config)

    @classmethod
    def _from_weight(
        cls,
        w: torch.Tensor,
        bias: torch.Tensor | None,
        act_absmax: torch.Tensor | None,
        config: SVDQuantConfig,
    ) -> SVDQuantLinear:
        n, k = w.shape
        if act_absmax is None:
            smooth = torch.ones(k, device=w.device)
        else:
            smooth = smoothing_factor(act_absmax.to(w.device), w, config.alpha)
        l1, l2, residual = low_rank_split(w * smooth, config.rank, config.dtype)
        qweight, wscales = quantize_int4_groups(residual, config.group_size, config.dtype)
        layer = cls(
            k,
            n,
            rank=l1.shape[1],
            group_size=config.group_size,
            dtype=config.dtype,
            bias=bias is not None,
            device=w.device,
        )
        layer.qweight.copy_(qweight)
        layer.wscales.copy_(wscales)
        layer.smooth.copy_(smooth)
        layer.l1.copy_(l1)
        layer.l2.copy_(l2)
        if bias is not None:
            layer.bias.copy_(bias.detach())
        return layer

    def _use_triton(self, x: torch.Tensor) -> bool:
        if self.backend == "auto":
            return x.is_cuda
        return self.backend == "triton"

    def forward_2d(self, x: torch.Tensor) -> torch.Tensor:
        """(M, K) float -> (M, N) in x's dtype."""
        inv_smooth = self._inv_smooth_k()
        if self._use_triton(x):
            from kernels.act_quant_lowrank import act_quant_lowrank
            from kernels.w4a4_gemm import w4a4_gemm

            qx, ascales, lr = act_quant_lowrank(x, inv_smooth, self.l1, self.group_size)
            return w4a4_gemm(
                qx, ascales, self.qweight, self.wscales, lr, self.l2, self.bias, x.dtype
            )
        if self.backend in ("auto", "dequant"):
            return w4a4_dequant_forward(
                x, inv_smooth, self.l1, self.l2, self._dequantized(), self.bias, self.group_size
            )
        qx, ascales, lr = act_quant_lowrank_ref(x, inv_smooth, self.l1, self.group_size)
        return w4a4_gemm_ref(
            qx, ascales, self.qweight, self.wscales, lr, self.l2, self.bias, x.dtype
        )

    def _inv_smooth_k(self) -> torch.Tensor:
        """float32 (K,) 1 / λ along the GEMM's K."""
        return self.smooth.reciprocal()

    def lora_down_to_l1(self, down: torch.Tensor) -> torch.Tensor:
        """A LoRA down weight A (r, K) -> float32 columns (K, r) of l1: λ ⊙ A^T."""
        return down.flatten(1).float().T.to(self.smooth.device) * self.smooth[:, None]

    def weight_numel(self) -> int:
        """Elements of the float weight this layer replaces (N * K)."""
        return self.out_features * self.in_features

    def _dequantized(self) -> torch.Tensor:
        """float32 (N, Kp) residual weight, cached until qweight or wscales change."""
        key = tuple((t.data_ptr(), t._version, t.device) for t in (self.qweight, self.wscales))
        if self._w_dq is None or self._w_dq[0] != key:
            kp = self.qweight.shape[1] * 2
            self._w_dq = (key, dequantize_int4_groups(self.qweight, self.wscales, kp))
        return self._w_dq[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., K) float -> (..., N) in x's dtype."""
        y = self.forward_2d(x.reshape(-1, self.in_features))  # (M, N)
        return y.view(*x.shape[:-1], self.out_features)

    @torch.no_grad()
    def dequantize(self) -> torch.Tensor:
        """The weight this layer applies, in the original space: float32 (N, K).

        (deq(W_res) + (L1 L2)^T) / λ, including LoRA adapters. Activation quantization is not
        part of it, so ``x @ W.T + b`` differs from ``forward(x)`` by the activation error.
        """
        w_res = dequantize_int4_groups(self.qweight, self.wscales, self.in_features)  # (N, K)
        w_s = w_res + (self.l1.float() @ self.l2.float()).T
        return w_s / self.smooth

    def quantized_bytes(self) -> int:
        """Bytes of everything the layer stores (weights, scales, smoothing, factors, bias)."""
        return sum(t.numel() * t.element_size() for t in self.buffers())

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"rank={self.rank}, group_size={self.group_size}, dtype={self.wscales.dtype}, "
            f"bias={self.bias is not None}, backend={self.backend}"
        )


class SVDQuantConv1x1(SVDQuantLinear):
    """A 1x1, stride-1, ungrouped nn.Conv2d as an `SVDQuantLinear` over pixels.

    Input (B, C_in, H, W) -> output (B, C_out, H, W); every pixel is a token.
    """

    @classmethod
    @torch.no_grad()
    def from_conv(
        cls, conv: nn.Conv2d, act_absmax: torch.Tensor | None, config: SVDQuantConfig
    ) -> SVDQuantConv1x1:
        """Quantize a 1x1 convolution (see `is_pointwise_conv`); arguments as `from_float`."""
        if not is_pointwise_conv(conv):
            raise ValueError(f"not a 1x1 stride-1 ungrouped unpadded conv: {conv}")
        w = conv.weight.detach().float().flatten(1)  # (C_out, C_in)
        return cls._from_weight(w, conv.bias, act_absmax, config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, H, W) -> (B, C_out, H, W) in x's dtype."""
        b, c, h, w = x.shape
        tokens = x.permute(0, 2, 3, 1).reshape(b * h * w, c)  # (B*H*W, C_in)
        y = self.forward_2d(tokens)  # (B*H*W, C_out)
        return y.view(b, h, w, self.out_features).permute(0, 3, 1, 2)


def is_pointwise_conv(module: nn.Module) -> bool:
    """True for an nn.Conv2d that is a per-pixel linear map (1x1, stride 1, no pad, groups 1)."""
    return (
        isinstance(module, nn.Conv2d)
        and module.kernel_size == (1, 1)
        and module.stride == (1, 1)
        and module.padding in ((0, 0), "valid")
        and module.groups == 1
        and module.padding_mode == "zeros"
    )
