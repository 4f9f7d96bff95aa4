"""G-code export for GRBL machines (pen plotters, CNC gantries with a brush holder).

Dialect: G21 (mm), G90 (absolute), G0 travel with the brush lifted to `z_up_mm`, G1 with a
feed rate while painting; the brush's Z follows the stroke's pressure,
``z = z_touch_mm - pressure * press_mm`` (more pressure = lower). X/Y are millimetres of the
canvas placed at `origin_mm` on the machine, by `canvas_to_machine_mm`: the one convention of
CoFRIDA's G-code, shared with the GRBL driver (`robot.arms.grbl`).

Paint handling (choose with the config):

- no stations given (default): a comment and an ``M0`` pause before every clean and dip, so the
  operator cleans or loads the brush and resumes (cycle start). Every move stays on the canvas.
- `paint_stations_mm` (one (x, y) per palette paint) and `water_station_mm`: the machine moves
  there at `z_up_mm`, lowers to `station_z_mm`, and comes back; no pauses. Those moves leave
  the canvas on purpose (stations sit beside it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from planner.plan import Plan


def canvas_to_machine_mm(
    x_m: float,
    y_m: float,
    canvas_height_m: float,
    origin_mm: tuple[float, float] = (0.0, 0.0),
    flip_y: bool = True,
    x_sign: int = 1,
) -> tuple[float, float]:
    """Canvas meters (x right, y down from the top-left corner) -> machine mm.

    The convention of every G-code CoFRIDA writes (`plan_to_gcode` and the GRBL driver):
    machine Y points up, away from the operator (``flip_y=True``, GRBL's usual set-up), and
    ``origin_mm`` is the machine (X, Y) of the canvas' bottom-left corner, so the canvas covers
    ``[ox, ox + W] x [oy, oy + H]``: ``X = ox + 1000 x``, ``Y = oy + 1000 (H - y)``. With
    ``flip_y=False`` (machine Y down) ``origin_mm`` is the top-left corner: ``Y = oy + 1000 y``.
    ``x_sign=-1`` mirrors X (``X = ox - 1000 x``).
    """
    ox, oy = origin_mm
    y = oy + 1000.0 * (canvas_height_m - y_m) if flip_y else oy + 1000.0 * y_m
    return ox + x_sign * 1000.0 * x_m, y


@dataclass(frozen=True)
class GcodeConfig:
    """Where the canvas is on the machine and how the brush moves. Lengths in mm."""

    origin_mm: tuple[float, float] = (0.0, 0.0)  # machine (x, y) of the canvas' top-left
    #   corner (bottom-left when flip_y)
    flip_y: bool = True  # GRBL machines have y up; canvas meters have y down
    z_up_mm: float = 5.0  # travel height: clears wet paint and the canvas' warp
    z_touch_mm: float = 0.0  # height at which the bristles just touch (pressure 0)
    press_mm: float = 2.0  # how much lower the brush goes at pressure 1
    feed_mm_min: float = 1500.0  # painting feed (25 mm/s: paint flows evenly)
    plunge_mm_min: float = 600.0  # lowering feed: a slow landing does not splay the brush
    paint_stations_mm: tuple[tuple[float, float], ...] | None = None  # one per palette paint
    water_station_mm: tuple[float, float] | None = None  # where to wash the brush
    station_z_mm: float = -3.0  # how deep the brush goes into paint or water
    decimals: int = 3  # digits after the point (um resolution)

    def __post_init__(self) -> None:
        numbers = [*self.origin_mm, self.z_up_mm, self.z_touch_mm, self.press_mm]
        numbers += [self.feed_mm_min, self.plunge_mm_min, self.station_z_mm]
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in numbers):
            raise ValueError("GcodeConfig: every length and feed must be a finite number")
        if self.feed_mm_min <= 0 or self.plunge_mm_min <= 0 or self.press_mm < 0:
            raise ValueError("GcodeConfig needs feed_mm_min > 0, plunge_mm_min > 0, press_mm >= 0")
        if self.z_up_mm <= self.z_touch_mm:
            raise ValueError("GcodeConfig needs z_up_mm above z_touch_mm")
        if (self.paint_stations_mm is None) != (self.water_station_mm is None):
            raise ValueError(
                "GcodeConfig: give both paint_stations_mm and water_station_mm, or neither"
            )


def plan_to_gcode(plan: Plan, config: GcodeConfig | None = None) -> str:
    """The plan as GRBL G-code text (one command per line, ``;`` comments).

    Raises:
        ValueError: when stations are configured but fewer than the palette's paints, or a
            stroke is outside the brush's ranges (e.g. pressure 50: 100 mm into the table).
    """
    cfg = config or GcodeConfig()
    plan.strokes.check_ranges(plan.brush, "plan_to_gcode")  # again: strokes may have changed
    stations = cfg.paint_stations_mm
    if stations is not None and len(stations) < len(plan.palette):
        raise ValueError(
            f"GcodeConfig.paint_stations_mm has {len(stations)} stations but the palette has "
            f"{len(plan.palette)} paints"
        )
    d = cfg.decimals
    w_mm, h_mm = plan.canvas.width_m * 1000, plan.canvas.height_m * 1000
    ox, oy = cfg.origin_mm

    def xy(x_m: float, y_m: float) -> str:
        x, y = canvas_to_machine_mm(x_m, y_m, plan.canvas.height_m, cfg.origin_mm, cfg.flip_y)
        return f"X{x:.{d}f} Y{y:.{d}f}"

    def z_of(pressure: float) -> float:
        return cfg.z_touch_mm - pressure * cfg.press_mm

    up = f"G0 Z{cfg.z_up_mm:.{d}f}"
    lines = [
        f"; cofrida plan: {len(plan)} strokes, {plan.colours_used} paints, canvas "
        f"{w_mm:.1f} x {h_mm:.1f} mm at X{ox} Y{oy}",
        "G21 ; millimetres",
        "G90 ; absolute coordinates",
        up,
    ]

    def visit(x: float, y: float, what: str) -> None:
        lines.extend(
            [up, f"G0 X{x:.{d}f} Y{y:.{d}f} ; {what}", f"G1 Z{cfg.station_z_mm:.{d}f} "
             f"F{cfg.plunge_mm_min:.0f}", up]
        )  # fmt: skip

    for path in plan.paths():
        paint = int(path.palette_index)
        name = plan.palette.names[paint]
        if path.meta.get("clean_before"):
            lines.append(f"; clean the brush (next paint: {name})")
            if stations is None:
                lines.append("M0 ; pause: clean the brush, then resume")
            else:
                visit(*cfg.water_station_mm, "water")
        if path.meta.get("dip_before"):
            lines.append(f"; dip paint {paint} ({name})")
            if stations is None:
                lines.append(f"M0 ; pause: load the brush with {name}, then resume")
            else:
                visit(*stations[paint], f"paint {paint}")
        pts = path.points.tolist()
        lines.append(
            f"; stroke {path.meta.get('stroke_index')} (position {path.meta.get('position')})"
        )
        lines.append(f"G0 {xy(pts[0][0], pts[0][1])}")
        lines.append(f"G1 Z{z_of(pts[0][2]):.{d}f} F{cfg.plunge_mm_min:.0f}")
        for i, (x, y, z) in enumerate(pts[1:]):
            feed = f" F{cfg.feed_mm_min:.0f}" if i == 0 else ""
            lines.append(f"G1 {xy(x, y)} Z{z_of(z):.{d}f}{feed}")
        lines.append(up)
    lines += [up, "M2 ; end of program", ""]
    return "\n".join(lines)
