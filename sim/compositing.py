"""Ordered over-compositing of stacked stroke layers, with a hand-written backward.

For K layers over a background, per pixel and channel,

    out = bg * A_bg + sum_k a_k c_k A_k,   A_k = prod_{j>k} (1 - a_j),   A_bg = prod_j (1 - a_j)

where layer 0 is painted first. The backward uses

    d out / d a_k = c_k A_k - (bg A_bg + sum_{i<k} a_i c_i A_i) / (1 - a_k)

so it needs one running sum over K instead of autograd's graph of cumsum, flip, exp and log.
"""

from __future__ import annotations

import torch

MAX_ALPHA = 1 - 1e-6  # keeps log(1 - a) and 1 / (1 - a) finite; changes results by < 1e-6


def _running_sum(x: torch.Tensor) -> torch.Tensor:
    """Inclusive cumulative sum along dim 0 (layers). K in-place adds over contiguous slabs:
    on CPU this is ~10x faster than `torch.cumsum(x, 0)`, which does not vectorise that case.
    K is the stroke depth of the busiest tile (tens), not the stroke count."""
    out = x.clone()
    for k in range(1, out.shape[0]):
        out[k] += out[k - 1]
    return out


def _transmittance(alpha: torch.Tensor):
    """(K, U, T, T) opacities -> (A_k, A_bg): light passing every layer above k, and all."""
    log_t = torch.log1p(-alpha)
    prefix = _running_sum(log_t)
    total = prefix[-1]
    return torch.exp(total - prefix), torch.exp(total)


class _Composite(torch.autograd.Function):
    @staticmethod
    def forward(ctx, alpha, rgb, bg):
        alpha = alpha.clamp(max=MAX_ALPHA)
        above, through = _transmittance(alpha)
        out = torch.einsum("kuyx,kuc->ucyx", alpha * above, rgb) + bg * through[:, None]
        ctx.save_for_backward(alpha, rgb, bg, above, through)
        return out, 1 - through

    @staticmethod
    def backward(ctx, grad_out, grad_cov):
        alpha, rgb, bg, above, through = ctx.saved_tensors
        weight = alpha * above  # (K, U, T, T)
        g_color = torch.einsum("ucyx,kuc->kuyx", grad_out, rgb)  # g . c_k per pixel
        g_bg = (grad_out * bg).sum(1) * through  # (U, T, T)
        wg = weight * g_color
        below = _running_sum(wg) - wg  # sum_{i<k}
        grad_alpha = g_color * above - (below + g_bg) / (1 - alpha)
        if grad_cov is not None:  # coverage = 1 - A_bg; d/d a_k = A_bg / (1 - a_k)
            grad_alpha = grad_alpha + grad_cov * through / (1 - alpha)
        grad_rgb = torch.einsum("kuyx,ucyx->kuc", weight, grad_out)
        grad_bg = grad_out * through[:, None]
        return grad_alpha, grad_rgb, grad_bg


def composite(alpha: torch.Tensor, rgb: torch.Tensor, bg: torch.Tensor):
    """Composite K layers over backgrounds, layer 0 first.

    Args:
        alpha: (K, U, T, T) opacity in 0..1 of layer k on tile u.
        rgb: (K, U, 3) colour of layer k on tile u.
        bg: (U, 3, T, T) background tiles.
    Returns:
        (U, 3, T, T) composited tiles and (U, T, T) coverage 1 - prod(1 - a).
    """
    return _Composite.apply(alpha, rgb, bg)
