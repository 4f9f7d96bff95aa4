"""Robot-to-canvas calibration: where the arm's commanded canvas points really land.

An arm places the canvas by its configuration (GRBL: ``origin_x_mm``; ROS 2: ``canvas_origin_m``
and ``canvas_yaw_rad``), and a sheet taped down by hand is never exactly there. The procedure
(`calibrate_robot_to_canvas`):

1. the arm homes and the camera captures the sheet: the reference;
2. the arm dots a grid of known points (``rows`` x ``cols`` inside the canvas, in its own
   commanded canvas meters, any saved correction switched off): each dot is a two-waypoint
   `BrushPath` at one point, so every driver paints it through its normal, safety-checked path;
3. the arm homes and the camera captures again;
4. both frames are rectified through the canvas calibration and differenced
   (`robot.calibration.marks`); each dot is the nearest new mark to where it was commanded,
   within ``search_radius_m``;
5. an affine map commanded -> actual is fitted by least squares; it is refused (nothing saved)
   when fewer than ``min_dots`` dots were found or a dot lies more than ``max_residual_mm`` off
   the fit, and the error names the dots.

`RobotToCanvas` is the result. Saved with `robot.calibration.save_calibration(name,
"robot_to_canvas", ...)`, every arm of that name loads it and `Arm.check` sends a path's points
through `RobotToCanvas.commanded_m` before the safety check: the planner's canvas points land
where it meant, and the safety check sees what is really sent.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from robot.calibration.canvas import CanvasCalibration
from robot.calibration.marks import CanvasWindow, find_marks
from robot.errors import CalibrationError
from sim.brush_path import BrushPath

KIND = "robot_to_canvas"  # calibration store name


@dataclass
class RobotToCanvas:
    """An affine map from the arm's commanded canvas meters to where the brush really lands.

    Attributes:
        matrix: (2, 3) float64: ``actual = matrix[:, :2] @ commanded + matrix[:, 2]`` (meters).
        dots: one dict per dot of the calibration: ``index``, ``commanded_m`` (x, y),
            ``found_m`` (x, y) or None when not found, ``residual_mm`` (distance from the fit,
            None when not found), ``error_before_mm`` (found - commanded, uncorrected).
        canvas_m: (width, height) of the canvas it was measured on (m).
    """

    matrix: np.ndarray
    dots: list[dict] = field(default_factory=list)
    canvas_m: tuple[float, float] = (0.2794, 0.2159)

    def __post_init__(self) -> None:
        self.matrix = np.asarray(self.matrix, np.float64)
        if self.matrix.shape != (2, 3) or not np.isfinite(self.matrix).all():
            raise ValueError(f"RobotToCanvas.matrix must be a finite (2, 3), got {self.matrix}")
        if abs(np.linalg.det(self.matrix[:, :2])) < 0.5:
            raise ValueError("RobotToCanvas.matrix is (nearly) singular: not an arm placement")

    # ---- the map -------------------------------------------------------------------------------
    def actual_m(self, commanded_m: np.ndarray) -> np.ndarray:
        """(N, 2) commanded canvas meters -> (N, 2) where the brush lands (m)."""
        p = np.atleast_2d(np.asarray(commanded_m, np.float64))
        return p @ self.matrix[:, :2].T + self.matrix[:, 2]

    def commanded_m(self, target_m: np.ndarray) -> np.ndarray:
        """(N, 2) canvas meters where the brush should land -> (N, 2) meters to command."""
        t = np.atleast_2d(np.asarray(target_m, np.float64))
        return np.linalg.solve(self.matrix[:, :2], (t - self.matrix[:, 2]).T).T

    def correct(self, path: BrushPath) -> BrushPath:
        """The path to command so that ``path`` lands where it says (z, colour, meta kept)."""
        pts = path.points.detach().to("cpu", torch.float64)
        xy = self.commanded_m(pts[:, :2].numpy())
        out = torch.cat([torch.from_numpy(xy), pts[:, 2:]], 1).to(path.points.dtype)
        return BrushPath(out, path.color, path.palette_index, dict(path.meta))

    # ---- figures -------------------------------------------------------------------------------
    @property
    def shift_mm(self) -> tuple[float, float]:
        """(dx, dy) mm by which the canvas centre lands off when uncorrected."""
        c = 0.5 * np.asarray(self.canvas_m)
        d = (self.actual_m(c)[0] - c) * 1000.0
        return (float(d[0]), float(d[1]))

    @property
    def rotation_deg(self) -> float:
        """Rotation of the landed grid against the commanded one (deg, x towards y)."""
        a = self.matrix[:, :2]
        return math.degrees(math.atan2(a[1, 0] - a[0, 1], a[0, 0] + a[1, 1]))

    @property
    def scale(self) -> float:
        """Mean scale of the map (sqrt of the area ratio; 1 = the config's size is right)."""
        return math.sqrt(abs(float(np.linalg.det(self.matrix[:, :2]))))

    def residual_mm(self) -> tuple[float, float]:
        """(rms, max) distance of the found dots from the fit (mm)."""
        r = np.array([d["residual_mm"] for d in self.dots if d["residual_mm"] is not None])
        if r.size == 0:
            return (0.0, 0.0)
        return (float(np.sqrt((r**2).mean())), float(r.max()))

    def summary(self) -> dict:
        """JSON-able figures for logs and the CLI."""
        rms, worst = self.residual_mm()
        before = [d["error_before_mm"] for d in self.dots if d["error_before_mm"] is not None]
        return {
            "dots": len(self.dots),
            "dots_found": sum(d["found_m"] is not None for d in self.dots),
            "error_before_max_mm": round(max(before, default=0.0), 3),
            "residual_rms_mm": round(rms, 3),
            "residual_max_mm": round(worst, 3),
            "shift_mm": [round(v, 3) for v in self.shift_mm],
            "rotation_deg": round(self.rotation_deg, 4),
            "scale": round(self.scale, 5),
        }

    def to_dict(self) -> dict:
        return {
            "matrix": self.matrix.tolist(),
            "dots": self.dots,
            "canvas_m": list(self.canvas_m),
            "summary": self.summary(),
        }

    @classmethod
    def from_dict(cls, data: dict) -> RobotToCanvas:
        return cls(np.array(data["matrix"], np.float64), list(data.get("dots", [])),
                   tuple(data.get("canvas_m", (0.2794, 0.2159))))  # fmt: skip


def fit_affine(commanded_m: np.ndarray, found_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares affine map of N >= 3 point pairs.

    Args:
        commanded_m, found_m: (N, 2) meters.
    Returns:
        ((2, 3) matrix, (N,) residual distances in meters).
    Raises:
        CalibrationError: fewer than 3 points, or all on one line.
    """
    p = np.asarray(commanded_m, np.float64)
    q = np.asarray(found_m, np.float64)
    a = np.concatenate([p, np.ones((len(p), 1))], 1)  # (N, 3)
    if len(p) < 3 or np.linalg.matrix_rank(a) < 3:
        raise CalibrationError(f"an affine fit needs 3 dots not on one line, got {len(p)}")
    m, *_ = np.linalg.lstsq(a, q, rcond=None)  # (3, 2)
    return m.T.copy(), np.linalg.norm(a @ m - q, axis=1)


@dataclass
class RobotToCanvasConfig:
    """How to dot, find and fit; defaults suit a brush or marker on letter paper."""

    rows: int = 4  # dot rows; 4 x 5 = 20 dots average the arm's repeatability (~0.3 mm) down
    cols: int = 5  # dot columns
    inset_m: float = 0.03  # m from every canvas edge to the outer dots (keeps a mis-registered
    # dot on the paper; a brush-height test mark in a corner stays clear of the grid)
    press: float = 0.4  # pressing depth 0..1 of the dots: a clear round mark, not a smear
    color: tuple = (0.0, 0.0, 0.0)  # sRGB of the paint the dots are made with (most contrast)
    palette_index: int = 0  # paint well of that paint
    m_per_px: float = 0.00025  # m, resolution the frames are rectified at to find the dots
    darkness: float = 0.3  # relative loss of light a dot pixel shows at least (noise ~0.02)
    min_area_mm2: float = 0.3  # smaller new marks are dust or noise
    search_radius_m: float | None = None  # m around a commanded dot to look for it; None:
    # 0.45 x the grid spacing (the mis-registration must be smaller than that)
    min_dots: int = 6  # fewest dots found to fit (affine: 6 unknowns; more check each other)
    max_residual_mm: float = 1.5  # refuse when a dot lies farther than this from the fit
    frames: int = 1  # camera frames averaged per capture
    settle_s: float = 0.0  # s to wait after homing before capturing

    def __post_init__(self) -> None:
        if self.rows < 2 or self.cols < 2 or self.rows * self.cols < 3:
            raise ValueError("RobotToCanvasConfig needs rows, cols >= 2")
        if not (0 <= self.press <= 1 and self.m_per_px > 0 and 0 < self.darkness < 1):
            raise ValueError("RobotToCanvasConfig: press in 0..1, m_per_px > 0, darkness 0..1")
        if self.min_dots < 3 or self.max_residual_mm <= 0 or self.frames < 1:
            raise ValueError("RobotToCanvasConfig: min_dots >= 3, max_residual_mm > 0, frames >= 1")
        self.color = tuple(float(c) for c in self.color)


def dot_grid(width_m: float, height_m: float, rows: int, cols: int, inset_m: float) -> np.ndarray:
    """(rows * cols, 2) canvas meters of an evenly spaced grid ``inset_m`` in from every edge,
    row by row from the top-left."""
    if 2 * inset_m >= min(width_m, height_m):
        raise ValueError(f"inset_m={inset_m} leaves no room on a {width_m} x {height_m} m canvas")
    xs = np.linspace(inset_m, width_m - inset_m, cols)
    ys = np.linspace(inset_m, height_m - inset_m, rows)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], 1)


def dot_paths(points_m: np.ndarray, config: RobotToCanvasConfig) -> list[BrushPath]:
    """One `BrushPath` per dot: two waypoints at the same point (lower, lift); dip first."""
    color = torch.tensor(config.color, dtype=torch.float32)
    paths = []
    for k, (x, y) in enumerate(np.asarray(points_m, np.float64)):
        pts = torch.tensor([[x, y, config.press], [x, y, config.press]], dtype=torch.float32)
        meta = {"dip_before": True} if k == 0 else {}
        paths.append(BrushPath(pts, color.clone(), config.palette_index, meta))
    return paths


def match_dots(commanded_m: np.ndarray, marks_m: np.ndarray, radius_m: float) -> list[int | None]:
    """For each commanded dot the index of its mark: nearest pairs first, each mark used once,
    none farther than ``radius_m``. (N, 2) and (M, 2) meters -> N indices or None."""
    out: list[int | None] = [None] * len(commanded_m)
    if len(marks_m) == 0:
        return out
    dist = np.linalg.norm(commanded_m[:, None, :] - marks_m[None, :, :], axis=2)  # (N, M)
    used = set()
    for flat in np.argsort(dist, axis=None):
        i, j = divmod(int(flat), dist.shape[1])
        if dist[i, j] > radius_m:
            break
        if out[i] is None and j not in used:
            out[i] = j
            used.add(j)
    return out


def dot_and_find(
    arm,
    camera,
    canvas_calibration: CanvasCalibration,
    points_m: np.ndarray,
    config: RobotToCanvasConfig | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> tuple[np.ndarray, int]:
    """Capture, dot ``points_m`` with the arm as it is, capture, and find each dot.

    Args:
        arm, camera, canvas_calibration: as for `calibrate_robot_to_canvas`.
        points_m: (N, 2) canvas meters to dot; each dot is looked for around its point.
            The arm applies its robot-to-canvas correction, if it has one.
        config: dot and detection settings.
        on_progress: see `calibrate_robot_to_canvas`.
    Returns:
        ((N, 2) meters where each dot was found, NaN rows for dots not found; the number of
        new marks seen in all).
    Raises:
        RuntimeError: the arm did not finish the dots.
    """
    cfg = config or RobotToCanvasConfig()
    progress = on_progress or (lambda info: None)
    points = np.asarray(points_m, np.float64)
    canvas = canvas_calibration.canvas

    def capture() -> np.ndarray:
        arm.home()
        if cfg.settle_s:
            time.sleep(cfg.settle_s)
        return np.mean([camera.capture().astype(np.float32) for _ in range(cfg.frames)], axis=0)

    progress({"stage": "reference"})
    before = capture()
    report = arm.execute(
        dot_paths(points, cfg),
        on_progress=lambda done, n: progress({"stage": "dots", "done": done, "total": n}),
    )
    if not report.completed:
        raise RuntimeError(f"the arm did not finish the {len(points)} dots: {report.summary()}")
    progress({"stage": "capture"})
    after = capture()
    window = CanvasWindow((0.0, 0.0), (canvas.width_m, canvas.height_m), cfg.m_per_px)
    marks = find_marks(
        canvas_calibration, before, after, window, cfg.color, cfg.darkness, cfg.min_area_mm2
    )
    marks_m = np.array([m.xy_m for m in marks]).reshape(-1, 2)
    found = np.full_like(points, np.nan)
    for k, j in enumerate(match_dots(points, marks_m, _search_radius(canvas, cfg))):
        if j is not None:
            found[k] = marks_m[j]
    return found, len(marks)


def _search_radius(canvas, cfg: RobotToCanvasConfig) -> float:
    """m around a commanded dot to look for it: the config's, or 0.45 x the grid spacing."""
    if cfg.search_radius_m:
        return cfg.search_radius_m
    spacing = min(
        (canvas.width_m - 2 * cfg.inset_m) / (cfg.cols - 1),
        (canvas.height_m - 2 * cfg.inset_m) / (cfg.rows - 1),
    )
    return 0.45 * spacing


def calibrate_robot_to_canvas(
    arm,
    camera,
    canvas_calibration: CanvasCalibration,
    config: RobotToCanvasConfig | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> RobotToCanvas:
    """Dot, capture, find and fit (see the module docstring).

    Args:
        arm: a connected `robot.arms.Arm` with paint at ``config.palette_index``'s well and
            its brush height calibrated (dots that do not touch the paper are not found).
        camera: a connected `robot.cameras.Camera` that sees the canvas and its markers.
        canvas_calibration: this camera's canvas calibration.
        config: the procedure's settings.
        on_progress: called with dicts ``{"stage": "reference" | "dots" | "capture" | "fit",
            ...}``; "dots" carries ``done`` and ``total``, "fit" ``found``, ``total``, ``marks``.
    Returns:
        The fitted `RobotToCanvas` (not saved; the caller saves it). The arm's own correction
        is switched off while dotting and restored afterwards.
    Raises:
        CalibrationError: too few dots found, or dots far off the fit (named in the message).
        RuntimeError: the arm did not finish the dots.
    """
    cfg = config or RobotToCanvasConfig()
    progress = on_progress or (lambda info: None)
    canvas = canvas_calibration.canvas
    ws = arm.config.workspace
    size_m = (ws.canvas_width_m, ws.canvas_height_m)
    if max(abs(canvas.width_m - size_m[0]), abs(canvas.height_m - size_m[1])) > 1e-6:
        raise ValueError(
            f"the camera is calibrated for a {canvas.width_m} x {canvas.height_m} m canvas but the "
            f"arm's workspace is {ws.canvas_width_m} x {ws.canvas_height_m} m"
        )
    commanded = dot_grid(canvas.width_m, canvas.height_m, cfg.rows, cfg.cols, cfg.inset_m)
    total = len(commanded)

    # 1-4. dots in the arm's own frame (no correction), found near where they were commanded
    saved, arm.robot_to_canvas = arm.robot_to_canvas, None
    try:
        found_m, marks = dot_and_find(arm, camera, canvas_calibration, commanded, cfg, progress)
    finally:
        arm.robot_to_canvas = saved
    found = [k for k in range(total) if not np.isnan(found_m[k, 0])]
    missing = [k for k in range(total) if np.isnan(found_m[k, 0])]
    progress({"stage": "fit", "found": len(found), "total": total, "marks": marks})
    if len(found) < cfg.min_dots:
        radius = _search_radius(canvas, cfg)
        raise CalibrationError(
            f"found {len(found)} of {total} dots (need {cfg.min_dots}); missing dots "
            f"{_name_dots(missing, commanded)}. {marks} new marks were seen in all. Check "
            "that the brush has paint and touches the paper (run `cofrida robot brush-height` "
            f"first), and that the canvas lands within {radius * 1000:.0f} mm of where the arm's "
            "config puts it"
        )

    # 5. fit, and refuse a fit some dots disagree with
    matrix, residual = fit_affine(commanded[found], found_m[found])
    bad = [k for k, r in zip(found, residual, strict=True) if r * 1000.0 > cfg.max_residual_mm]
    if bad:
        raise CalibrationError(
            f"dots {_name_dots(bad, commanded)} lie more than {cfg.max_residual_mm} mm off the "
            f"best affine fit (worst {residual.max() * 1000.0:.2f} mm): a smudge, a stray mark, "
            "or an arm that does not move straight; clean the sheet and repeat"
        )
    dots = []
    for k, xy in enumerate(commanded):
        ok = k in found
        dots.append({
            "index": k,
            "commanded_m": [float(v) for v in xy],
            "found_m": [float(v) for v in found_m[k]] if ok else None,
            "residual_mm": float(residual[found.index(k)] * 1000.0) if ok else None,
            "error_before_mm": float(np.linalg.norm(found_m[k] - xy) * 1000.0) if ok else None,
        })  # fmt: skip
    return RobotToCanvas(matrix, dots, (canvas.width_m, canvas.height_m))


def verify_robot_to_canvas(
    arm,
    camera,
    canvas_calibration: CanvasCalibration,
    config: RobotToCanvasConfig | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> dict:
    """Dot a second grid (shifted by half a cell from the calibration's, so no dot lands on an
    old one) with the arm's correction on, and measure where the dots land.

    Returns:
        ``{"dots", "dots_found", "err_max_mm", "err_mean_mm"}``: distance of each found dot from
        its target (includes the arm's repeatability and the camera's detection error).
    """
    cfg = config or RobotToCanvasConfig()
    canvas = canvas_calibration.canvas
    grid = dot_grid(canvas.width_m, canvas.height_m, cfg.rows, cfg.cols, cfg.inset_m)
    half = 0.5 * np.array([
        (canvas.width_m - 2 * cfg.inset_m) / (cfg.cols - 1),
        (canvas.height_m - 2 * cfg.inset_m) / (cfg.rows - 1),
    ])  # fmt: skip
    targets = grid[(grid[:, 0] < canvas.width_m - cfg.inset_m - 1e-9)
                   & (grid[:, 1] < canvas.height_m - cfg.inset_m - 1e-9)] + half  # fmt: skip
    found, _ = dot_and_find(arm, camera, canvas_calibration, targets, cfg, on_progress)
    ok = ~np.isnan(found[:, 0])
    err = np.linalg.norm(found[ok] - targets[ok], axis=1) * 1000.0
    return {
        "dots": len(targets),
        "dots_found": int(ok.sum()),
        "err_max_mm": round(float(err.max()), 3) if err.size else None,
        "err_mean_mm": round(float(err.mean()), 3) if err.size else None,
    }


def _name_dots(indices: list[int], commanded: np.ndarray) -> str:
    """``#3 (x 30.0, y 80.2 mm), ...`` for the dots at ``indices``."""
    return ", ".join(
        f"#{k} (x {commanded[k, 0] * 1000:.1f}, y {commanded[k, 1] * 1000:.1f} mm)" for k in indices
    )
