"""The safety envelope every driver checks before anything is sent.

`Workspace` says where the brush may go (in canvas meters: origin top-left, x right, y down),
`MotionLimits` how fast. `check_paths` turns planner `BrushPath`s into `SafePath`s, the exact
waypoints and speed a driver will send, or refuses: with ``on_violation="refuse"`` the first
violation raises `SafetyError` naming the path, the waypoint and the limit; with ``"clip"``
positions are clamped into the canvas box, pressing depth into 0..max_press, and the speed is
lowered until both the speed and the acceleration limits hold. `check_dab` does the same for
one vertical brush-height probe (`robot.arms.Arm.dab`): inside the paint box, never deeper than
``Workspace.probe_floor_m``.

Speed (time-parametrisation happens here, at the arm boundary, for every caller): a path with
no requested speed (no ``path.meta["speed_m_s"]``) moves at the arm's paint speed, lowered
where its corners need it until the corner acceleration is within 90 % of
``MotionLimits.max_accel_m_s2``: it is never refused for its speed. A speed the caller asked for
is checked as it is: over the speed or acceleration limit it is refused (or, with "clip",
lowered). Acceleration is estimated at every waypoint as the change of the velocity vector
(constant speed along the polyline) over the mean duration of the two segments that meet there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from robot.errors import RobotError
from sim.brush_path import BrushPath

VIOLATION_POLICIES = ("refuse", "clip")


class SafetyError(RobotError, ValueError):
    """A motion would leave the workspace or exceed a motion limit; nothing was sent."""


@dataclass
class Workspace:
    """Where the brush may be, in canvas meters.

    Stations (paint wells, water jar) lie beside the canvas; the arm only reaches them at
    travel height, and they must lie inside the reach box (canvas grown by ``reach_margin_m``).
    """

    canvas_width_m: float = 0.2794  # m, x extent of the canvas (letter, landscape)
    canvas_height_m: float = 0.2159  # m, y extent
    margin_m: float = 0.005  # m kept clear inside every edge: tape, and bristles splay past z
    max_press: float = 1.0  # 0..1, deepest pressing depth allowed: protects bristles and ferrule
    travel_height_m: float = 0.02  # m above the canvas for travel: clears wet paint and cups
    reach_margin_m: float = 0.08  # m around the canvas the arm may travel over (stations live here)
    paint_stations: tuple = ((-0.04, 0.02), (-0.04, 0.05), (-0.04, 0.08), (-0.04, 0.11))  # m (x, y)
    water_station: tuple = (-0.04, 0.18)  # m (x, y) of the water jar for cleaning
    station_dwell_s: float = 0.5  # s the brush stays in a well or the jar (loads / rinses)
    probe_floor_m: float = 0.01  # m below the believed surface a brush-height dab may reach:
    # deeper means the configured surface is badly wrong, and the brush would hit the table

    def __post_init__(self) -> None:
        for name in ("canvas_width_m", "canvas_height_m", "travel_height_m"):
            _positive(self, name)
        for name in ("margin_m", "reach_margin_m", "station_dwell_s", "probe_floor_m"):
            _positive(self, name, allow_zero=True)
        if not 0 < self.max_press <= 1:
            raise ValueError(f"Workspace.max_press must be in (0, 1], got {self.max_press!r}")
        if 2 * self.margin_m >= min(self.canvas_width_m, self.canvas_height_m):
            raise ValueError("Workspace.margin_m leaves no canvas to paint on")
        self.paint_stations = tuple(tuple(float(v) for v in s) for s in self.paint_stations)
        self.water_station = tuple(float(v) for v in self.water_station)
        if not self.paint_stations:
            raise ValueError("Workspace.paint_stations needs at least one (x, y) station")
        for i, s in enumerate((*self.paint_stations, self.water_station)):
            what = "water_station" if i == len(self.paint_stations) else f"paint_stations[{i}]"
            if len(s) != 2 or not self.in_reach(s[0], s[1]):
                raise ValueError(f"Workspace.{what}={s} is not an (x, y) inside the reach box")

    @property
    def paint_box(self) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) m where the brush may touch the canvas."""
        m = self.margin_m
        return (m, m, self.canvas_width_m - m, self.canvas_height_m - m)

    def in_reach(self, x: float, y: float) -> bool:
        """Whether (x, y) m may be travelled over at travel height."""
        r = self.reach_margin_m
        return -r <= x <= self.canvas_width_m + r and -r <= y <= self.canvas_height_m + r

    def paint_station(self, palette_index: int | None) -> tuple[float, float]:
        """The well of a paint (index modulo the number of wells; 0 when unknown)."""
        return self.paint_stations[(palette_index or 0) % len(self.paint_stations)]


@dataclass
class MotionLimits:
    """How fast the brush tip may move."""

    max_speed_m_s: float = 0.15  # m/s while painting: faster skips, splatters and drags bristles
    max_accel_m_s2: float = 2.0  # m/s^2 at corners: above this small arms overshoot / lose steps
    travel_speed_m_s: float = 0.2  # m/s pen-up travel and station moves

    def __post_init__(self) -> None:
        for name in ("max_speed_m_s", "max_accel_m_s2", "travel_speed_m_s"):
            _positive(self, name)


