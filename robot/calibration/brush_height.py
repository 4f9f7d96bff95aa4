"""Brush height: find the height of the canvas surface by dabbing lower and lower.

An arm's configuration says where the canvas surface is (GRBL: ``surface_z_mm``; ROS 2: the z
of ``canvas_origin_m``), to within the thickness of a board and a hand-measured brush length.
The guided procedure (`find_brush_height`):

1. the arm dabs at a test spot (`robot.arms.Arm.dab`: lower to a height above the surface it
   believes in, lift) starting ``start_height_m`` above it, where the brush must not touch;
2. after each dab a `MarkCheck` says whether a mark appeared: the camera (`CameraMarkCheck`,
   new marks near the spot since the first frame) or a person (`PersonMarkCheck`, y/n);
3. each dab is ``step_m`` lower; the first that marks ends it: the surface lies at that height
   or less than one step above it. Bristles touch at ``surface_offset_m``, the first marking
   height (contact guaranteed; one step of extra pressure at most).
4. no mark down to ``lowest_m`` (never deeper than ``Workspace.probe_floor_m``: below is the
   table): `CalibrationError`, nothing saved.

`BrushHeight` is the result. Saved with `robot.calibration.save_calibration(name,
"brush_height", ...)`, every arm of that name adds ``surface_offset_m`` to its configured
surface (and uses ``press_depth_m`` when set) for all its moves.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from robot.calibration.canvas import CanvasCalibration
from robot.calibration.marks import CanvasWindow, find_marks
from robot.errors import CalibrationError

KIND = "brush_height"  # calibration store name
SPOT_INSET_M = 0.012  # m, default test spot: this far in from the bottom-right corner, away from
# where an arm parks (GRBL: the top-left corner) and outside the robot-to-canvas grid (30 mm in)


@dataclass
class BrushHeight:
    """Where the canvas surface really is, relative to the arm's configured surface.

    Attributes:
        surface_offset_m: m; the surface lies this far above the configured one (negative:
            below). The highest dab that left a mark.
        step_m: m, the resolution: the surface is within one step above ``surface_offset_m``.
        press_depth_m: m below the surface at pressing depth 1 to use from now on; None keeps
            the arm's configured depth.
        dabs: ``[height m, marked]`` of every dab, in order.
        spot_m: (x, y) canvas meters of the test spot.
    """

    surface_offset_m: float
    step_m: float
    press_depth_m: float | None = None
    dabs: list[list] = field(default_factory=list)
    spot_m: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if not np.isfinite(self.surface_offset_m) or not self.step_m > 0:
            raise ValueError("BrushHeight needs a finite surface_offset_m and step_m > 0")
        if self.press_depth_m is not None and not self.press_depth_m > 0:
            raise ValueError(f"BrushHeight.press_depth_m must be > 0, got {self.press_depth_m}")

    def to_dict(self) -> dict:
        return {
            "surface_offset_m": self.surface_offset_m,
            "step_m": self.step_m,
            "press_depth_m": self.press_depth_m,
            "dabs": [[float(h), bool(m)] for h, m in self.dabs],
            "spot_m": list(self.spot_m),
        }

    @classmethod
    def from_dict(cls, data: dict) -> BrushHeight:
        return cls(
            float(data["surface_offset_m"]),
            float(data["step_m"]),
            None if data.get("press_depth_m") is None else float(data["press_depth_m"]),
            [list(d) for d in data.get("dabs", [])],
            tuple(data.get("spot_m", (0.0, 0.0))),
        )


class MarkCheck(abc.ABC):
    """Says after each dab whether the brush left a mark."""

    def start(self) -> None:  # noqa: B027  (optional hook)
        """Called once before the first dab, with the arm home (e.g. a reference frame)."""

    @abc.abstractmethod
    def __call__(self, index: int, height_m: float) -> bool:
        """Did dab ``index`` (0-based), at ``height_m`` above the believed surface, mark?"""


class CameraMarkCheck(MarkCheck):
    """New marks near the test spot, by camera, since the frame taken at `start`.

    Args:
        camera: a connected camera that sees the canvas and its markers.
        canvas_calibration: that camera's canvas calibration.
        spot_m: (x, y) canvas meters where the marks are expected.
        radius_m: half-side of the square searched around the spot (arm placement error).
        color: sRGB 0..1 of the paint.
        darkness: relative loss of light a marked pixel shows at least (0..1).
        min_area_mm2: a mark covers at least this much (the smallest contact of the brush).
        m_per_px: resolution the window is rectified at (m).
        frames: frames averaged per capture.
    """

    def __init__(
        self,
        camera,
        canvas_calibration: CanvasCalibration,
        spot_m: tuple[float, float],
        radius_m: float = 0.01,
        color=(0.0, 0.0, 0.0),
        darkness: float = 0.3,
        min_area_mm2: float = 0.5,
        m_per_px: float = 0.00025,
        frames: int = 1,
    ) -> None:
        self.camera = camera
        self.calibration = canvas_calibration
        self.window = CanvasWindow.around(spot_m, radius_m, m_per_px)
        self.color, self.darkness, self.min_area_mm2 = color, darkness, min_area_mm2
        self.frames = frames
        self.reference: np.ndarray | None = None
        self.last_marks: list = []  # the `Mark`s the last check found

    def _capture(self) -> np.ndarray:
        return np.mean([self.camera.capture().astype(np.float32) for _ in range(self.frames)], 0)

    def start(self) -> None:
        self.reference = self._capture()

    def __call__(self, index: int, height_m: float) -> bool:
        if self.reference is None:
            self.start()
        self.last_marks = find_marks(
            self.calibration, self.reference, self._capture(), self.window, self.color,
            self.darkness, self.min_area_mm2,
        )  # fmt: skip
        return bool(self.last_marks)


class PersonMarkCheck(MarkCheck):
    """Asks a person (arms without a camera): ``y`` / ``n`` after each dab.

    Args:
        ask: prompts and returns the answer; None: ``input`` (a terminal).
    """

    def __init__(self, ask: Callable[[str], str] | None = None) -> None:
        self.ask = ask

    def __call__(self, index: int, height_m: float) -> bool:
        prompt = f"dab {index + 1} at {height_m * 1000:+.2f} mm: did the brush leave a mark? [y/n] "
        ask = self.ask or input
        while True:
            answer = ask(prompt).strip().lower()
            if answer in ("y", "yes"):
                return True
            if answer in ("n", "no"):
                return False


@dataclass
class BrushHeightConfig:
    """The dab sequence; heights are meters above the surface the config puts the canvas at."""

    spot_m: tuple | None = None  # (x, y) canvas m of the dabs; None: `default_spot`
    start_height_m: float = 0.004  # m, first dab: high enough that the brush cannot touch
    step_m: float = 0.0005  # m lowered per dab: the resolution of the result
    lowest_m: float | None = None  # m, deepest dab (negative: below the configured surface);
    # None: -Workspace.probe_floor_m. Never deeper than that floor.
    press_depth_m: float | None = None  # m below the surface at pressing depth 1 to save;
    # None: keep each driver's configured depth
    color: tuple = (0.0, 0.0, 0.0)  # sRGB of the paint (the sim arm dips into it)
    palette_index: int = 0  # paint well to dip into before the first dab
    settle_s: float = 0.0  # s to wait after homing before each check (vibration)

    def __post_init__(self) -> None:
        if not self.step_m > 0:
            raise ValueError(f"step_m must be > 0, got {self.step_m}")
        if self.lowest_m is not None and self.lowest_m >= self.start_height_m:
            raise ValueError("lowest_m must lie below start_height_m")
        if self.press_depth_m is not None and not self.press_depth_m > 0:
            raise ValueError(f"press_depth_m must be > 0, got {self.press_depth_m}")
        self.color = tuple(float(c) for c in self.color)


def default_spot(workspace) -> tuple[float, float]:
    """(x, y) canvas m of the test dabs: ``SPOT_INSET_M`` in from the bottom-right corner."""
    return (workspace.canvas_width_m - SPOT_INSET_M, workspace.canvas_height_m - SPOT_INSET_M)


def dab_heights(config: BrushHeightConfig, probe_floor_m: float) -> np.ndarray:
    """(K,) heights (m) of the dabs, start first, each ``step_m`` lower, none below the floor.

    Raises:
        ValueError: ``lowest_m`` below ``-probe_floor_m`` (the workspace's limit).
    """
    lowest = -probe_floor_m if config.lowest_m is None else config.lowest_m
    if lowest < -probe_floor_m - 1e-12:
        raise ValueError(
            f"lowest_m={lowest} m is deeper than Workspace.probe_floor_m={probe_floor_m} m below "
            "the surface: the brush could hit the table"
        )
    count = int(np.floor((config.start_height_m - lowest) / config.step_m + 1e-9)) + 1
    return np.round(config.start_height_m - config.step_m * np.arange(count), 9)  # whole nm


def find_brush_height(
    arm,
    check: MarkCheck,
    config: BrushHeightConfig | None = None,
    on_progress: Callable[[dict], None] | None = None,
) -> BrushHeight:
    """Dab lower and lower until a mark appears (see the module docstring).

    Args:
        arm: a connected `robot.arms.Arm` with paint at ``config.palette_index``'s well.
        check: says after each dab whether it marked (camera or person).
        config: the dab sequence.
        on_progress: called with ``{"dab": k (1-based), "dabs": K, "height_m": h,
            "marked": bool}`` after every dab.
    Returns:
        The `BrushHeight` (not saved; the caller saves it). The arm's own brush-height
        calibration is switched off while dabbing and restored afterwards.
    Raises:
        CalibrationError: the first dab already marked (start higher), or none marked down to
            the lowest height (nothing is ever sent below it).
    """
    cfg = config or BrushHeightConfig()
    progress = on_progress or (lambda info: None)
    ws = arm.config.workspace
    spot = cfg.spot_m if cfg.spot_m is not None else default_spot(ws)
    spot = (float(spot[0]), float(spot[1]))
    heights = dab_heights(cfg, ws.probe_floor_m)
    if cfg.start_height_m > ws.travel_height_m:
        raise ValueError(
            f"start_height_m={cfg.start_height_m} m is above the travel height "
            f"{ws.travel_height_m} m"
        )
    dabs: list[list] = []
    saved, arm.brush_height = arm.brush_height, None
    try:
        arm.home()
        check.start()
        for k, h in enumerate(heights):
            arm.dab(spot[0], spot[1], float(h), dip=k == 0, color=cfg.color,
                    palette_index=cfg.palette_index)  # fmt: skip
            arm.home()  # out of the camera's (or the person's) view
            if cfg.settle_s:
                time.sleep(cfg.settle_s)
            marked = bool(check(k, float(h)))
            dabs.append([float(h), marked])
            progress({"dab": k + 1, "dabs": len(heights), "height_m": float(h), "marked": marked})
            if marked:
                break
    finally:
        arm.brush_height = saved
    if not dabs[-1][1]:
        raise CalibrationError(
            f"no mark from {len(dabs)} dabs at {heights[0] * 1000:+.2f} .. "
            f"{heights[-1] * 1000:+.2f} mm around the configured surface, and it is never lowered "
            "further (lowest_m / Workspace.probe_floor_m). Check that the brush holds paint, "
            "that the camera sees the spot, and the configured surface height (far too high?)"
        )
    if len(dabs) == 1:
        raise CalibrationError(
            f"the first dab, {heights[0] * 1000:+.2f} mm above the configured surface, already "
            "left a mark: the surface is higher than that; start higher (start_height_m) or "
            "fix the configured surface"
        )
    return BrushHeight(dabs[-1][0], cfg.step_m, cfg.press_depth_m, dabs, spot)
