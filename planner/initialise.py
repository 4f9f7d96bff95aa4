"""Initial strokes: placed where the target differs from the canvas, coloured like the target
there, and laid along the target's edges.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from planner.config import PlannerConfig
from planner.copaint import color_difference
from planner.objectives import gradients, luminance
from sim import Brush, Canvas, Strokes


def need_map(canvas_image: torch.Tensor, target: torch.Tensor, keep: torch.Tensor | None):
    """Where paint is needed: CIE76 Delta-E (canvas, target) per pixel, 0 on protected pixels.
    (H, W) float."""
    need = color_difference(canvas_image, target)
    if keep is not None:
        need = need * (1 - keep.float())
    return need


def initial_strokes(
    n: int,
    canvas_image: torch.Tensor,
    target: torch.Tensor,
    canvas: Canvas,
    brush: Brush,
    config: PlannerConfig,
    keep: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Strokes:
    """N strokes centred on pixels drawn with probability proportional to the need map.

    Args:
        n: number of strokes.
        canvas_image, target: (3, H, W) in 0..1 at `canvas.size_px`.
        keep: optional (H, W) protection mask; strokes are not centred on protected pixels.
        generator: seeded generator; the same seed gives the same strokes.
    Returns:
        Strokes clamped to the brush and the canvas margin, colours sampled from the (blurred)
        target, angles along the target's local edge direction.
    """
    w = canvas.width_px
    g = generator
    need = need_map(canvas_image, target, keep).reshape(-1)  # (H*W,)
    weights = need.clamp(min=0) ** 1.5  # favour big differences
    if float(weights.sum()) <= 1e-8:  # nothing to do: spread strokes where allowed
        weights = torch.ones_like(need)
        if keep is not None:
            weights = weights * (1 - keep.float().reshape(-1)) + 1e-6
    pixel = torch.multinomial(weights, n, replacement=n > int((weights > 0).sum()), generator=g)
    row, col = pixel // w, pixel % w  # (n,)
    centre_px = torch.stack([col.float(), row.float()], -1) + torch.rand(n, 2, generator=g)
    centre = canvas.px_to_m(centre_px)  # (n, 2) m

    # Edge direction: perpendicular to the blurred luminance gradient (structure tensor).
    blur = F.avg_pool2d(target[None], 5, stride=1, padding=2, count_include_pad=False)[0]
    grad = gradients(luminance(blur))  # (2, H, W)
    jxx = F.avg_pool2d((grad[0] * grad[0])[None, None], 7, 1, 3)[0, 0]
    jyy = F.avg_pool2d((grad[1] * grad[1])[None, None], 7, 1, 3)[0, 0]
    jxy = F.avg_pool2d((grad[0] * grad[1])[None, None], 7, 1, 3)[0, 0]
    grad_angle = 0.5 * torch.atan2(2 * jxy, jxx - jyy)  # direction of strongest change
    angle = grad_angle[row, col] + math.pi / 2 + 0.3 * torch.randn(n, generator=g)
    flat = (jxx + jyy)[row, col] < 1e-6  # no structure: any direction
    angle = torch.where(flat, (torch.rand(n, generator=g) * 2 - 1) * math.pi, angle)

    lo, hi = config.init_length
    span = brush.max_length_m - brush.min_length_m
    length = brush.min_length_m + span * (lo + (hi - lo) * torch.rand(n, generator=g))
    bend = (torch.rand(n, generator=g) * 2 - 1) * 0.2 * brush.max_bend_m
    pressure = torch.full((n,), float(config.init_pressure))
    # The start sits half a chord back from the centre so the stroke covers the chosen pixel.
    direction = torch.stack([torch.cos(angle), torch.sin(angle)], -1)
    position = centre - 0.5 * length[:, None] * direction
    color = blur[:, row, col].T.contiguous()  # (n, 3)
    strokes = Strokes(position, angle, length, bend, pressure, color)
    return strokes.clamp(brush, canvas, config.margin_m)
