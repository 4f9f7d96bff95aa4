"""Colour calibration: a 3x4 matrix that maps captured colours to the sim's colours.

A chart of swatches (the palette's paints plus white, greys, black and a few saturated colours
to condition the fit) lies on the canvas: printed, or painted by the arm. The camera captures
it, the canvas calibration rectifies it, each swatch's median colour is measured, and the
matrix M (3x4) is the least-squares fit, in linear RGB, of reference = M @ [measured, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sim.canvas import Canvas
from sim.palette import Palette, delta_e, linear_to_srgb, srgb_to_lab, srgb_to_linear

_EXTRA = [
    (1.0, 1.0, 1.0),
    (0.75, 0.75, 0.75),
    (0.5, 0.5, 0.5),
    (0.25, 0.25, 0.25),
    (0.0, 0.0, 0.0),
    (0.9, 0.2, 0.2),
    (0.2, 0.7, 0.3),
    (0.2, 0.3, 0.85),
    (0.95, 0.85, 0.2),
]


def chart_colors(palette: Palette | None = None) -> np.ndarray:
    """(N, 3) sRGB swatch colours: the palette's paints (if given) then neutrals and primaries."""
    colors = [] if palette is None else [tuple(c) for c in palette.colors.tolist()]
    return np.array(colors + _EXTRA, dtype=np.float64)


def _grid(n: int, canvas: Canvas) -> tuple[int, int]:
    cols = int(np.ceil(np.sqrt(n * canvas.width_m / canvas.height_m)))
    return cols, int(np.ceil(n / cols))


def _cells(n: int, canvas: Canvas):
    """Swatch cells in canvas px: yields (r0, r1, c0, c1) of each swatch (80% of its cell)."""
    cols, rows = _grid(n, canvas)
    h, w = canvas.size_px
    ch, cw = h / rows, w / cols
    for k in range(n):
        r, c = divmod(k, cols)
        yield (
            round((r + 0.1) * ch),
            round((r + 0.9) * ch),
            round((c + 0.1) * cw),
            round((c + 0.9) * cw),
        )


def chart_image(canvas: Canvas, colors: np.ndarray) -> torch.Tensor:
    """(3, H, W) float canvas image: white paper with a grid of swatches of ``colors``."""
    img = torch.ones(3, *canvas.size_px)
    for (r0, r1, c0, c1), rgb in zip(_cells(len(colors), canvas), colors, strict=True):
        img[:, r0:r1, c0:c1] = torch.tensor(rgb, dtype=torch.float32)[:, None, None]
    return img


def sample_chart(rectified: np.ndarray, canvas: Canvas, n: int) -> np.ndarray:
    """Median sRGB (0..1) of the inner half of each of ``n`` swatches in a rectified (H, W, 3)
    uint8 canvas image. Returns (n, 3)."""
    out = []
    for r0, r1, c0, c1 in _cells(n, canvas):
        dr, dc = (r1 - r0) // 4, (c1 - c0) // 4
        patch = rectified[r0 + dr : r1 - dr, c0 + dc : c1 - dc].reshape(-1, 3)
        out.append(np.median(patch, axis=0) / 255.0)
    return np.array(out)


def _lin(srgb: np.ndarray) -> np.ndarray:
    return srgb_to_linear(torch.from_numpy(np.asarray(srgb, np.float64))).numpy()


def _srgb(lin: np.ndarray) -> np.ndarray:
    return linear_to_srgb(torch.from_numpy(lin)).clamp(0, 1).numpy()


def mean_delta_e(a_srgb: np.ndarray, b_srgb: np.ndarray) -> float:
    """Mean CIEDE2000 between two (N, 3) sRGB arrays (sim.palette's Lab and Delta-E)."""
    la = srgb_to_lab(torch.from_numpy(np.asarray(a_srgb, np.float64)))
    lb = srgb_to_lab(torch.from_numpy(np.asarray(b_srgb, np.float64)))
    return float(delta_e(la, lb).mean())


@dataclass
class ColorCalibration:
    """Captured sRGB -> sim sRGB through a 3x4 matrix in linear light.

    Attributes:
        matrix: (3, 4) linear RGB: corrected = matrix @ [r, g, b, 1].
        delta_e_before, delta_e_after: mean CIEDE2000 over the chart's swatches.
    """

    matrix: np.ndarray
    delta_e_before: float
    delta_e_after: float

    def apply_colors(self, srgb: np.ndarray) -> np.ndarray:
        """(..., 3) sRGB in 0..1 -> corrected sRGB in 0..1."""
        lin = _lin(srgb)
        lin = lin @ self.matrix[:, :3].T + self.matrix[:, 3]
        return _srgb(np.clip(lin, 0.0, 1.0))

    def apply(self, image: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> corrected uint8 RGB."""
        out = self.apply_colors(image.astype(np.float64) / 255.0)
        return np.round(out * 255.0).astype(np.uint8)

    def to_dict(self) -> dict:
        return {
            "matrix": self.matrix.tolist(),
            "delta_e_before": self.delta_e_before,
            "delta_e_after": self.delta_e_after,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ColorCalibration:
        m = np.array(data["matrix"], dtype=np.float64)
        if m.shape != (3, 4):
            raise ValueError(f"colour matrix must be 3x4, got {m.shape}")
        return cls(m, float(data["delta_e_before"]), float(data["delta_e_after"]))


def calibrate_color(measured_srgb: np.ndarray, reference_srgb: np.ndarray) -> ColorCalibration:
    """Fit the 3x4 matrix from N >= 4 swatches.

    Args:
        measured_srgb: (N, 3) captured swatch colours, sRGB 0..1 (from `sample_chart`).
        reference_srgb: (N, 3) what they should be (the chart's colours), sRGB 0..1.
    """
    measured = np.asarray(measured_srgb, np.float64)
    reference = np.asarray(reference_srgb, np.float64)
    if measured.shape != reference.shape or measured.ndim != 2 or measured.shape[0] < 4:
        raise ValueError(f"need (N>=4, 3) swatches, got {measured.shape} and {reference.shape}")
    a = np.concatenate([_lin(measured), np.ones((len(measured), 1))], axis=1)  # (N, 4)
    m, *_ = np.linalg.lstsq(a, _lin(reference), rcond=None)  # (4, 3)
    cal = ColorCalibration(m.T.copy(), mean_delta_e(measured, reference), 0.0)
    cal.delta_e_after = mean_delta_e(cal.apply_colors(measured), reference)
    return cal
