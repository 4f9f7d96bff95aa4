"""`SimArm`: executes `BrushPath`s on a simulated canvas with the physical brush model.

Paint handling follows the planner's flags: ``meta["clean_before"]`` washes the brush,
``meta["dip_before"]`` loads paint, and a path whose colour is not the loaded paint gets a clean
and a dip anyway (a real painter would not drag red into blue). With ``speed_factor`` > 0 the arm
takes as long as the real arm would (travel + painting + station visits) divided by the factor;
`stop()` from another thread interrupts the wait and the job between paths.

The canvas need not be where the config says (``misregistration_*``, ``surface_error_m``): the
arm then paints where its commands really land (`SimArm.true_xy`) and presses as deep as the true
surface makes it; parts of a path that stay above the true surface leave no mark. That is what
the robot-to-canvas and brush-height calibrations measure, and what their corrections undo.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import numpy as np
import torch

from robot.arms.arm import Arm, ExecutionReport, ProgressCallback
from robot.arms.sim.config import SimArmConfig
from robot.errors import refuses_reconnect, requires_connection
from robot.safety import SafePath, check_dab
from sim.brush import Brush
from sim.brush_path import BrushPath
from sim.canvas import Canvas
from sim.physical_brush import PhysicalBrush


class SimArm(Arm):
    """The simulated arm. See `SimArmConfig` for its settings.

    Attributes:
        canvas: the `sim.Canvas` it paints on (workspace size at ``config.canvas_px``).
        dips, cleans: counts of station visits so far (tests and the UI read them).
        dabs: ``(x m, y m, height m)`` of every `dab` so far, as commanded.
    """

    config_class = SimArmConfig

    def __init__(self, config: SimArmConfig) -> None:
        super().__init__(config)
        ws = config.workspace
        self.canvas = Canvas(ws.canvas_width_m, ws.canvas_height_m, config.canvas_px)
        self._image: torch.Tensor | None = None
        self._brush: PhysicalBrush | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._position = (0.0, 0.0)  # m, brush xy (starts at the canvas' top-left corner)
        self.dips = 0
        self.cleans = 0
        self.dabs: list[tuple[float, float, float]] = []

    @property
    def is_connected(self) -> bool:
        return self._image is not None

    @refuses_reconnect
    def connect(self) -> None:
        """Start with a clean brush and a blank (white) canvas."""
        self._image = torch.ones(3, *self.canvas.size_px)
        self._brush = PhysicalBrush(Brush.preset(self.config.brush), seed=self.config.seed)

    @requires_connection
    def home(self) -> None:
        self._travel_to((0.0, 0.0))

    @requires_connection
    def canvas_image(self) -> torch.Tensor:
        """A copy of the canvas as painted so far: (3, H, W) float sRGB in 0..1."""
        with self._lock:
            return self._image.clone()

    @requires_connection
    def load_canvas_image(self, image: torch.Tensor | None = None) -> None:
        """Replace the canvas (a fresh sheet, a person's painting, a colour chart on it).

        Args:
            image: (3, H, W) float in 0..1 at the canvas' pixel size; None: blank white.
        """
        if image is None:
            image = torch.ones(3, *self.canvas.size_px)
        if tuple(image.shape) != (3, *self.canvas.size_px):
            raise ValueError(f"image must be (3, {self.canvas.size_px}), got {tuple(image.shape)}")
        with self._lock:
            self._image = image.detach().to("cpu", torch.float32).clamp(0, 1).clone()

    @property
    def brush_state(self) -> tuple[tuple[float, ...] | None, float]:
        """(loaded colour or None, paint load 0..1)."""
        b = self._brush
        return (None if b.color is None else tuple(b.color.tolist()), b.paint_load)

    @requires_connection
    def execute(
        self, paths: Sequence[BrushPath], on_progress: ProgressCallback | None = None
    ) -> ExecutionReport:
        safe = self.check(paths)
        self._stop.clear()
        report = ExecutionReport(
            paths_total=len(safe),
            moves_total=sum(len(p.points) for p in safe),
            clipped=[p.index for p in safe if p.clipped],
        )
        for i, sp in enumerate(safe):
            if self._stop.is_set():
                report.stopped = True
                break
            color = torch.tensor(sp.color, dtype=torch.float32)
            loaded = self._brush.color
            wrong_paint = loaded is not None and not torch.equal(loaded, color)
            if sp.clean_before or wrong_paint:
                self._visit(self.config.workspace.water_station)
                self._brush.clean()
                self.cleans += 1
            if sp.dip_before or self._brush.color is None:
                self._visit(self.config.workspace.paint_station(sp.palette_index))
                self._brush.dip(color)
                self.dips += 1
            start = (float(sp.points[0, 0]), float(sp.points[0, 1]))
            if not self._travel_to(start) or not self._wait(sp.duration_s):
                report.stopped = True
                break
            self._paint(sp, color)
            self._position = (float(sp.points[-1, 0]), float(sp.points[-1, 1]))
            report.paths.append(sp)
            report.paths_done = i + 1
            report.moves_sent += len(sp.points)
            report.acked_index = report.moves_sent - 1
            if on_progress is not None:
                on_progress(i + 1, len(safe))
        return report

    @requires_connection
    def dab(
        self,
        x_m: float,
        y_m: float,
        height_m: float,
        *,
        dip: bool = False,
        color: tuple[float, float, float] = (0.0, 0.0, 0.0),
        palette_index: int = 0,
    ) -> None:
        """A vertical probe (see `Arm.dab`); it marks where the tip reaches the true surface.

        An empty brush is dipped into ``color`` first (as `execute` does).
        """
        ws = self.config.workspace
        check_dab(ws, x_m, y_m, height_m)
        paint = torch.tensor(color, dtype=torch.float32)
        if dip or self._brush.color is None:
            self._visit(ws.paint_station(palette_index))
            self._brush.dip(paint)
            self.dips += 1
        self._travel_to((x_m, y_m))
        self.dabs.append((float(x_m), float(y_m), float(height_m)))
        # how deep the tip reaches below the true surface, as a pressing depth
        press = (self.config.surface_error_m - self.surface_offset_m - height_m) / (
            self.config.press_depth_m
        )
        if press >= 0:
            xy = self.true_xy(np.array([[x_m, y_m]]))[0]
            z = min(press, 1.0)
            points = torch.tensor([[xy[0], xy[1], z], [xy[0], xy[1], z]], dtype=torch.float32)
            with self._lock:
                self._image = self._brush.paint(self._image, BrushPath(points, paint), self.canvas)
        self._wait(2 * (ws.travel_height_m - height_m) / self.config.limits.travel_speed_m_s)

    def true_xy(self, commanded_m: np.ndarray) -> np.ndarray:
        """(N, 2) commanded canvas meters -> (N, 2) where the brush really lands (the
        config's mis-registration: scale and turn about the canvas centre, then the offset)."""
        cfg = self.config
        p = np.array(np.atleast_2d(commanded_m), np.float64)
        exact = cfg.misregistration_offset_m == (0.0, 0.0) and cfg.misregistration_scale == 1
        if exact and cfg.misregistration_rotation_deg == 0:
            return p  # exactly where the config says (bit for bit)
        centre = 0.5 * np.array([self.canvas.width_m, self.canvas.height_m])
        a = math.radians(cfg.misregistration_rotation_deg)
        turn = cfg.misregistration_scale * np.array(
            [[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]
        )
        return centre + (p - centre) @ turn.T + np.asarray(cfg.misregistration_offset_m)

    def _paint(self, sp: SafePath, color: torch.Tensor) -> None:
        """Paint a checked path where it really lands, pressed as deep as the true surface
        makes it; runs of waypoints that stay above the surface leave no mark."""
        cfg = self.config
        # commanded height above the believed surface is -z * press depth; the true surface is
        # surface_error_m - surface_offset_m above the believed one
        shift = cfg.surface_error_m - self.surface_offset_m  # m
        depth = self.pressing_depth_m(cfg.press_depth_m)
        press = sp.points[:, 2].copy()  # (K,) true pressing depth, < 0: above the surface
        if shift != 0 or depth != cfg.press_depth_m:
            press = (shift + press * depth) / cfg.press_depth_m
        xy = self.true_xy(sp.points[:, :2])  # (K, 2) m
        touching = np.concatenate([[False], press >= 0, [False]])
        edges = np.flatnonzero(np.diff(touching.astype(np.int8)))  # run starts and ends
        for start, end in zip(edges[::2], edges[1::2], strict=True):
            run = np.concatenate([xy[start:end], np.clip(press[start:end, None], 0, 1)], 1)
            if len(run) == 1:  # one waypoint touches: a dab
                run = np.repeat(run, 2, axis=0)
            path = BrushPath(torch.from_numpy(run.astype(np.float32)), color)
            with self._lock:
                self._image = self._brush.paint(self._image, path, self.canvas)

    def stop(self) -> None:
        """Interrupt the current job (any thread); the path being painted is not started."""
        self._stop.set()

    def disconnect(self) -> None:
        self._stop.set()
        self._image = None
        self._brush = None

    # ---- timing -------------------------------------------------------------------------------
    def _visit(self, station: tuple[float, float]) -> bool:
        return self._travel_to(station) and self._wait(self.config.dip_time_s)

    def _travel_to(self, xy: tuple[float, float]) -> bool:
        dist = math.dist(self._position, xy)
        self._position = xy
        return self._wait(dist / self.config.limits.travel_speed_m_s)

    def _wait(self, real_seconds: float) -> bool:
        """Sleep real_seconds / speed_factor (none for 0 or inf); False if stopped meanwhile."""
        f = self.config.speed_factor
        if f == 0 or math.isinf(f):
            return not self._stop.is_set()
        return not self._stop.wait(real_seconds / f)
