"""`Arm`: the base class of every arm driver, and the `ExecutionReport` it returns.

Life cycle: ``connect() -> home() -> execute(paths) ... -> disconnect()``. ``stop()`` may be
called from any thread at any time and always works (it is a no-op when idle). Every driver
runs `robot.safety.check_paths` before sending anything, and `execute` reports what was really
sent, how far the machine acknowledged, and why it stopped early, if it did.

Calibrations saved under the arm's name (``robot.calibration``) are loaded when it is built
(``config.use_calibration``): ``robot_to_canvas`` moves every path's points to where they must be
commanded so that they land where the planner meant (in `Arm.check`, before the safety check,
which therefore sees what is really sent); ``brush_height`` tells each driver where the canvas
surface really is (`Arm.surface_offset_m`, `Arm.pressing_depth_m`). `Arm.dab` is the vertical
probe the brush-height procedure uses.
"""

from __future__ import annotations

import abc
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from robot.errors import (
    AlreadyConnectedError,
    NotConnectedError,
    refuses_reconnect,
    requires_connection,
)
from robot.safety import SafePath, check_paths
from sim.brush_path import BrushPath

if TYPE_CHECKING:
    from robot.arms.config import ArmConfig
    from robot.calibration.brush_height import BrushHeight
    from robot.calibration.robot_to_canvas import RobotToCanvas

ProgressCallback = Callable[[int, int], None]
"""Called as ``on_progress(paths_done, paths_total)`` after each path is finished."""

__all__ = [
    "AlreadyConnectedError",
    "Arm",
    "ExecutionReport",
    "NotConnectedError",
    "ProgressCallback",
    "refuses_reconnect",
    "requires_connection",
]


@dataclass
class ExecutionReport:
    """What an `Arm.execute` (or `resume`) really did.

    Attributes:
        paths: the checked paths that were sent (fully or partly), as sent (clipped if so).
        paths_total: paths in the job.
        paths_done: paths the machine finished (acknowledged to their last move).
        moves_total: machine moves (lines, waypoints) in the job.
        moves_sent: moves written to the machine so far, over the whole job.
        acked_index: index of the last move acknowledged in order (-1: none).
        stopped: True when `stop()` ended the job.
        fault: None when the job completed or was stopped; else a sentence naming the fault
            (e.g. ``"error:20 on line 57 (N57 G1 X10 Y4)"``) and where the job stood.
        clipped: indices of paths the safety check changed (policy "clip").
        resumable: True when `resume()` can continue the job from where it stood.
        stream_s: seconds spent sending and waiting for acknowledgements (the last call).
    """

    paths: list[SafePath] = field(default_factory=list)
    paths_total: int = 0
    paths_done: int = 0
    moves_total: int = 0
    moves_sent: int = 0
    acked_index: int = -1
    stopped: bool = False
    fault: str | None = None
    clipped: list[int] = field(default_factory=list)
    resumable: bool = False
    stream_s: float = 0.0

    @property
    def completed(self) -> bool:
        """Every path was painted and acknowledged."""
        return self.fault is None and not self.stopped and self.paths_done == self.paths_total

    def summary(self) -> str:
        """One line for logs and the UI."""
        state = "completed" if self.completed else "stopped" if self.stopped else "FAULT"
        text = (
            f"{state}: {self.paths_done}/{self.paths_total} paths, "
            f"moves acknowledged through {self.acked_index + 1}/{self.moves_total}"
        )
        return f"{text}; {self.fault}" if self.fault else text

    def to_dict(self) -> dict:
        """JSON-able summary (the paths as their indices)."""
        return {
            "paths": [p.index for p in self.paths],
            "paths_total": self.paths_total,
            "paths_done": self.paths_done,
            "moves_total": self.moves_total,
            "moves_sent": self.moves_sent,
            "acked_index": self.acked_index,
            "stopped": self.stopped,
            "fault": self.fault,
            "clipped": list(self.clipped),
            "resumable": self.resumable,
            "stream_s": self.stream_s,
            "completed": self.completed,
        }