@dataclass(frozen=True)
class SafePath:
    """A path after the safety check: exactly what a driver sends.

    Attributes:
        index: position of the source `BrushPath` in the list given to `check_paths`.
        points: (K, 3) float64 (x m, y m, z pressing depth), inside the paint box.
        speed_m_s: tip speed along the path, within the limits.
        color: (r, g, b) in 0..1.
        palette_index: paint index (chooses the paint well), or None.
        dip_before, clean_before: station visits before the path.
        clipped: what the check changed, e.g. ("position", "speed"); empty when untouched.
    """

    index: int
    points: np.ndarray
    speed_m_s: float
    color: tuple[float, float, float]
    palette_index: int | None = None
    dip_before: bool = False
    clean_before: bool = False
    clipped: tuple[str, ...] = field(default=())

    @property
    def length_m(self) -> float:
        """Length on the canvas (m)."""
        return float(np.linalg.norm(np.diff(self.points[:, :2], axis=0), axis=1).sum())

    @property
    def duration_s(self) -> float:
        """Time to paint the path at its speed (s)."""
        return self.length_m / self.speed_m_s


def peak_accel(points: np.ndarray, speed_m_s: float) -> tuple[float, int]:
    """Largest corner acceleration (m/s^2) at constant speed along (K, >=2) points, and where.

    Returns (accel, waypoint index); (0, 0) for straight or two-point paths.
    """
    seg = np.diff(points[:, :2], axis=0)  # (S, 2)
    length = np.linalg.norm(seg, axis=1)
    keep = length > 1e-9
    seg, length = seg[keep], length[keep]
    if len(seg) < 2:
        return 0.0, 0
    unit = seg / length[:, None]
    dv = np.linalg.norm(np.diff(unit, axis=0), axis=1) * speed_m_s  # (S-1,) m/s
    dt = 0.5 * (length[1:] + length[:-1]) / speed_m_s  # (S-1,) s
    accel = dv / dt
    i = int(accel.argmax())
    return float(accel[i]), int(np.flatnonzero(keep)[i] + 1)


def corner_safe_speed(
    path: BrushPath, speed_m_s: float, max_accel_m_s2: float, room: float = 0.9
) -> float:
    """`speed_m_s`, lowered for a tightly bent path until its corner acceleration is at most
    ``room * max_accel_m_s2`` (acceleration grows as speed^2). What a planner or a session
    puts in ``path.meta["speed_m_s"]`` so that `check_paths` passes the path as it is."""
    accel, _ = peak_accel(path.points.detach().cpu().double().numpy(), speed_m_s)
    if accel > room * max_accel_m_s2:
        speed_m_s *= math.sqrt(room * max_accel_m_s2 / accel)
    return speed_m_s


def check_paths(
    paths: Sequence[BrushPath],
    workspace: Workspace,
    limits: MotionLimits,
    on_violation: str = "refuse",
    default_speed_m_s: float = 0.05,
) -> list[SafePath]:
    """Check (and with ``"clip"``, repair) every path before anything is sent.

    Args:
        paths: planner output, in painting order.
        workspace: where the brush may go.
        limits: speed and acceleration limits.
        on_violation: "refuse" (raise on the first violation) or "clip".
        default_speed_m_s: tip speed for paths without ``meta["speed_m_s"]`` (lowered at tight
            corners, see the module docstring).
    Returns:
        One `SafePath` per input path, same order.
    Raises:
        SafetyError: with "refuse", naming path index, waypoint and limit. Nothing is sent.
        ValueError: unknown policy or a path that is not a `BrushPath`.
    """
    if on_violation not in VIOLATION_POLICIES:
        raise ValueError(f"on_violation must be one of {VIOLATION_POLICIES}, got {on_violation!r}")
    return [
        _check_one(i, p, workspace, limits, on_violation == "clip", default_speed_m_s)
        for i, p in enumerate(paths)
    ]


CORNER_ROOM = 0.9  # a path without a requested speed is slowed to 90 % of the acceleration limit

# Points this close outside the box are float rounding (planners work in float32), not motion:
# they are put on the boundary and not reported. 1 micrometre is far below any arm's precision.
ROUNDING_TOLERANCE_M = 1e-6


