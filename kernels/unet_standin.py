"""A plain-torch stand-in with the layer shapes of a diffusers SDXL UNet, for tests and benches.

Not a diffusion model: it has the module kinds `quantize_` meets in ``UNet2DConditionModel``
(attention projections, GEGLU feed-forward, time-embedding linears, 1x1 shortcut convs, 3x3
convs, GroupNorm) at the real widths (320 / 640 / 1280, text context 2048, GEGLU 1280 -> 2 x 5120),
so storage ratios and per-layer errors are representative, without needing diffusers.
Attention is at the 640 and 1280 levels only, as in SDXL.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention with diffusers' projection names (to_q, to_k, to_v, to_out.0)."""

    def __init__(self, dim: int, context_dim: int | None = None, head_dim: int = 64) -> None:
        super().__init__()
        self.heads = dim // head_dim
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim or dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim or dim, dim, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        b, t, c = x.shape
        ctx = x if context is None else context
        q, k, v = self.to_q(x), self.to_k(ctx), self.to_v(ctx)  # (B, T|S, C)
        q, k, v = (z.view(b, -1, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        o = F.scaled_dot_product_attention(q, k, v)  # (B, h, T, C/h)
        return self.to_out[0](o.transpose(1, 2).reshape(b, t, c))


class TransformerBlock(nn.Module):
    """Linear proj_in, self-attention, cross-attention, GEGLU feed-forward, proj_out."""

    def __init__(self, dim: int, context_dim: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(32, dim)
        self.proj_in = nn.Linear(dim, dim)
        self.norm1, self.norm2, self.norm3 = (nn.LayerNorm(dim) for _ in range(3))
        self.attn1 = Attention(dim)
        self.attn2 = Attention(dim, context_dim)
        self.ff_proj = nn.Linear(dim, 8 * dim)  # GEGLU: value and gate, 4 * dim each
        self.ff_out = nn.Linear(4 * dim, dim)
        self.proj_out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = self.proj_in(self.norm(x).permute(0, 2, 3, 1).reshape(b, h * w, c))  # (B, HW, C)
        t = t + self.attn1(self.norm1(t))
        t = t + self.attn2(self.norm2(t), context)
        value, gate = self.ff_proj(self.norm3(t)).chunk(2, dim=-1)  # (B, HW, 4C) each
        t = t + self.ff_out(value * F.gelu(gate))
        t = self.proj_out(t).view(b, h, w, c).permute(0, 3, 1, 2)  # (B, C, H, W)
        return x + t


class ResnetBlock(nn.Module):
    """GroupNorm-SiLU-conv3x3 twice, time embedding added, 1x1 conv_shortcut if widths differ."""

    def __init__(self, c_in: int, c_out: int, temb_dim: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.GroupNorm(32, c_in), nn.GroupNorm(32, c_out)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb_dim, c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + (x if self.conv_shortcut is None else self.conv_shortcut(x))


class UNetStandIn(nn.Module):
    """Down path, middle, up path with skip concatenation; one block per level.

    Args:
        channels: widths per level (SDXL: 320, 640, 1280).
        attention_levels: levels with a transformer block (SDXL: 1 and 2).
        context_dim: text-embedding width (SDXL: 2048).
        in_channels: latent channels.

    Forward: sample (B, in_channels, H, W) with H, W divisible by 2^(levels-1), timestep (B,),
    encoder_hidden_states (B, S, context_dim) -> (B, in_channels, H, W).
    """

    def __init__(
        self,
        channels: tuple[int, ...] = (320, 640, 1280),
        attention_levels: tuple[int, ...] = (1, 2),
        context_dim: int = 2048,
        in_channels: int = 4,
    ) -> None:
        super().__init__()
        c0, temb = channels[0], 4 * channels[0]
        self.base = c0
        self.time_linear_1, self.time_linear_2 = nn.Linear(c0, temb), nn.Linear(temb, temb)
        self.conv_in = nn.Conv2d(in_channels, c0, 3, padding=1)
        self.down, self.down_attn, self.up, self.up_attn = (nn.ModuleList() for _ in range(4))
        prev = c0
        for i, c in enumerate(channels):
            self.down.append(ResnetBlock(prev, c, temb))
            self.down_attn.append(
                TransformerBlock(c, context_dim) if i in attention_levels else None
            )
            prev = c
        self.mid = ResnetBlock(prev, prev, temb)
        self.mid_attn = TransformerBlock(prev, context_dim)
        for i, c in reversed(list(enumerate(channels))):
            self.up.append(ResnetBlock(prev + c, c, temb))  # skip concatenation: 1x1 shortcut
            self.up_attn.append(TransformerBlock(c, context_dim) if i in attention_levels else None)
            prev = c
        self.norm_out = nn.GroupNorm(32, prev)
        self.conv_out = nn.Conv2d(prev, in_channels, 3, padding=1)

    def _time_embedding(self, timestep: torch.Tensor) -> torch.Tensor:
        half = self.base // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=timestep.device) / half)
        args = timestep.float()[:, None] * freqs[None]  # (B, C0/2)
        emb = torch.cat((args.cos(), args.sin()), dim=-1)  # (B, C0)
        return self.time_linear_2(F.silu(self.time_linear_1(emb)))  # (B, 4*C0)

    def forward(
        self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor
    ) -> torch.Tensor:
        temb = self._time_embedding(timestep)
        h = self.conv_in(sample)
        skips = []
        for i, (block, attn) in enumerate(zip(self.down, self.down_attn, strict=True)):
            h = block(h, temb)
            h = h if attn is None else attn(h, encoder_hidden_states)
            skips.append(h)
            if i < len(self.down) - 1:
                h = F.avg_pool2d(h, 2)
        h = self.mid_attn(self.mid(h, temb), encoder_hidden_states)
        for block, attn in zip(self.up, self.up_attn, strict=True):
            skip = skips.pop()
            if h.shape[-1] != skip.shape[-1]:
                h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = block(torch.cat((h, skip), dim=1), temb)
            h = h if attn is None else attn(h, encoder_hidden_states)
        return self.conv_out(F.silu(self.norm_out(h)))