class Arm(abc.ABC):
    """A robot that paints `BrushPath`s. Subclasses set ``config_class`` and implement the
    abstract methods; decorate connection-bound methods with `requires_connection`.

    Args:
        config: the arm's registered config dataclass (see `robot.arms.config`).

    Attributes:
        robot_to_canvas: the `RobotToCanvas` correction applied by `check`, or None.
        brush_height: the `BrushHeight` the driver applies to every height, or None.
    """

    config_class: type[ArmConfig]

    def __init__(self, config: ArmConfig) -> None:
        self.config = config
        self.robot_to_canvas: RobotToCanvas | None = None
        self.brush_height: BrushHeight | None = None
        if config.use_calibration:
            self.load_calibration()

    def load_calibration(self) -> list[str]:
        """Load the robot-to-canvas and brush-height calibrations saved under the arm's name
        (each only if it exists). Returns the kinds loaded."""
        from robot.calibration.store import find_calibration

        loaded = []
        data = find_calibration(self.name, "robot_to_canvas")
        if data is not None:
            from robot.calibration.robot_to_canvas import RobotToCanvas

            mapping = RobotToCanvas.from_dict(data)
            ws = self.config.workspace
            size = (ws.canvas_width_m, ws.canvas_height_m)
            if max(abs(a - b) for a, b in zip(mapping.canvas_m, size, strict=True)) > 1e-6:
                warnings.warn(
                    f"robot {self.name!r}: the saved robot-to-canvas calibration is for a "
                    f"{mapping.canvas_m} m canvas, the workspace is {size} m; not applied "
                    "(run `cofrida robot calibrate-robot` again)",
                    stacklevel=2,
                )
            else:
                self.robot_to_canvas = mapping
                loaded.append("robot_to_canvas")
        data = find_calibration(self.name, "brush_height")
        if data is not None:
            from robot.calibration.brush_height import BrushHeight

            self.brush_height = BrushHeight.from_dict(data)
            loaded.append("brush_height")
        return loaded

    @property
    def surface_offset_m(self) -> float:
        """m the canvas surface lies above the configured one (brush-height calibration; 0
        without). Drivers add it to every height they send."""
        return 0.0 if self.brush_height is None else self.brush_height.surface_offset_m

    def pressing_depth_m(self, configured_m: float) -> float:
        """m below the surface at pressing depth 1: the brush-height calibration's when it set
        one, else ``configured_m`` (the driver's config)."""
        bh = self.brush_height
        return configured_m if bh is None or bh.press_depth_m is None else bh.press_depth_m

    @property
    def name(self) -> str:
        """Robot name: where its calibrations are saved."""
        return self.config.name

    @property
    @abc.abstractmethod
    def is_connected(self) -> bool:
        """Whether `connect` succeeded and `disconnect` was not called since."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the connection. Raises `AlreadyConnectedError` if connected."""

    @abc.abstractmethod
    def home(self) -> None:
        """Move to the home (rest) position with the brush lifted."""

    @abc.abstractmethod
    def execute(
        self, paths: Sequence[BrushPath], on_progress: ProgressCallback | None = None
    ) -> ExecutionReport:
        """Check `paths` against the workspace and limits, then paint them in order.

        Returns when the job completed, was stopped or faulted; the report says which.
        Raises `robot.safety.SafetyError` (nothing sent) when the policy is "refuse".
        """

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop as soon as possible, from any thread; never raises for a lost connection."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Lift the brush if possible and close the connection."""

    def resume(self, on_progress: ProgressCallback | None = None) -> ExecutionReport:
        """Continue the last job after a fault or a stop, without repeating or skipping a move.

        Drivers that can resume override this; the default says so.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot resume a job")

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
        """Probe straight down: travel above (x, y), lower the brush tip to ``height_m`` above
        the surface the arm believes in (configured + brush-height calibration; negative:
        below it), lift back to travel height. Returns when the motion is done.

        (x, y) are the arm's own canvas meters: the robot-to-canvas correction is not applied.
        `robot.safety.check_dab` runs first (paint box, ``Workspace.probe_floor_m``).

        Args:
            x_m, y_m: canvas meters.
            height_m: m above the believed surface.
            dip: visit the paint well ``palette_index`` first (``color`` is the paint's sRGB,
                for arms that simulate it).
        Raises:
            robot.safety.SafetyError: outside the paint box or below the probe floor.
            NotImplementedError: the driver cannot probe heights.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot dab (probe the brush height)")

    def check(self, paths: Sequence[BrushPath]) -> list[SafePath]:
        """The robot-to-canvas correction (if loaded), then the safety check with this arm's
        workspace, limits and policy (sends nothing)."""
        cfg = self.config
        if self.robot_to_canvas is not None:
            fix = self.robot_to_canvas.correct
            paths = [fix(p) if isinstance(p, BrushPath) else p for p in paths]
        return check_paths(paths, cfg.workspace, cfg.limits, cfg.on_violation, cfg.paint_speed_m_s)

    def __enter__(self) -> Arm:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        if self.is_connected:
            self.disconnect()
