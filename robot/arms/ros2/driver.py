"""`Ros2Arm`: paints through a ros2_control ``joint_trajectory_controller``.

``execute`` runs `robot.safety.check_paths`, turns every checked path into joints with inverse
kinematics *before anything moves* (an unreachable waypoint raises `UnreachableError`, nothing
sent), then sends one ``control_msgs/action/FollowJointTrajectory`` goal per path and waits for
its result. ``stop`` cancels the active goal; the controller stops at its next segment.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence

import numpy as np

from robot.arms.arm import Arm, ExecutionReport, ProgressCallback
from robot.arms.ros2.config import Ros2ArmConfig
from robot.arms.ros2.trajectory import dab_motion, joint_trajectory, path_motion
from robot.errors import DeviceConnectionError, refuses_reconnect, requires_connection
from robot.kinematics import CanvasFrame
from robot.safety import check_dab
from sim.brush_path import BrushPath


def _wait(future, timeout_s: float):
    """Block (outside the executor thread) until an rclpy future is done; None on timeout."""
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    if not done.wait(timeout_s):
        return None
    return future.result()


def to_joint_trajectory(joint_names: Sequence[str], q: np.ndarray, t: np.ndarray):
    """``trajectory_msgs/JointTrajectory`` from (N, dof) rad and (N,) s from start."""
    from builtin_interfaces.msg import Duration
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    msg = JointTrajectory(joint_names=list(joint_names))
    for qk, tk in zip(q, t, strict=True):
        sec = int(tk)
        msg.points.append(
            JointTrajectoryPoint(
                positions=[float(v) for v in qk],
                time_from_start=Duration(sec=sec, nanosec=round((tk - sec) * 1e9)),
            )
        )
    return msg


class Ros2Arm(Arm):
    """The ROS 2 arm. See `Ros2ArmConfig`.

    Attributes:
        joints: last commanded joint positions (rad); the rest pose after `connect`.
    """

    config_class = Ros2ArmConfig

    def __init__(self, config: Ros2ArmConfig) -> None:
        super().__init__(config)
        self._ros = None
        self._client = None
        self._goal = None  # ClientGoalHandle of the trajectory being executed
        self._goal_lock = threading.Lock()
        self._stop = threading.Event()
        self.chain = config.serial_chain
        self.joints = np.array(self.chain.ready, dtype=np.float64)
        self._xy = (0.0, 0.0)  # m, canvas position of the lifted brush (believed)

    @property
    def is_connected(self) -> bool:
        return self._ros is not None

    @property
    def frame(self) -> CanvasFrame:
        """The canvas frame: the config's, its surface moved by the brush-height calibration."""
        x, y, z = self.config.canvas_origin_m
        return CanvasFrame((x, y, z + self.surface_offset_m), self.config.canvas_yaw_rad)

    @property
    def press_depth_m(self) -> float:
        """m below the surface at pressing depth 1 (config, or the brush-height calibration)."""
        return self.pressing_depth_m(self.config.press_depth_m)

    @refuses_reconnect
    def connect(self) -> None:
        """Start a node and wait for the controller's action server."""
        from control_msgs.action import FollowJointTrajectory
        from rclpy.action import ActionClient

        from robot.ros.background import BackgroundNode

        ros = BackgroundNode(f"cofrida_ros2_arm_{self.config.name}")
        client = ActionClient(ros.node, FollowJointTrajectory, self.config.action)
        if not client.wait_for_server(timeout_sec=self.config.server_timeout_s):
            ros.close()
            raise DeviceConnectionError(
                f"no FollowJointTrajectory server at {self.config.action} within "
                f"{self.config.server_timeout_s} s (is the controller running, same "
                "ROS_DOMAIN_ID?)"
            )
        self._ros, self._client = ros, client

    @requires_connection
    def home(self) -> None:
        """Lift and go to the rest pose (the chain's ready joints)."""
        ready = np.array(self.chain.ready, dtype=np.float64)
        step = float(np.abs(ready - self.joints).max())
        t = max(step / self.config.max_joint_speed_rad_s, 0.5)
        self._send(ready[None], np.array([t]))
        self.joints = ready
        self._xy = (0.0, 0.0)

    def plan_trajectories(self, safe) -> list[tuple[np.ndarray, np.ndarray]]:
        """(q, t) per checked path, by IK from the current joints; raises `UnreachableError`
        naming the path before anything is sent."""
        cfg = self.config
        out, seed, xy = [], self.joints, self._xy
        for sp in safe:
            motion = path_motion(
                sp, xy, cfg.workspace, cfg.limits.travel_speed_m_s, cfg.plunge_speed_m_s,
                self.press_depth_m,
            )  # fmt: skip
            try:
                q, t = joint_trajectory(
                    self.chain, self.frame, motion, seed, cfg.max_joint_speed_rad_s
                )
            except ValueError as e:
                raise type(e)(f"path {sp.index}: {e}") from None
            out.append((q, t))
            seed, xy = q[-1], (float(sp.points[-1, 0]), float(sp.points[-1, 1]))
        return out

    @requires_connection
    def execute(
        self, paths: Sequence[BrushPath], on_progress: ProgressCallback | None = None
    ) -> ExecutionReport:
        safe = self.check(paths)
        trajectories = self.plan_trajectories(safe)  # all IK first: all or nothing
        self._stop.clear()
        report = ExecutionReport(
            paths_total=len(safe),
            moves_total=sum(len(q) for q, _ in trajectories),
            clipped=[p.index for p in safe if p.clipped],
        )
        t0 = time.monotonic()
        for i, (sp, (q, t)) in enumerate(zip(safe, trajectories, strict=True)):
            if self._stop.is_set():
                report.stopped = True
                break
            report.paths.append(sp)
            report.moves_sent += len(q)
            outcome = self._send(q, t)
            if outcome != "done":
                report.stopped = outcome == "stopped"
                report.fault = None if report.stopped else f"path {sp.index}: {outcome}"
                break
            self.joints, self._xy = q[-1], (float(sp.points[-1, 0]), float(sp.points[-1, 1]))
            report.paths_done = i + 1
            report.acked_index = report.moves_sent - 1
            if on_progress is not None:
                on_progress(i + 1, len(safe))
        report.stream_s = time.monotonic() - t0
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
        """A brush-height probe as one trajectory (see `Arm.dab`); IK for every waypoint before
        anything moves. Raises `robot.errors.DeviceConnectionError` when the controller fails
        or the probe is stopped."""
        cfg = self.config
        check_dab(cfg.workspace, x_m, y_m, height_m)
        station = cfg.workspace.paint_station(palette_index) if dip else None
        motion = dab_motion(
            x_m, y_m, height_m, self._xy, cfg.workspace, cfg.limits.travel_speed_m_s,
            cfg.plunge_speed_m_s, self.press_depth_m, station,
        )  # fmt: skip
        q, t = joint_trajectory(
            self.chain, self.frame, motion, self.joints, cfg.max_joint_speed_rad_s
        )
        self._stop.clear()
        outcome = self._send(q, t)
        if outcome != "done":
            raise DeviceConnectionError(f"dab at ({x_m:.4f}, {y_m:.4f}) m: {outcome}")
        self.joints, self._xy = q[-1], (float(x_m), float(y_m))

    def _send(self, q: np.ndarray, t: np.ndarray) -> str:
        """One goal; returns "done", "stopped" or a sentence naming the fault."""
        from control_msgs.action import FollowJointTrajectory

        goal = FollowJointTrajectory.Goal(
            trajectory=to_joint_trajectory(self.config.joint_names, q, t)
        )
        handle = _wait(self._client.send_goal_async(goal), self.config.server_timeout_s)
        if handle is None:
            return "the controller did not answer the goal"
        if not handle.accepted:
            return "the controller rejected the trajectory"
        with self._goal_lock:
            self._goal = handle
        try:
            if self._stop.is_set():
                handle.cancel_goal_async()
            wrapped = _wait(handle.get_result_async(), float(t[-1]) + self.config.result_margin_s)
        finally:
            with self._goal_lock:
                self._goal = None
        if wrapped is None:
            return "no result from the controller in time"
        if self._stop.is_set():
            return "stopped"
        result = wrapped.result
        if result.error_code != FollowJointTrajectory.Result.SUCCESSFUL:
            return f"controller error {result.error_code}: {result.error_string}"
        return "done"

    def stop(self) -> None:
        """Cancel the active trajectory (the controller halts at its next segment)."""
        self._stop.set()
        with self._goal_lock:
            goal = self._goal
        if goal is not None:
            with contextlib.suppress(Exception):  # a lost connection must not stop a stop
                goal.cancel_goal_async()

    def disconnect(self) -> None:
        self.stop()
        if self._ros is not None:
            self._ros.close()
        self._ros = self._client = None
