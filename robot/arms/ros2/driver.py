"""`Ros2Arm`: paints through a ros2_control ``joint_trajectory_controller``.

``execute`` clears any earlier stop, runs `robot.safety.check_paths`, and plans every checked
path from the arm's *measured* joints (``/joint_states``) into joint trajectories *before
anything moves* (an unreachable waypoint or a swept motion leaving the workspace raises, nothing
sent). It then sends one ``control_msgs/action/FollowJointTrajectory`` goal per path (positions,
velocities and times; re-planned from the measured joints when the arm is not where the last
goal left it) and waits for its result:

- only a goal whose *status* is SUCCEEDED with ``error_code`` 0 counts as done; a goal cancelled
  by someone else, aborted (path tolerance, preemption) or rejected is a fault naming why;
- a goal whose controller makes no progress (feedback's desired time and the measured joints
  both stand still) for ``stall_timeout_s`` is cancelled and reported: a slowed (speed-scaled)
  controller is waited for as long as it moves;
- ``stop`` (any thread, any time after ``execute`` began) cancels the active goal and no new
  one is sent; the brush is then lifted straight up to travel height, so that nothing drags
  through wet paint, and the next job starts from where the arm really is.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence

import numpy as np

from robot.arms.arm import Arm, ExecutionReport, ProgressCallback
from robot.arms.ros2.config import Ros2ArmConfig
from robot.arms.ros2.trajectory import (
    CanvasMotion,
    TimedJoints,
    canvas_from_base,
    check_swept,
    dab_motion,
    joint_trajectory,
    lift_motion,
    path_motion,
    rest_to_rest,
)
from robot.errors import DeviceConnectionError, refuses_reconnect, requires_connection
from robot.kinematics import CanvasFrame, nearest_branch
from robot.safety import check_dab
from sim.brush_path import BrushPath

REPLAN_RAD = 1e-3  # rad a measured joint may differ from a plan's start before it is re-planned
STATE_MAX_AGE_S = 1.0  # s, older /joint_states count as lost
MOVED_RAD = 1e-4  # rad of joint motion that counts as progress


def _wait(future, timeout_s: float):
    """Block (outside the executor thread) until an rclpy future is done; None on timeout."""
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    if not done.wait(timeout_s):
        return None
    return future.result()


def _duration(seconds: float):
    from builtin_interfaces.msg import Duration

    sec = int(seconds)
    return Duration(sec=sec, nanosec=min(round((seconds - sec) * 1e9), 999_999_999))


def to_joint_trajectory(joint_names: Sequence[str], traj: TimedJoints):
    """``trajectory_msgs/JointTrajectory`` with positions (rad), velocities (rad/s), times
    from start (s) and, when the `TimedJoints` has them, accelerations (rad/s^2)."""
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    msg = JointTrajectory(joint_names=list(joint_names))
    qdd = traj.qdd if traj.qdd is not None else [None] * len(traj.q)
    for qk, vk, ak, tk in zip(traj.q, traj.qd, qdd, traj.t, strict=True):
        point = JointTrajectoryPoint(
            positions=[float(v) for v in qk],
            velocities=[float(v) for v in vk],
            time_from_start=_duration(float(tk)),
        )
        if ak is not None:
            point.accelerations = [float(v) for v in ak]
        msg.points.append(point)
    return msg


class Ros2Arm(Arm):
    """The ROS 2 arm. See `Ros2ArmConfig`.

    Attributes:
        joints: the last measured joint positions (rad), in ``config.joint_names`` order.
    """

    config_class = Ros2ArmConfig

    def __init__(self, config: Ros2ArmConfig) -> None:
        super().__init__(config)
        self._ros = None
        self._client = None
        self._goal = None  # ClientGoalHandle of the stoppable trajectory being executed
        self._goal_lock = threading.Lock()
        self._stop = threading.Event()
        self._state_lock = threading.Lock()
        self._state: tuple[float, np.ndarray] | None = None  # (monotonic s, joints rad)
        self._moved_at = 0.0  # monotonic s the measured joints last moved
        self.chain = config.serial_chain
        self.joints = np.array(self.chain.ready, dtype=np.float64)

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

    @property
    def deepest_m(self) -> float:
        """m below the surface the brush may ever be pressed (full allowed press)."""
        return self.press_depth_m * self.config.workspace.max_press

    # ---- connection and state -----------------------------------------------------------------
    @refuses_reconnect
    def connect(self) -> None:
        """Start a node, wait for the controller's action server and for ``/joint_states``
        (both within ``server_timeout_s``; a `DeviceConnectionError` names what is missing)."""
        from control_msgs.action import FollowJointTrajectory
        from rclpy.action import ActionClient
        from sensor_msgs.msg import JointState

        from robot.ros.background import BackgroundNode

        cfg = self.config
        ros = BackgroundNode(f"cofrida_ros2_arm_{cfg.name}")
        client = ActionClient(ros.node, FollowJointTrajectory, cfg.action)
        ros.node.create_subscription(JointState, cfg.joint_states_topic, self._on_state, 10)
        if not client.wait_for_server(timeout_sec=cfg.server_timeout_s):
            ros.close()
            raise DeviceConnectionError(
                f"no FollowJointTrajectory server at {cfg.action} within {cfg.server_timeout_s} "
                "s (is the controller running, same ROS_DOMAIN_ID?)"
            )
        deadline = time.monotonic() + cfg.server_timeout_s
        while self._state is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if self._state is None:
            ros.close()
            raise DeviceConnectionError(
                f"no {cfg.joint_states_topic} with joints {list(cfg.joint_names)} within "
                f"{cfg.server_timeout_s} s (is the joint_state_broadcaster running?)"
            )
        self._ros, self._client = ros, client
        self.joints = self.measured_joints()

    def _on_state(self, msg) -> None:
        names = list(msg.name)
        try:
            q = np.array([msg.position[names.index(j)] for j in self.config.joint_names])
        except (ValueError, IndexError):
            return  # another robot's joints, or a partial message
        now = time.monotonic()
        with self._state_lock:
            if self._state is None or np.abs(q - self._state[1]).max() > MOVED_RAD:
                self._moved_at = now
            self._state = (now, q)

    def measured_joints(self) -> np.ndarray:
        """The latest ``/joint_states`` (rad, config joint order). Raises
        `DeviceConnectionError` when none arrived for ``STATE_MAX_AGE_S``."""
        with self._state_lock:
            state = self._state
        if state is None or time.monotonic() - state[0] > STATE_MAX_AGE_S:
            raise DeviceConnectionError(
                f"no {self.config.joint_states_topic} for {STATE_MAX_AGE_S} s: the arm's "
                "position is unknown, nothing is sent"
            )
        return state[1].copy()

    def fresh_joints(self, near: np.ndarray | None = None, timeout_s: float = 1.0) -> np.ndarray:
        """Joints from a ``/joint_states`` message received after this call; with ``near``,
        waits (up to timeout_s) for one within ``REPLAN_RAD`` of it (the arm settling at the end
        of a goal). Returns the latest measurement either way."""
        since = time.monotonic()
        deadline = since + timeout_s
        while time.monotonic() < deadline:
            with self._state_lock:
                state = self._state
            fresh = state is not None and state[0] > since
            if fresh and (near is None or np.abs(state[1] - near).max() <= REPLAN_RAD):
                return state[1].copy()
            time.sleep(0.005)
        return self.measured_joints()

    def tip(self, q: np.ndarray) -> np.ndarray:
        """(3,) canvas x m, y m, height m of the brush tip for joints q."""
        return canvas_from_base(self.frame, self.chain.fk(q)[:3, 3])[0]

    # ---- motion ------------------------------------------------------------------------------
    @requires_connection
    def home(self) -> None:
        """Go to the rest pose (the chain's ready joints, each joint on the turn nearest where
        it is) without sweeping through the canvas:
        lift, travel at travel height to the reach-box point nearest the rest pose's tip, rise
        to the rest pose's height, then one joint move, checked (swept) like every motion.
        Raises `SafetyError` (before that last move) when it would pass below travel height,
        `DeviceConnectionError` when the controller fails."""
        self._stop.clear()
        self.lift()
        self._run(self.home_trajectories(self.fresh_joints()), "home")

    def home_trajectories(self, q0: np.ndarray) -> list[TimedJoints]:
        """The two trajectories of `home` from joints q0 (empty when already there)."""
        cfg, ws = self.config, self.config.workspace
        ready = np.array(self.chain.ready, dtype=np.float64)
        if float(np.abs(ready - q0).max()) < REPLAN_RAD:
            return []
        goal, start = self.tip(ready), self.tip(q0)
        inset = ws.reach_margin_m - 0.005  # m, a little inside the reach box
        x = float(np.clip(goal[0], -inset, ws.canvas_width_m + inset))
        y = float(np.clip(goal[1], -inset, ws.canvas_height_m + inset))
        up, high = ws.travel_height_m, max(float(goal[2]), ws.travel_height_m)
        motion = CanvasMotion(
            np.array([start, (x, y, up), (x, y, high)]),
            np.array([cfg.limits.travel_speed_m_s, cfg.plunge_speed_m_s * 5]),
        )
        approach = joint_trajectory(
            self.chain, self.frame, motion, q0, cfg.max_joint_speed_rad_s, ws, self.deepest_m,
            cfg.accel_limit,
        )  # fmt: skip
        q1 = approach.q[-1]
        near = nearest_branch(ready, q1, np.array(self.chain.joint_limits))  # same pose
        error = None
        for target in (near, ready):  # whole turns nearest q1 first, then the literal joints
            final = rest_to_rest(q1, target, cfg.max_joint_speed_rad_s, cfg.accel_limit)
            try:
                check_swept(final, self.chain, self.frame, np.array([self.tip(q1), goal]), ws,
                            self.deepest_m)  # fmt: skip
                break
            except ValueError as e:
                error = e
        else:
            raise type(error)(f"home: the joint move to the rest pose would sweep {error}")
        return [approach, final]

    def _run(self, trajectories: list[TimedJoints], what: str) -> None:
        for traj in trajectories:
            outcome = self._send(traj)
            if outcome != "done":
                raise DeviceConnectionError(f"{what}: {outcome}")

    def plan_trajectory(self, sp, q0: np.ndarray) -> TimedJoints:
        """One checked path as a joint trajectory from joints q0; raises naming the path."""
        cfg = self.config
        motion = path_motion(
            sp, self.tip(q0), cfg.workspace, cfg.limits.travel_speed_m_s, cfg.plunge_speed_m_s,
            self.press_depth_m,
        )  # fmt: skip
        try:
            return joint_trajectory(
                self.chain, self.frame, motion, q0, cfg.max_joint_speed_rad_s, cfg.workspace,
                self.deepest_m, cfg.accel_limit,
            )  # fmt: skip
        except ValueError as e:  # UnreachableError, SafetyError
            raise type(e)(f"path {sp.index}: {e}") from None

    def plan_trajectories(self, safe, q0: np.ndarray | None = None) -> list[TimedJoints]:
        """A trajectory per checked path, chained from joints q0 (default: measured)."""
        q = self.fresh_joints() if q0 is None else np.asarray(q0, dtype=np.float64)
        out = []
        for sp in safe:
            out.append(self.plan_trajectory(sp, q))
            q = out[-1].q[-1]
        return out

    @requires_connection
    def execute(
        self, paths: Sequence[BrushPath], on_progress: ProgressCallback | None = None
    ) -> ExecutionReport:
        self._stop.clear()  # first: a stop from here on ends this job
        safe = self.check(paths)
        trajectories = self.plan_trajectories(safe)  # all IK and swept checks first
        report = ExecutionReport(
            paths_total=len(safe),
            moves_total=sum(len(tr.q) for tr in trajectories),
            clipped=[p.index for p in safe if p.clipped],
        )
        t0 = time.monotonic()
        for i, (sp, traj) in enumerate(zip(safe, trajectories, strict=True)):
            if self._stop.is_set():
                report.stopped = True
                break
            try:
                now = self.fresh_joints(near=traj.start)
                if np.abs(now - traj.start).max() > REPLAN_RAD:  # moved since it was planned
                    planned = len(traj.q)
                    traj = self.plan_trajectory(sp, now)
                    report.moves_total += len(traj.q) - planned
            except (DeviceConnectionError, ValueError) as e:
                report.fault = f"path {sp.index}: {e}"
                break
            report.paths.append(sp)
            report.moves_sent += len(traj.q)
            outcome = self._send(traj)
            if outcome != "done":
                report.stopped = outcome == "stopped"
                report.fault = None if report.stopped else f"path {sp.index}: {outcome}"
                break
            report.paths_done = i + 1
            report.acked_index = report.moves_sent - 1
            if on_progress is not None:
                on_progress(i + 1, len(safe))
        if report.stopped or report.fault:
            report.resumable = True
            with contextlib.suppress(DeviceConnectionError):
                self.joints = self.measured_joints()
            lifted = self._lift_after(report)
            if lifted is not None:
                report.fault = f"{report.fault or 'stopped'}; {lifted}"
        report.stream_s = time.monotonic() - t0
        with contextlib.suppress(DeviceConnectionError):
            self.joints = self.measured_joints()
        return report

    def _lift_after(self, report: ExecutionReport) -> str | None:
        """Lift the brush after a stop or a fault; None, or why it could not be lifted."""
        try:
            self._settle()
            self.lift()
        except (DeviceConnectionError, ValueError) as e:
            return f"the brush could not be lifted: {e}"
        return None

    def _settle(self, timeout_s: float = 1.0) -> None:
        """Wait (up to timeout_s) until the measured joints stand still after a stop."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._state_lock:
                still = time.monotonic() - self._moved_at > 0.1
            if still:
                return
            time.sleep(0.02)

    def lift(self) -> None:
        """Lift the brush straight up to travel height from where it is (no-op when it is
        there). Not stopped by `stop` (it is what a stop does). Raises
        `DeviceConnectionError` when the controller fails."""
        cfg = self.config
        q0 = self.fresh_joints()
        motion = lift_motion(self.tip(q0), cfg.workspace, cfg.plunge_speed_m_s)
        if motion is None:
            return
        traj = joint_trajectory(
            self.chain, self.frame, motion, q0, cfg.max_joint_speed_rad_s,
            max_joint_accel_rad_s2=cfg.accel_limit,
        )  # fmt: skip
        outcome = self._send(traj, stoppable=False)
        if outcome != "done":
            raise DeviceConnectionError(f"lifting the brush: {outcome}")

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
        self._stop.clear()
        q0 = self.fresh_joints()
        station = cfg.workspace.paint_station(palette_index) if dip else None
        motion = dab_motion(
            x_m, y_m, height_m, self.tip(q0), cfg.workspace, cfg.limits.travel_speed_m_s,
            cfg.plunge_speed_m_s, self.press_depth_m, station,
        )  # fmt: skip
        deepest = max(self.deepest_m, -height_m)
        traj = joint_trajectory(
            self.chain,
            self.frame,
            motion,
            q0,
            cfg.max_joint_speed_rad_s,
            cfg.workspace,
            deepest,
            cfg.accel_limit,
        )
        outcome = self._send(traj)
        self.joints = self.measured_joints()
        if outcome != "done":
            with contextlib.suppress(DeviceConnectionError, ValueError):
                self.lift()
            raise DeviceConnectionError(f"dab at ({x_m:.4f}, {y_m:.4f}) m: {outcome}")

    def _send(self, traj: TimedJoints, stoppable: bool = True) -> str:
        """One goal; returns "done", "stopped" or a sentence naming the fault."""
        from action_msgs.msg import GoalStatus
        from control_msgs.action import FollowJointTrajectory

        cfg = self.config
        if stoppable and self._stop.is_set():
            return "stopped"
        progress = {"at": time.monotonic(), "desired_s": -1.0}

        def on_feedback(msg) -> None:
            d = msg.feedback.desired.time_from_start
            desired = d.sec + d.nanosec * 1e-9
            if desired > progress["desired_s"] + 1e-3:
                progress["at"], progress["desired_s"] = time.monotonic(), desired

        goal = FollowJointTrajectory.Goal(trajectory=to_joint_trajectory(cfg.joint_names, traj))
        handle = _wait(
            self._client.send_goal_async(goal, feedback_callback=on_feedback), cfg.server_timeout_s
        )
        if handle is None:
            return f"the controller did not answer the goal within {cfg.server_timeout_s} s"
        if not handle.accepted:
            return "the controller rejected the trajectory (goal not accepted)"
        if stoppable:
            with self._goal_lock:
                self._goal = handle
        try:
            if stoppable and self._stop.is_set():
                handle.cancel_goal_async()
            wrapped, progress["at"] = None, time.monotonic()
            future = handle.get_result_async()
            while wrapped is None:
                wrapped = _wait(future, 0.1)
                with self._state_lock:
                    last = max(progress["at"], self._moved_at)
                if wrapped is None and time.monotonic() - last > cfg.stall_timeout_s:
                    handle.cancel_goal_async()
                    _wait(future, 2.0)
                    return (
                        f"no progress from the controller for {cfg.stall_timeout_s} s "
                        "(no feedback, no motion); the goal was cancelled"
                    )
        finally:
            if stoppable:
                with self._goal_lock:
                    self._goal = None
        status, result = wrapped.status, wrapped.result
        if status == GoalStatus.STATUS_CANCELED:
            if stoppable and self._stop.is_set():
                return "stopped"
            return "the trajectory was cancelled by someone else (not by this driver)"
        if status == GoalStatus.STATUS_ABORTED:
            return (
                f"the controller aborted the trajectory: error {result.error_code} "
                f"{result.error_string!r}"
            )
        if status != GoalStatus.STATUS_SUCCEEDED:
            return f"the trajectory ended with goal status {status}"
        if result.error_code != FollowJointTrajectory.Result.SUCCESSFUL:
            return f"controller error {result.error_code}: {result.error_string}"
        return "done"

    def stop(self) -> None:
        """Cancel the active trajectory (the controller holds where it is) and send no new one
        in this job; `execute` then lifts the brush. Never raises."""
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
        with self._state_lock:
            self._state = None
