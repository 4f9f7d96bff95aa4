"""Canvas geometry: physical size in meters and render size in pixels.

Conventions used everywhere in the project: canvas meters, origin at the top-left corner,
x to the right, y down. Pixel (col, row) covers [col, col+1) x [row, row+1) in continuous pixel
coordinates, so the centre of pixel (col, row) is at (col + 0.5, row + 0.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from sim.dataclass_io import from_known_fields


@dataclass(frozen=True)
class Canvas:
    """A physical canvas and the pixel size it is rendered at.

    Args:
        width_m: canvas width in meters (x extent), > 0.
        height_m: canvas height in meters (y extent), > 0.
        width_px: render width in pixels, >= 1.
        height_px: render height in pixels; default keeps the physical aspect ratio.
    """

    width_m: float = 0.2794  # letter paper, landscape: what FRIDA's Sharpie strokes were made on
    height_m: float = 0.2159
    width_px: int = 256
    height_px: int | None = None

    def __post_init__(self) -> None:
        for name in ("width_m", "height_m"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(
                    f"Canvas.{name} must be a positive number of meters, got {value!r}"
                )
        if not (isinstance(self.width_px, int) and self.width_px >= 1):
            raise ValueError(f"Canvas.width_px must be a positive integer, got {self.width_px!r}")
        if self.height_px is None:
            object.__setattr__(
                self, "height_px", max(1, round(self.width_px * self.height_m / self.width_m))
            )
        elif not (isinstance(self.height_px, int) and self.height_px >= 1):
            raise ValueError(f"Canvas.height_px must be a positive integer, got {self.height_px!r}")

    @property
    def size_px(self) -> tuple[int, int]:
        """(height_px, width_px), the shape of a rendered image's spatial dims."""
        return (int(self.height_px), self.width_px)

    @property
    def px_per_m(self) -> tuple[float, float]:
        """Pixels per meter along (x, y)."""
        return (self.width_px / self.width_m, int(self.height_px) / self.height_m)

    @property
    def m_per_px(self) -> float:
        """Meters per pixel (the mean of x and y, which are equal when the aspect is kept)."""
        sx, sy = self.px_per_m
        return 0.5 * (1.0 / sx + 1.0 / sy)

    def at(self, width_px: int, height_px: int | None = None) -> Canvas:
        """The same physical canvas rendered at another pixel size."""
        return Canvas(self.width_m, self.height_m, width_px, height_px)

    def m_to_px(self, xy_m: torch.Tensor) -> torch.Tensor:
        """Canvas meters (..., 2) -> continuous pixel coordinates (..., 2) as (col, row)."""
        sx, sy = self.px_per_m
        return xy_m * xy_m.new_tensor([sx, sy])

    def px_to_m(self, xy_px: torch.Tensor) -> torch.Tensor:
        """Continuous pixel coordinates (..., 2) as (col, row) -> canvas meters (..., 2)."""
        sx, sy = self.px_per_m
        return xy_px / xy_px.new_tensor([sx, sy])

    def pixel_centers_m(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """Meters of every pixel centre, shape (H, W, 2) as (x, y)."""
        h, w = self.size_px
        sx, sy = self.px_per_m
        xs = (torch.arange(w, device=device, dtype=dtype) + 0.5) / sx
        ys = (torch.arange(h, device=device, dtype=dtype) + 0.5) / sy
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([gx, gy], dim=-1)

    def to_dict(self) -> dict:
        return {
            "width_m": self.width_m,
            "height_m": self.height_m,
            "width_px": self.width_px,
            "height_px": self.height_px,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Canvas:
        return from_known_fields(cls, data)
