"""Stroke capture: the arm paints a grid of known strokes, the camera sees them, a dataset results.

`capture_strokes` is the sim-to-real capture procedure (data flow 3 of the architecture). Per
sheet of paper:

1. the person puts a blank sheet down (`on_paper_change`; the sim arm's canvas is reset instead);
2. the camera captures the blank sheet: the reference;
3. the arm paints the sheet's strokes (`robot.calibration.stroke_grid`), each a `BrushPath`;
4. the camera captures the painted sheet;
5. each stroke's crop is rectified out of both frames with the canvas calibration, straight at
   the dataset's resolution, and differenced: darkness = max(0, ref - after) / ref, per pixel,
   weighted over the colour channels the paint absorbs (light falling off across the paper
   cancels); crops that show no mark, or ink on their border, are rejected and reported.

The kept crops are written with `sim.stroke_dataset.save_stroke_dataset` in the shared file's
layout (intensity 0..255, params (length m, bend m, z, alpha=0), start pixel fixed, strokes
towards +x, ``capture_file`` = sheet). Nothing is written when the capture is stopped.

Any `Arm` and `Camera` work, real or simulated; only `on_paper_change` differs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from robot.arms.arm import Arm
from robot.calibration.canvas import CanvasCalibration
from robot.calibration.marks import crop_darkness
from robot.calibration.stroke_grid import CropLayout, StrokeSheet, plan_stroke_grid
from robot.cameras.camera import Camera
from robot.safety import corner_safe_speed
from sim.brush import Brush
from sim.brush_path import BrushPath
from sim.canvas import Canvas
from sim.gap_report import INK_THRESHOLD
from sim.stroke_dataset import save_stroke_dataset
from sim.stroke_model import AnalyticStrokeModel, StrokeFrame


@dataclass
class CaptureConfig:
    """How to capture; defaults suit a marker or brush on letter paper."""

    seed: int = 0  # seed of the stroke shapes
    meters_per_pixel: float = 0.000216  # m, crop resolution (the shared FRIDA file's)
    pad_m: float = 0.002  # m around the largest mark in each crop: placement error, fit window
    margin_m: float = 0.01  # m of paper left bare along every edge (>= the arm's margin)
    gap_m: float = 0.003  # m between neighbouring crops on the sheet
    color: tuple = (0.0, 0.0, 0.0)  # sRGB paint: black gives the most contrast on white paper
    dip_every: int = 1  # dip before every k-th stroke of a sheet (1: before each, as FRIDA
    # does; 0: only the first, for a marker that never runs dry)
    points_per_stroke: int = 16  # waypoints per stroke path
    frames: int = 1  # camera frames averaged per capture (noise drops as 1/sqrt(frames))
    settle_s: float = 0.0  # s to wait after the arm homes before capturing (vibration, drying)
    min_ink_fraction: float = 0.1  # reject a crop with less ink than this x the expected mark

    def __post_init__(self) -> None:
        if not (self.meters_per_pixel > 0 and self.pad_m >= 0 and self.gap_m >= 0):
            raise ValueError("CaptureConfig needs meters_per_pixel > 0, pad_m and gap_m >= 0")
        if self.dip_every < 0 or self.frames < 1 or self.points_per_stroke < 2:
            raise ValueError("CaptureConfig needs dip_every >= 0, frames >= 1, points >= 2")
        self.color = tuple(float(c) for c in self.color)
        if len(self.color) != 3 or not all(0 <= c <= 1 for c in self.color):
            raise ValueError(f"CaptureConfig.color must be sRGB in 0..1, got {self.color}")


@dataclass
class CaptureReport:
    """What a capture did.

    Attributes:
        strokes_planned: strokes in the grid.
        strokes_captured: strokes written to the dataset.
        sheets: sheets painted (fully or partly).
        rejected: {stroke id: why} for strokes painted but left out of the dataset.
        out_path: the dataset written, or None (stopped, or nothing captured).
        stopped: True when `should_stop` ended the capture (nothing is written then).
        seconds: wall-clock time of the whole capture (s).
        layout: the crop layout (`CropLayout.to_dict`).
    """

    strokes_planned: int = 0
    strokes_captured: int = 0
    sheets: int = 0
    rejected: dict[int, str] = field(default_factory=dict)
    out_path: str | None = None
    stopped: bool = False
    seconds: float = 0.0
    layout: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rejected"] = {str(k): v for k, v in sorted(self.rejected.items())}
        return d


def rectify_crop(
    calibration: CanvasCalibration, frame: np.ndarray, start_m: tuple[float, float],
    layout: CropLayout,
) -> np.ndarray:  # fmt: skip
    """A stroke's crop straight out of a camera frame, at the crop's resolution.

    The calibration's homography (image px -> canvas px) is composed with canvas px -> meters
    -> crop px, so the frame is interpolated once (bilinear).

    Args:
        calibration: the canvas calibration of this camera.
        frame: (H, W, 3) camera frame, uint8 or float 0..255 (the size the calibration is
            for; pass float32 to avoid a conversion per crop).
        start_m: the stroke's start in canvas meters.
        layout: crop size, resolution and where the start lands in it.
    Returns:
        (layout.height_px, layout.width_px, 3) float32 RGB in 0..255.
    """
    h, w = frame.shape[:2]
    if (w, h) != tuple(calibration.image_size):
        raise ValueError(f"frame is {w}x{h} px but the calibration is for {calibration.image_size}")
    sx, sy = calibration.canvas.px_per_m
    to_m = np.array([[1 / sx, 0, 0.5 / sx], [0, 1 / sy, 0.5 / sy], [0, 0, 1]])  # canvas px -> m
    m = layout.meters_per_pixel
    ox = start_m[0] - layout.start_xy_px[0] * m  # crop's top-left edge (m)
    oy = start_m[1] - layout.start_xy_px[1] * m
    to_crop = np.array([[1 / m, 0, -ox / m - 0.5], [0, 1 / m, -oy / m - 0.5], [0, 0, 1]])
    homography = to_crop @ to_m @ calibration.homography
    size = (layout.width_px, layout.height_px)
    return cv2.warpPerspective(
        np.asarray(frame, np.float32), homography, size, flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip


def sheet_paths(
    sheet: StrokeSheet, config: CaptureConfig, paint_speed_m_s: float, max_accel_m_s2: float
) -> list[BrushPath]:
    """The sheet's strokes as `BrushPath`s, with dips and speeds the arm's limits allow.

    Each path's ``meta["speed_m_s"]`` is the arm's paint speed, lowered for tightly bent
    short strokes until the corner acceleration stays under `max_accel_m_s2` (with 10% room).
    """
    paths = BrushPath.from_strokes(sheet.strokes, config.points_per_stroke)
    for j, path in enumerate(paths):
        path.meta["speed_m_s"] = corner_safe_speed(path, paint_speed_m_s, max_accel_m_s2)
        path.meta["stroke_id"] = int(sheet.stroke_ids[j])
        if j == 0 or (config.dip_every and j % config.dip_every == 0):
            path.meta["dip_before"] = True
    return paths


def capture_strokes(
    arm: Arm,
    camera: Camera,
    canvas_calibration: CanvasCalibration,
    brush: Brush,
    canvas: Canvas | None,
    n: int,
    out_path: str | Path,
    config: CaptureConfig | None = None,
    on_paper_change: Callable[[int], None] | None = None,
    on_progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> CaptureReport:
    """Paint, capture and cut out n strokes; write the stroke dataset (see the module docstring).

    Args:
        arm: connected arm holding `brush` (loaded with the config's colour at its paint well).
        camera: connected camera that sees the whole canvas and its corner markers.
        canvas_calibration: `robot.calibration.calibrate_canvas` of this camera (must exist:
            calibrate first).
        brush: the brush's ranges; the shapes span them.
        canvas: the sheet's size (m); None: the calibration's canvas.
        n: strokes to paint.
        out_path: stroke dataset ``.npz`` to write.
        config: capture settings.
        on_paper_change: called as ``on_paper_change(sheet_index)`` before every sheet after
            the first, once the arm is home: it returns when a blank sheet lies there (a prompt
            for a person; `SimArm.load_canvas_image` in simulation). Required when n strokes
            need more than one sheet.
        on_progress: called with dicts ``{"stage": "paint" | "capture", "sheet", "sheets",
            "stroke", "strokes"}`` (strokes done over the whole capture).
        should_stop: polled between strokes; True stops the arm, and nothing is written.
    Returns:
        The `CaptureReport`. Raises RuntimeError when the arm faults (nothing written).
    """
    cfg = config or CaptureConfig()
    t0 = time.perf_counter()
    progress = on_progress or (lambda info: None)
    stop = should_stop or (lambda: False)
    canvas = canvas or canvas_calibration.canvas
    cal = canvas_calibration.canvas
    if max(abs(cal.width_m - canvas.width_m), abs(cal.height_m - canvas.height_m)) > 1e-6:
        raise ValueError(
            f"the canvas ({canvas.width_m} x {canvas.height_m} m) is not the calibrated one "
            f"({cal.width_m} x {cal.height_m} m)"
        )
    layout = CropLayout.for_brush(brush, cfg.meters_per_pixel, cfg.pad_m)
    margin = max(cfg.margin_m, arm.config.workspace.margin_m)
    sheets = plan_stroke_grid(brush, canvas, n, cfg.seed, layout, margin, cfg.gap_m, cfg.color)
    if len(sheets) > 1 and on_paper_change is None:
        raise ValueError(
            f"{n} strokes need {len(sheets)} sheets ({len(sheets[0])} per sheet): pass "
            "on_paper_change to change the paper, or capture fewer strokes"
        )
    report = CaptureReport(strokes_planned=n, layout=layout.to_dict())
    expected_px = _expected_ink_px(brush, layout, sheets)
    intensity, params, sheet_of, kept_ids = [], [], [], []
    done = 0

    def capture() -> np.ndarray:
        """Home the arm, settle, average `cfg.frames` frames: (H, W, 3) float32 0..255."""
        arm.home()
        if cfg.settle_s:
            time.sleep(cfg.settle_s)
        return np.mean([camera.capture().astype(np.float32) for _ in range(cfg.frames)], axis=0)

    for sheet in sheets:
        if stop():
            report.stopped = True
            break
        # 1-2. a blank sheet and its reference frame
        if sheet.index > 0:
            arm.home()
            on_paper_change(sheet.index)
        reference = capture()
        # 3. paint the sheet's strokes
        info = {"sheet": sheet.index, "sheets": len(sheets), "strokes": n}

        def painted(k: int, total: int, base: int = done, info: dict = info) -> None:
            progress({"stage": "paint", **info, "stroke": base + k})
            if stop():
                arm.stop()

        limits = arm.config.limits
        paths = sheet_paths(sheet, cfg, arm.config.paint_speed_m_s, limits.max_accel_m_s2)
        result = arm.execute(paths, on_progress=painted)
        report.sheets += 1
        if result.stopped or stop():
            report.stopped = True
            break
        if not result.completed:
            raise RuntimeError(
                f"sheet {sheet.index}: the arm did not finish ({result.summary()}); "
                "nothing was written"
            )
        # 4-5. the painted sheet; cut out, difference and check every stroke
        after = capture()
        shapes = sheet.shapes
        for j, stroke_id in enumerate(sheet.stroke_ids):
            start = tuple(float(v) for v in sheet.strokes.position[j])
            dark = crop_darkness(
                rectify_crop(canvas_calibration, reference, start, layout),
                rectify_crop(canvas_calibration, after, start, layout),
                cfg.color,
            )  # fmt: skip
            why = _reject_reason(dark, expected_px[int(stroke_id)], cfg.min_ink_fraction)
            if why:
                report.rejected[int(stroke_id)] = why
                continue
            intensity.append(np.round(dark * 255.0).astype(np.uint8))
            params.append(shapes[j])
            sheet_of.append(sheet.index)
            kept_ids.append(int(stroke_id))
        done += len(sheet)
        progress({"stage": "capture", **info, "stroke": done})

    report.seconds = time.perf_counter() - t0
    if report.stopped or not intensity:
        return report
    p = np.asarray(params, np.float32)  # (N, 3) length, bend, z; alpha (tilt) 0 is added
    save_stroke_dataset(
        out_path, np.stack(intensity), p, layout.meters_per_pixel, layout.start_xy_px,
        np.asarray(sheet_of, np.int64),
    )  # fmt: skip
    report.out_path = str(out_path)
    report.strokes_captured = len(intensity)
    report.seconds = time.perf_counter() - t0
    return report


def _expected_ink_px(brush: Brush, layout: CropLayout, sheets: list[StrokeSheet]) -> np.ndarray:
    """Ink pixels (opacity > 0.5) the analytic model expects of every stroke, by stroke id."""
    x0, x1, y0, y1 = layout.extent_m
    frame = StrokeFrame(x0, x1, y0, y1, layout.width_px, layout.height_px)
    model = AnalyticStrokeModel(brush)
    out = np.zeros(sum(len(s) for s in sheets))
    with torch.no_grad():
        for sheet in sheets:
            s = sheet.strokes
            for i in range(0, len(sheet), 32):
                opacity = model(s.length[i : i + 32], s.bend[i : i + 32], s.pressure[i : i + 32],
                                frame)  # fmt: skip
                out[sheet.stroke_ids[i : i + 32]] = (opacity > 0.5).flatten(1).sum(1).numpy()
    return out


def _reject_reason(dark: np.ndarray, expected_px: float, min_fraction: float) -> str | None:
    """Why a crop's darkness (H, W) is not a usable capture, or None when it is."""
    ink = dark > INK_THRESHOLD
    found = int(ink.sum())
    if found < min_fraction * expected_px:
        return f"no mark: {found} ink px, the brush should leave about {expected_px:.0f}"
    border = np.concatenate([ink[0], ink[-1], ink[:, 0], ink[:, -1]])
    if border.any():
        return f"ink on the crop's border ({int(border.sum())} px): misplaced stroke or a smudge"
    return None
