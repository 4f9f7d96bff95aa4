"""The stroke grid a capture paints: shapes that span the brush, laid out on sheets of paper.

Every stroke gets a cell of its own on a sheet. A cell is the stroke's crop (`CropLayout`, the
image the dataset keeps) plus a gap, so no two strokes' crops overlap. All strokes run towards
+x (angle 0) from a start point at the same place in their cell, like the shared FRIDA file.
When a sheet is full the next stroke starts a new sheet (the person changes the paper).

Shapes are drawn by Latin-hypercube sampling of (length, bend, pressure): each of the three is
stratified into n equal bins, one sample per bin, bins paired at random. Bend is drawn as a
fraction of the largest bend the brush allows at that length (``|bend| <= L/3 tan(max angle)``,
see `sim.brush.Brush`), so short strokes never ask for a hook the brush cannot make.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from sim.brush import Brush
from sim.canvas import Canvas
from sim.stroke_model import EDGE_CUTOFF
from sim.strokes import Strokes


@dataclass(frozen=True)
class CropLayout:
    """The image kept of each stroke: a fixed-size crop of its local frame.

    Attributes:
        meters_per_pixel: crop resolution (m).
        width_px, height_px: crop size (px).
        start_xy_px: pixel (x, y) of the stroke's start in the crop (pixel edges at integers);
            the stroke runs towards +x.
    """

    meters_per_pixel: float
    width_px: int
    height_px: int
    start_xy_px: tuple[float, float]

    @classmethod
    def for_brush(
        cls, brush: Brush, meters_per_pixel: float = 0.000216, pad_m: float = 0.002
    ) -> CropLayout:
        """The smallest crop holding any stroke `brush` can make, grown by `pad_m` each side.

        Args:
            brush: the brush's ranges (longest stroke, largest bend, widest mark).
            meters_per_pixel: crop resolution (m); the default is the shared FRIDA file's.
            pad_m: room around the mark (m) for the arm's placement error and the fit's window.
        """
        if not (meters_per_pixel > 0 and pad_m >= 0):
            raise ValueError("CropLayout needs meters_per_pixel > 0 and pad_m >= 0")
        reach = brush.max_width_m / 2 + EDGE_CUTOFF * brush.softness_m + pad_m  # m, mark edge
        half_y = 0.75 * brush.max_bend_m + reach  # m, parabola height 3/4 bend
        sx = math.ceil(reach / meters_per_pixel)
        sy = math.ceil(half_y / meters_per_pixel)
        w = sx + math.ceil((brush.max_length_m + reach) / meters_per_pixel)
        return cls(float(meters_per_pixel), w, 2 * sy, (float(sx), float(sy)))

    @property
    def extent_m(self) -> tuple[float, float, float, float]:
        """(x_min, x_max, y_min, y_max) of the crop relative to the stroke's start (m)."""
        m, (sx, sy) = self.meters_per_pixel, self.start_xy_px
        return (-sx * m, (self.width_px - sx) * m, -sy * m, (self.height_px - sy) * m)

    def to_dict(self) -> dict:
        return {
            "meters_per_pixel": self.meters_per_pixel,
            "width_px": self.width_px,
            "height_px": self.height_px,
            "start_xy_px": list(self.start_xy_px),
        }


@dataclass
class StrokeSheet:
    """One sheet of paper's strokes.

    Attributes:
        index: sheet number (0 = the first sheet).
        stroke_ids: (k,) int, each stroke's number in the whole capture (its dataset row).
        strokes: the k strokes (start in canvas meters, angle 0, the capture's paint colour).
    """

    index: int
    stroke_ids: np.ndarray
    strokes: Strokes

    def __len__(self) -> int:
        return len(self.stroke_ids)

    @property
    def shapes(self) -> np.ndarray:
        """(k, 3) float32 (length m, bend m, pressure 0..1)."""
        s = self.strokes
        return torch.stack([s.length, s.bend, s.pressure], 1).numpy().astype(np.float32)