def _check_one(i, path, ws: Workspace, lim: MotionLimits, clip: bool, default_speed) -> SafePath:
    if not isinstance(path, BrushPath):
        raise ValueError(f"path {i}: expected a BrushPath, got {type(path).__name__}")
    pts = path.points.detach().to("cpu").double().numpy().copy()  # (K, 3)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < 2:
        raise SafetyError(f"path {i}: points must be (K >= 2, 3), got {tuple(pts.shape)}")
    if not np.isfinite(pts).all():
        k = int(np.flatnonzero(~np.isfinite(pts).all(axis=1))[0])
        raise SafetyError(f"path {i}, waypoint {k}: {pts[k].tolist()} is not a finite position")
    clipped: list[str] = []
    x0, y0, x1, y1 = ws.paint_box
    lo, hi = np.array([x0, y0, 0.0]), np.array([x1, y1, ws.max_press])
    tol = np.array([ROUNDING_TOLERANCE_M, ROUNDING_TOLERANCE_M, 1e-6])
    near = ((pts >= lo - tol) & (pts <= hi + tol)).all(axis=1)
    pts[near] = np.clip(pts[near], lo, hi)
    bad = np.flatnonzero(((pts < lo) | (pts > hi)).any(axis=1))
    if len(bad):
        k = int(bad[0])
        if not clip:
            x, y, z = pts[k]
            raise SafetyError(
                f"path {i}, waypoint {k}: (x={x:.4f} m, y={y:.4f} m, z={z:.3f}) is outside the "
                f"workspace: x in {x0:.4f}..{x1:.4f} m, y in {y0:.4f}..{y1:.4f} m "
                f"(Workspace.margin_m={ws.margin_m}), z in 0..{ws.max_press} (Workspace.max_press)"
            )
        pts = np.clip(pts, lo, hi)
        clipped.append("position")
    if "speed_m_s" not in path.meta:  # no speed asked for: the arm times it (never refused)
        speed = min(float(default_speed), lim.max_speed_m_s)
        accel, _ = peak_accel(pts, speed)
        if accel > CORNER_ROOM * lim.max_accel_m_s2:  # slowed for its corners, a ~ speed^2
            speed *= math.sqrt(CORNER_ROOM * lim.max_accel_m_s2 / accel)
        return _safe_path(i, path, pts, speed, clipped)
    speed = float(path.meta["speed_m_s"])
    if not (math.isfinite(speed) and speed > 0):
        if not clip:
            raise SafetyError(f"path {i}: meta speed_m_s={speed!r} is not a positive speed")
        speed, clipped = min(default_speed, lim.max_speed_m_s), [*clipped, "speed"]
    if speed > lim.max_speed_m_s:
        if not clip:
            raise SafetyError(
                f"path {i}: speed {speed:.4g} m/s exceeds MotionLimits.max_speed_m_s="
                f"{lim.max_speed_m_s} m/s"
            )
        speed = lim.max_speed_m_s
        clipped.append("speed")
    accel, k = peak_accel(pts, speed)
    if accel > lim.max_accel_m_s2 * (1 + 1e-9):
        if not clip:
            raise SafetyError(
                f"path {i}, waypoint {k}: corner acceleration {accel:.3g} m/s^2 at "
                f"{speed:.3g} m/s exceeds MotionLimits.max_accel_m_s2={lim.max_accel_m_s2} m/s^2"
            )
        speed *= math.sqrt(lim.max_accel_m_s2 / accel) * (1 - 1e-6)  # a grows with speed^2
        clipped.append("acceleration")
    return _safe_path(i, path, pts, speed, clipped)


def _safe_path(i: int, path: BrushPath, pts: np.ndarray, speed: float, clipped: list) -> SafePath:
    return SafePath(
        index=i,
        points=pts,
        speed_m_s=speed,
        color=tuple(float(c) for c in path.color.detach().cpu().clamp(0, 1)),
        palette_index=path.palette_index,
        dip_before=bool(path.meta.get("dip_before", False)),
        clean_before=bool(path.meta.get("clean_before", False)),
        clipped=tuple(clipped),
    )


def check_dab(workspace: Workspace, x_m: float, y_m: float, height_m: float) -> None:
    """Check one dab (a vertical brush-height probe, `robot.arms.Arm.dab`) before it is sent.

    Args:
        workspace: where the brush may go.
        x_m, y_m: canvas meters of the dab, in the arm's own (commanded) canvas frame.
        height_m: brush-tip height above the surface the arm believes in (m; negative: below).
    Raises:
        SafetyError: outside the paint box, above travel height, or deeper than
            ``workspace.probe_floor_m`` below the surface. Nothing is sent.
    """
    x0, y0, x1, y1 = workspace.paint_box
    if not all(math.isfinite(v) for v in (x_m, y_m, height_m)):
        raise SafetyError(f"dab at ({x_m}, {y_m}) m, height {height_m} m: not finite numbers")
    if not (x0 <= x_m <= x1 and y0 <= y_m <= y1):
        raise SafetyError(
            f"dab at (x={x_m:.4f} m, y={y_m:.4f} m) is outside the paint box x in "
            f"{x0:.4f}..{x1:.4f} m, y in {y0:.4f}..{y1:.4f} m"
        )
    floor, top = -workspace.probe_floor_m, workspace.travel_height_m
    if not floor - 1e-9 <= height_m <= top:
        raise SafetyError(
            f"dab height {height_m * 1000:+.2f} mm is outside {floor * 1000:+.2f}.."
            f"{top * 1000:+.2f} mm (Workspace.probe_floor_m={workspace.probe_floor_m} m below "
            "the surface, travel_height_m above it)"
        )


def _positive(obj, name: str, allow_zero: bool = False) -> None:
    value = getattr(obj, name)
    ok = isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(
            f"{type(obj).__name__}.{name} must be a finite number {bound}, got {value!r}"
        )
