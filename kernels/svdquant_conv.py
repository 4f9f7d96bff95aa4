"""`SVDQuantConv2d`: a k x k nn.Conv2d (3x3 resnet convs, down/upsamplers) as SVDQuant W4A4.

A convolution is a GEMM over im2col patches: y[p] = sum_taps W_t x[p + offset_t]. The trick
that keeps it cheap is the order of the patch dimension K: **tap-major**, K index
``t * Cp + c`` (tap t = i * kw + j, channel c, channels zero-padded to Cp, a multiple of the
group size). A quantization group is then ``group_size`` channels of one tap, that is of one
input pixel, so quantizing every patch row per group gives exactly the activations quantized
once per pixel per channel group. Hence two equal ways to compute the layer:

* implicit GEMM (CPU, "dequant" backend): smooth x, fake-quantize it per pixel and channel
  group, and run one ``F.conv2d`` with the dequantized residual weight; the low-rank branch is
  a k x k conv to R channels then a 1x1 conv (the shape of a conv LoRA). No 9x patch matrix.
* explicit im2col (the integer "reference" and the Triton kernels on GPU): unfold the patches
  in tap-major order and run the linear layer's kernels on (B*L, K) rows. An implicit-GEMM
  Triton kernel that reads int4 activations per tap is the next step; the patch matrix is 9x
  the input activations until then.

Smoothing is one λ per input channel shared by its k*k taps (calibration records per-channel
max |x|, as for 1x1 convs); the weight side of λ is the channel's max |W| over outputs and taps.
Stored (T = kh*kw, C in, N out, K = T*Cp): qweight int8 (N, K/2), wscales (N, K/gs),
smooth float32 (C,), l1 (K, R), l2 (R, N), bias (N,).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from kernels.config import SVDQuantConfig
from kernels.quant_ref import (
    fake_quant_act_groups,
    low_rank_split,
    padded_k,
    quantize_int4_groups,
    smoothing_factor,
)
from kernels.svdquant_linear import SVDQuantLinear


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def is_quantizable_conv(module: nn.Module) -> bool:
    """True for an ungrouped, zero-padded nn.Conv2d with a kernel larger than 1x1."""
    return (
        isinstance(module, nn.Conv2d)
        and module.kernel_size != (1, 1)
        and module.groups == 1
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    )


class SVDQuantConv2d(SVDQuantLinear):
    """W4A4 k x k convolution with a 16-bit low-rank branch (see the module docstring).

    Args:
        in_channels: C. out_channels: N. kernel_size, stride, padding, dilation: as nn.Conv2d.
        rank: R >= 0. group_size: channels per scale (power of two >= 32).
        dtype: dtype of wscales, l1, l2 and bias. bias: whether the layer has one.
        device: where to allocate the (uninitialised) buffers.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        *,
        rank: int,
        group_size: int = 64,
        dtype: torch.dtype = torch.bfloat16,
        bias: bool = True,
        device: torch.device | str | None = None,
    ) -> None:
        kh, kw = _pair(kernel_size)
        cp = padded_k(in_channels, group_size)
        k = kh * kw * cp  # tap-major patch width, a multiple of gs
        super().__init__(
            k, out_channels, rank=rank, group_size=group_size, dtype=dtype, bias=bias, device=device
        )
        self.in_channels, self.padded_channels, self.taps = in_channels, cp, kh * kw
        self.kernel_size = (kh, kw)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self.smooth = torch.ones(in_channels, dtype=torch.float32, device=device)  # (C,)

    @classmethod
    @torch.no_grad()
    def from_conv(
        cls, conv: nn.Conv2d, act_absmax: torch.Tensor | None, config: SVDQuantConfig
    ) -> SVDQuantConv2d:
        """Quantize a convolution (see `is_quantizable_conv`).

        Args:
            conv: the layer; its weight (N, C, kh, kw) is read in float32 and left untouched.
            act_absmax: float (C,) per-input-channel max |x| from calibration, or None (λ = 1).
            config: rank, group size, α and storage dtype.
        """
        if not is_quantizable_conv(conv):
            raise ValueError(f"not an ungrouped zero-padded k x k conv: {conv}")
        w = conv.weight.detach().float()  # (N, C, kh, kw)
        n, c, kh, kw = w.shape
        per_channel = w.permute(0, 2, 3, 1).reshape(n * kh * kw, c)  # rows: (out, tap)
        if act_absmax is None:
            smooth = torch.ones(c, device=w.device)
        else:
            smooth = smoothing_factor(act_absmax.to(w.device), per_channel, config.alpha)
        layer = cls(
            c, n, (kh, kw), conv.stride, conv.padding, conv.dilation, rank=0,
            group_size=config.group_size, dtype=config.dtype, bias=conv.bias is not None,
            device=w.device,
        )  # fmt: skip
        w_s = layer._tap_major(w * smooth[None, :, None, None])  # (N, K)
        l1, l2, residual = low_rank_split(w_s, config.rank, config.dtype)
        qweight, wscales = quantize_int4_groups(residual, config.group_size, config.dtype)
        layer.qweight.copy_(qweight)
        layer.wscales.copy_(wscales)
        layer.smooth.copy_(smooth)
        layer.l1, layer.l2 = l1.contiguous(), l2.contiguous()
        layer.base_rank = l1.shape[1]
        if conv.bias is not None:
            layer.bias.copy_(conv.bias.detach())
        return layer

    def _tap_major(self, w: torch.Tensor) -> torch.Tensor:
        """(M, C, kh, kw) -> (M, T * Cp): tap-major, channels zero-padded."""
        m = w.shape[0]
        w = w.permute(0, 2, 3, 1)  # (M, kh, kw, C)
        w = F.pad(w, (0, self.padded_channels - self.in_channels))
        return w.reshape(m, self.in_features)

    def _from_tap_major(self, w: torch.Tensor) -> torch.Tensor:
        """(M, T * Cp) -> (M, Cp, kh, kw), the layout F.conv2d wants (padding kept)."""
        kh, kw = self.kernel_size
        return w.view(w.shape[0], kh, kw, self.padded_channels).permute(0, 3, 1, 2)

    def _inv_smooth_k(self) -> torch.Tensor:
        """1 / λ along the tap-major K (padding channels: 1)."""
        inv = F.pad(self.smooth.reciprocal(), (0, self.padded_channels - self.in_channels), value=1)
        return inv.repeat(self.taps)  # (K,)

    def lora_down_to_l1(self, down: torch.Tensor) -> torch.Tensor:
        """A LoRA down weight (r, C, kh, kw) -> float32 columns (K, r) of l1 (smoothed space)."""
        down = down.float().view(-1, self.in_channels, *self.kernel_size)
        scaled = down.to(self.smooth.device) * self.smooth[None, :, None, None]
        return self._tap_major(scaled).T

    def _conv_args(self) -> dict:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation}

    def _patches(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """(B, C, H, W) -> tap-major patch rows (B*L, K) and the output size (H', W')."""
        b, c, h, w = x.shape
        kh, kw = self.kernel_size
        cols = F.unfold(x, self.kernel_size, **self._conv_args())  # (B, C*T, L), channel-major
        cols = cols.view(b, c, self.taps, -1).permute(0, 3, 2, 1)  # (B, L, T, C)
        cols = F.pad(cols, (0, self.padded_channels - c))  # (B, L, T, Cp)
        ph, pw = self.padding
        sh, sw = self.stride
        dh, dw = self.dilation
        out_h = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
        out_w = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
        return cols.reshape(-1, self.in_features), (out_h, out_w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, N, H', W') in x's dtype."""
        if self._use_triton(x) or self.backend == "reference":
            rows, (oh, ow) = self._patches(x)
            y = self.forward_2d(rows)  # (B*L, N)
            return y.view(x.shape[0], oh, ow, self.out_features).permute(0, 3, 1, 2)
        return self._implicit_forward(x)

    def _implicit_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The dequant backend: quantize activations once per pixel, then F.conv2d."""
        b, c, h, w = x.shape
        xs = x.float() * self.smooth.reciprocal()[None, :, None, None]  # (B, C, H, W)
        xs = F.pad(xs, (0, 0, 0, 0, 0, self.padded_channels - c))  # (B, Cp, H, W)
        pixels = xs.permute(0, 2, 3, 1).reshape(-1, self.padded_channels)  # (B*H*W, Cp)
        qx = fake_quant_act_groups(pixels, self.group_size)  # per pixel and channel group
        qx = qx.view(b, h, w, -1).permute(0, 3, 1, 2)  # (B, Cp, H, W)
        y = F.conv2d(qx, self._dequantized_conv(), None, **self._conv_args())  # (B, N, H', W')
        if self.l2.shape[0]:
            l1 = self._from_tap_major(self.l1.float().T)  # (R, Cp, kh, kw)
            lr = F.conv2d(xs.to(self.l1.dtype).float(), l1, None, **self._conv_args())
            y = y + torch.einsum("brhw,rn->bnhw", lr.to(self.l2.dtype).float(), self.l2.float())
        if self.bias is not None:
            y = y + self.bias.float()[None, :, None, None]
        return y.to(x.dtype)

    def _dequantized_conv(self) -> torch.Tensor:
        """float32 (N, Cp, kh, kw) residual weight, cached with the dequantized matrix."""
        w = self._dequantized()  # (N, K)
        cached = getattr(self, "_w_conv", None)
        if cached is None or cached[0] is not w:
            self._w_conv = (w, self._from_tap_major(w).contiguous())
        return self._w_conv[1]

    @torch.no_grad()
    def dequantize(self) -> torch.Tensor:
        """The weight this layer applies, in the original space: float32 (N, C, kh, kw)."""
        from kernels.quant_ref import dequantize_int4_groups

        w_res = dequantize_int4_groups(self.qweight, self.wscales, self.in_features)  # (N, K)
        w_s = self._from_tap_major(w_res + (self.l1.float() @ self.l2.float()).T)
        return w_s[:, : self.in_channels] / self.smooth[None, :, None, None]

    def weight_numel(self) -> int:
        """Elements of the float weight this layer replaces (N * C * kh * kw)."""
        return self.out_features * self.in_channels * self.taps

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_features}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, rank={self.rank}, "
            f"group_size={self.group_size}, dtype={self.wscales.dtype}, backend={self.backend}"
        )
