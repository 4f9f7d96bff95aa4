"""Brush configuration: the ranges of stroke shape a real brush (or marker) can make.

A stroke's shape is (length, bend, pressure). Its path, in the stroke's local frame (x along the
stroke, y down like the canvas), is the cubic Bezier FRIDA drives: from (0, 0) through
(L/3, -bend) and (2L/3, -bend) to (L, 0), so positive bend arches towards -y. The x of that
Bezier is exactly L*t, and y = -3*bend*t*(1-t): the path is a parabola of height 3/4*bend.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from sim.dataclass_io import from_known_fields


@dataclass(frozen=True)
class Brush:
    """What a brush allows, in meters and normalised pressure.

    Args:
        name: preset or user name, used to find calibrations.
        min_length_m, max_length_m: stroke chord length range (m); the max bounds footprints.
        max_bend_m: largest |bend| (m), the Bezier control-point offset.
        max_angle_deg: the steepest the path may leave its chord at the ends; bounds
            |bend| <= L/3 * tan(max_angle) so short strokes cannot be hooks the brush can't make.
        min_width_m, max_width_m: mark width at pressure 0 and 1 (m); linear in between.
        taper: fraction of the stroke over which the width grows from 0 at the ends
            (0 for a marker, ~0.2 for a round brush).
        softness_m: edge softness of the analytic model (m), the sigmoid's scale.
        max_opacity: opacity of the mark at pressure 1 (a marker is ~1, a watery brush less).
        min_opacity: opacity at pressure 0.
    """

    name: str = "sharpie"
    min_length_m: float = 0.002
    max_length_m: float = 0.03
    max_bend_m: float = 0.01
    max_angle_deg: float = 60.0
    min_width_m: float = 0.0015
    max_width_m: float = 0.004
    taper: float = 0.0
    softness_m: float = 0.0003
    max_opacity: float = 1.0
    min_opacity: float = 0.85

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "name":
                if not isinstance(value, str) or not value:
                    raise ValueError("Brush.name must be a non-empty string")
                continue
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ValueError(f"Brush.{f.name} must be a finite number, got {value!r}")
        if not 0 < self.min_length_m <= self.max_length_m:
            raise ValueError("Brush needs 0 < min_length_m <= max_length_m")
        if not 0 < self.min_width_m <= self.max_width_m:
            raise ValueError("Brush needs 0 < min_width_m <= max_width_m")
        if self.max_bend_m < 0 or not 0 < self.max_angle_deg < 90:
            raise ValueError("Brush needs max_bend_m >= 0 and 0 < max_angle_deg < 90")
        if not 0 <= self.taper < 0.5 or self.softness_m <= 0:
            raise ValueError("Brush needs 0 <= taper < 0.5 and softness_m > 0")
        if not 0 <= self.min_opacity <= self.max_opacity <= 1:
            raise ValueError("Brush needs 0 <= min_opacity <= max_opacity <= 1")

    @property
    def footprint_m(self) -> float:
        """Largest distance from a stroke's start to any point it can mark (m)."""
        edge = self.max_width_m / 2 + 6 * self.softness_m
        reach_x = self.max_length_m + edge
        reach_y = 0.75 * self.max_bend_m + edge
        return math.hypot(reach_x, reach_y)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Brush:
        return from_known_fields(cls, data)

    @classmethod
    def preset(cls, name: str) -> Brush:
        """A named preset: 'sharpie' or 'round'."""
        if name not in BRUSH_PRESETS:
            raise ValueError(
                f"unknown brush preset {name!r}; choose one of {sorted(BRUSH_PRESETS)}"
            )
        return BRUSH_PRESETS[name]


BRUSH_PRESETS: dict[str, Brush] = {
    # A fine-point Sharpie on paper, the ranges FRIDA's recorded strokes span (0-3 cm, +-1 cm).
    "sharpie": Brush(),
    # A size-8 round acrylic brush: longer strokes, width strongly pressure dependent, tapered.
    "round": Brush(
        name="round",
        min_length_m=0.005,
        max_length_m=0.06,
        max_bend_m=0.02,
        max_angle_deg=50.0,
        min_width_m=0.002,
        max_width_m=0.01,
        taper=0.2,
        softness_m=0.0006,
        max_opacity=0.95,
        min_opacity=0.6,
    ),
}
