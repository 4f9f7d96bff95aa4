"""`Arm`: the base class of every arm driver, and the `ExecutionReport` it returns.

Life cycle: ``connect() -> home() -> execute(paths) ... -> disconnect()``. ``stop()`` may be
called from any thread at any time and always works (it is a no-op when idle). Every driver
runs `robot.safety.check_paths` before sending anything, and `execute` reports what was really
sent, how far the machine acknowledged, and why it stopped early, if it did.
"""

from __future__ import annotations

import abc
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
    """

    config_class: type[ArmConfig]

    def __init__(self, config: ArmConfig) -> None:
        self.config = config

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

    def check(self, paths: Sequence[BrushPath]) -> list[SafePath]:
        """The safety check with this arm's workspace, limits and policy (sends nothing)."""
        cfg = self.config
        return check_paths(paths, cfg.workspace, cfg.limits, cfg.on_violation, cfg.paint_speed_m_s)

    def __enter__(self) -> Arm:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        if self.is_connected:
            self.disconnect()
