"""Painting a source image in the simulator within a robot profile's limits.

`Painter(profile).paint(image, seed)` plans the profile's stroke budget towards the image (or,
in the 'drawing' style, towards its line drawing) and returns the strokes in painting order.
The full painting is the differentiable renderer's picture of those strokes on white paper, so
any partial painting is an exact re-render of a subset of them: a removed stroke is absent.
With `physical=True` both are painted by `sim.PhysicalBrush` instead (seeded; the kept strokes
are repainted from a fresh brush, so the paint load differs a little from the full painting,
as it would on a real robot).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import numpy as np
import torch

from cofrida.data.profiles import RobotProfile
from planner import Planner
from planner.images import resize
from planner.objectives import mse
from sim import BrushPath, Renderer, Strokes
from sim.physical_brush import PhysicalBrush


@dataclass
class Painting:
    """One painted source.

    Attributes:
        strokes: N strokes in painting order (snapped to the palette).
        image: (3, H, W) float in 0..1, the full painting on white paper.
        target: (3, H, W) float in 0..1, what the planner painted towards.
        loss: mean squared sRGB error of `image` against `target`.
        seconds: wall time of planning and rendering.
    """

    strokes: Strokes
    image: torch.Tensor
    target: torch.Tensor
    loss: float
    seconds: float


def line_drawing(image: np.ndarray, threshold: float = 0.12) -> torch.Tensor:
    """The outlines of a flat-coloured image as black lines on white, (3, H, W) in 0..1.

    A pixel is on a line when its colour differs from its right or lower neighbour by more than
    `threshold` (max sRGB channel difference, 0..1); lines are thickened by one pixel.

    Args:
        image: (H, W, 3) uint8 sRGB.
    """
    x = torch.from_numpy(np.ascontiguousarray(image)).float().permute(2, 0, 1) / 255  # (3, H, W)
    edge = torch.zeros(x.shape[1:], dtype=torch.bool)
    edge[:, :-1] |= (x[:, :, 1:] - x[:, :, :-1]).abs().amax(0) > threshold
    edge[:-1, :] |= (x[:, 1:, :] - x[:, :-1, :]).abs().amax(0) > threshold
    thick = torch.nn.functional.max_pool2d(edge[None, None].float(), 3, 1, 1)[0, 0] > 0
    return (~thick).float().expand(3, -1, -1).clone()


def compact_strokes_json(strokes: Strokes) -> str:
    """`Strokes` JSON with each float32 written in its shortest exact form (about half the
    bytes of `Strokes.to_json`); `Strokes.from_json` reads back the same float32 values."""

    def short(values):
        if isinstance(values, list):
            return [short(v) for v in values]
        return float(np.format_float_positional(np.float32(values), unique=True, trim="0"))

    d = strokes.to_dict()
    for name, values in d.items():
        if name != "palette_index":
            d[name] = short(values)
    return json.dumps(d, separators=(",", ":"))


class Painter:
    """Paints source images for one robot profile.

    Args:
        profile: the robot set-up (brush, palette, budget, canvas, fast planner schedule).
        physical: paint with the physical brush model instead of the differentiable renderer.
    """

    def __init__(self, profile: RobotProfile, physical: bool = False) -> None:
        self.profile = profile
        self.physical = physical
        self.canvas = profile.canvas()
        self.brush = profile.brush_preset()
        self.palette = profile.palette_preset()
        self.stroke_model, self.stroke_model_kind = profile.stroke_model()
        self.renderer = Renderer(self.canvas, self.stroke_model)

    def target(self, image: np.ndarray) -> torch.Tensor:
        """What the planner paints towards: the image at the canvas size, or its line drawing
        in the 'drawing' style. (3, H, W) in 0..1."""
        if self.profile.style == "drawing":
            target = line_drawing(image)
        else:
            target = torch.from_numpy(np.ascontiguousarray(image)).float().permute(2, 0, 1) / 255
        if tuple(target.shape[1:]) != self.canvas.size_px:
            target = resize(target, self.canvas)
        return target

    def paint(self, image: np.ndarray, seed: int) -> Painting:
        """Plan and paint `image` ((H, W, 3) uint8) with the planner seeded by `seed`."""
        import time

        start = time.perf_counter()
        target = self.target(image)
        config = replace(self.profile.planner, seed=int(seed))
        planner = Planner(self.canvas, self.brush, self.palette, config, self.stroke_model)
        planner.renderer = self.renderer  # share the full-size renderer (same canvas + model)
        plan, _ = planner.plan(None, target, strokes=self.profile.strokes, keep_mask=_no_keep(self))
        strokes = plan.ordered_strokes()
        painted = self.render(strokes, None, seed)
        return Painting(strokes, painted, target, mse(painted, target), time.perf_counter() - start)

    def render(self, strokes: Strokes, kept: np.ndarray | None, seed: int) -> torch.Tensor:
        """The strokes (only `kept` indices, in order, when given) on white paper, (3, H, W).

        Args:
            strokes: N strokes in painting order.
            kept: sorted int indices into `strokes`, or None for all of them.
            seed: the physical brush's seed (ignored by the differentiable renderer).
        """
        subset = None if kept is None else torch.as_tensor(np.asarray(kept, dtype=np.int64))
        with torch.no_grad():
            if not self.physical:
                return self.renderer.render(strokes, None, subset=subset)
            chosen = strokes if subset is None else strokes[subset]
            white = torch.ones(3, *self.canvas.size_px)
            if len(chosen) == 0:
                return white
            brush = PhysicalBrush(self.brush, seed=int(seed))
            return brush.paint_many(white, BrushPath.from_strokes(chosen), self.canvas)


def _no_keep(painter: Painter) -> torch.Tensor:
    """An all-False keep mask: data paintings start on blank paper and may paint anywhere."""
    return torch.zeros(painter.canvas.size_px, dtype=torch.bool)
