"""The straightforward renderer, kept as the reference the fast `Renderer` is checked against.

The common approach in robot-painting code: for every stroke, warp its local opacity map over
the *whole* canvas and composite it on top, one stroke at a time. Correct and simple, but each
stroke costs a full-canvas pass forward and backward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sim.brush_path import local_to_canvas  # noqa: F401  (re-exported for readers)
from sim.canvas import Canvas
from sim.stroke_model import StrokeModel
from sim.strokes import Strokes


def canvas_to_local(xy: torch.Tensor, position: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Canvas meters (N, ..., 2) -> each stroke's local frame, for starts (N, 2), angles (N,)."""
    extra = (1,) * (xy.dim() - 2)
    c = torch.cos(angle).view(-1, *extra)
    s = torch.sin(angle).view(-1, *extra)
    dx = xy[..., 0] - position[:, 0].view(-1, *extra)
    dy = xy[..., 1] - position[:, 1].view(-1, *extra)
    return torch.stack([dx * c + dy * s, -dx * s + dy * c], dim=-1)


class ReferenceRenderer:
    """Per-stroke, full-canvas renderer with the same maths as `Renderer` (slow; for checks)."""

    def __init__(self, canvas: Canvas, stroke_model: StrokeModel, oversample: float = 1.0):
        self.canvas = canvas
        self.stroke_model = stroke_model
        self.frame = stroke_model.frame.at(canvas.m_per_px / oversample)

    def render(self, strokes: Strokes, background: torch.Tensor | None = None) -> torch.Tensor:
        """Composite `strokes` in order over `background` (3, H, W); returns (3, H, W)."""
        h, w = self.canvas.size_px
        dtype = strokes.position.dtype
        image = (
            torch.ones(3, h, w, dtype=dtype, device=strokes.device)
            if background is None
            else background
        )
        local = self.stroke_model(strokes.length, strokes.bend, strokes.pressure, self.frame)
        centers = self.canvas.pixel_centers_m(device=strokes.device, dtype=dtype)  # (H, W, 2)
        for i in range(len(strokes)):
            xy = canvas_to_local(
                centers[None], strokes.position[i : i + 1], strokes.angle[i : i + 1]
            )
            grid = self.frame.normalise(xy)  # (1, H, W, 2)
            alpha = F.grid_sample(local[i : i + 1, None], grid, align_corners=False)[0]  # (1, H, W)
            image = image * (1 - alpha) + alpha * strokes.color[i].view(3, 1, 1)
        return image