def sample_stroke_shapes(brush: Brush, n: int, seed: int = 0) -> np.ndarray:
    """n shapes spanning the brush's ranges by Latin-hypercube sampling.

    Returns:
        (n, 3) float32 (length m in [min, max] length, bend m within the brush's limit at that
        length, pressure in 0..1).
    """
    if n < 1:
        raise ValueError(f"need n >= 1 strokes, got {n}")
    rng = np.random.default_rng(seed)
    # (n, 3) in [0, 1): one sample in each of n bins per dimension, bins paired at random
    u = (np.stack([rng.permutation(n) for _ in range(3)], 1) + rng.random((n, 3))) / n
    length = brush.min_length_m + u[:, 0] * (brush.max_length_m - brush.min_length_m)
    steepest = math.tan(math.radians(brush.max_angle_deg))
    max_bend = np.minimum(length / 3 * steepest, brush.max_bend_m)  # (n,) m
    bend = (2 * u[:, 1] - 1) * max_bend
    return np.stack([length, bend, u[:, 2]], 1).astype(np.float32)


def grid_starts(canvas: Canvas, layout: CropLayout, margin_m: float, gap_m: float) -> np.ndarray:
    """Start points (C, 2) in canvas meters of every cell of one sheet, row by row.

    Cells are the crop plus `gap_m`, inside the canvas less `margin_m` on every side (tape,
    and the arm's workspace margin); the grid is centred on the canvas.
    """
    x0, x1, y0, y1 = layout.extent_m
    cell_w, cell_h = x1 - x0 + gap_m, y1 - y0 + gap_m
    cols = math.floor((canvas.width_m - 2 * margin_m + gap_m) / cell_w)
    rows = math.floor((canvas.height_m - 2 * margin_m + gap_m) / cell_h)
    if cols < 1 or rows < 1:
        raise ValueError(
            f"a {x1 - x0:.3f} x {y1 - y0:.3f} m stroke crop does not fit on a "
            f"{canvas.width_m} x {canvas.height_m} m canvas with {margin_m} m margins"
        )
    # top-left of the grid so that it is centred, then each cell's start point
    left = (canvas.width_m - (cols * cell_w - gap_m)) / 2
    top = (canvas.height_m - (rows * cell_h - gap_m)) / 2
    r, c = np.divmod(np.arange(rows * cols), cols)
    xs = left + c * cell_w - x0
    ys = top + r * cell_h - y0
    return np.stack([xs, ys], 1)


def plan_stroke_grid(
    brush: Brush,
    canvas: Canvas,
    n: int,
    seed: int = 0,
    layout: CropLayout | None = None,
    margin_m: float = 0.01,
    gap_m: float = 0.003,
    color: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> list[StrokeSheet]:
    """Plan n strokes spanning the brush's ranges, in cells on as many sheets as they need.

    Args:
        brush: the brush painted with (its ranges).
        canvas: the sheet's size (m).
        n: strokes in all.
        seed: seed of the shape sampling.
        layout: the crop kept of each stroke; default `CropLayout.for_brush(brush)`.
        margin_m: paper left bare along every edge (m); at least the arm's workspace margin.
        gap_m: room between neighbouring crops (m).
        color: sRGB paint colour of every stroke (black: the most contrast on white paper).
    Returns:
        The sheets in painting order; stroke ids run 0..n-1 over them.
    """
    layout = layout or CropLayout.for_brush(brush)
    starts = grid_starts(canvas, layout, margin_m, gap_m)  # (C, 2) m
    shapes = sample_stroke_shapes(brush, n, seed)  # (n, 3)
    per_sheet = len(starts)
    sheets = []
    for k, first in enumerate(range(0, n, per_sheet)):
        ids = np.arange(first, min(n, first + per_sheet))
        m = len(ids)
        shape = torch.from_numpy(shapes[ids])
        strokes = Strokes(
            position=torch.from_numpy(starts[:m].astype(np.float32)),
            angle=torch.zeros(m),
            length=shape[:, 0].clone(),
            bend=shape[:, 1].clone(),
            pressure=shape[:, 2].clone(),
            color=torch.tensor(color, dtype=torch.float32).expand(m, 3).clone(),
        )
        sheets.append(StrokeSheet(k, ids, strokes))
    return sheets
