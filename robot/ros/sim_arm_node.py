"""Simulated arm node: a ``FollowJointTrajectory`` server that paints into a simulated canvas.

    python -m robot.ros.sim_arm_node --arm.chain=ur5e --speed-factor=4 --log=/tmp/points.jsonl

It stands in for ros2_control's ``joint_trajectory_controller`` (and its speed-scaled variant)
so the ``ros2`` arm driver is tested end to end against the standard interface, and behaves like
it where a driver can get it wrong:

- goals are validated when they arrive (joint names in any order, finite positions, increasing
  times, joint limits, joint speed along the *interpolated* motion from where the arm really
  is, the swept brush inside the reach box and never deeper than the pressing depth); a bad
  goal is rejected (not accepted) and its reason logged;
- an accepted goal is played in real time (``--speed-factor``: 1 real time, 4 four times
  faster, 0 no waits) by interpolation between waypoints: quintic when velocities and
  accelerations are given, cubic when velocities are, linear otherwise; ``/joint_states``
  (``sensor_msgs/JointState``) is published at 100 Hz and feedback (desired / actual,
  ``desired.time_from_start``) at 20 Hz;
- ``--speed-scaling=0.4`` plays trajectory time at 40 % (a UR's speed slider; 0 pauses), also
  the ``speed_scaling`` parameter, which may change while a goal plays;
- a cancel holds the arm where it is: status CANCELED, ``error_code`` 0;
- a new goal preempts the active one, which is aborted where it stands;
- ``--abort-at-s=T`` simulates an obstruction: the goal that reaches trajectory time T is
  aborted with ``PATH_TOLERANCE_VIOLATED`` and the arm holds (once);
- ``--initial-joints=a,b,c,d,e,f`` starts the arm elsewhere than the ready pose.

Every goal played (``goal``: start joints, points, times, velocities and accelerations),
every waypoint passed (``point``), every 100 Hz state (``state``: joints and tip), cancel, abort
and rejection is appended to ``--log`` (JSON lines) so tests can check what the arm really did.
Joint positions go back through forward kinematics to canvas meters: where the brush is pressed
inside the canvas it paints with the physical brush model (one ink, reloaded at any station
visit). The canvas is published on ``~/canvas`` (``sensor_msgs/Image``, latched).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

import numpy as np
import rclpy
import torch
from control_msgs.action import FollowJointTrajectory
from rcl_interfaces.msg import SetParametersResult
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import Image, JointState

from robot.arms.config import arm_config_class
from robot.arms.ros2.config import Ros2ArmConfig
from robot.arms.ros2.trajectory import canvas_from_base
from robot.cameras.ros2.ros2_camera import rgb_to_image
from robot.cli_config import split_options
from robot.ros.params import declare_and_build
from sim.brush import Brush
from sim.brush_path import BrushPath
from sim.canvas import Canvas
from sim.physical_brush import PhysicalBrush

SPEED_MARGIN = 1.05  # joint speed accepted up to 5 % over the limit (time rounding)
STATE_HZ = 100.0  # /joint_states and interpolation rate
FEEDBACK_EVERY = 5  # ticks between feedback messages (20 Hz)
SAMPLES = 8  # samples per segment when validating the interpolated motion


class SimArmNode(Node):
    """The simulated joint trajectory controller. See the module docstring.

    Args:
        config: the same `Ros2ArmConfig` the driver uses (chain, frame, joints, limits), or the
            raw ``--arm.*`` options: then declared as ``arm.*`` parameters and built from them.
        canvas_px: canvas image width (px).
        speed_factor: 1 = real time; 0 = no waits.
        log_path: JSON-lines file of every played point and every rejected goal, or None.
        ink: (r, g, b) in 0..1 the brush paints with.
        speed_scaling: fraction of trajectory time played per unit of time (0 pauses); the
            ``speed_scaling`` parameter, settable while running (``ros2 param set``).
        abort_at_s: trajectory time (s) at which the first goal reaching it is aborted.
        initial_joints: where the arm starts (rad); None: the chain's ready pose.
    """

    def __init__(
        self,
        config: Ros2ArmConfig | dict,
        canvas_px: int = 256,
        speed_factor: float = 1.0,
        log_path: str | None = None,
        ink: tuple[float, float, float] = (0.1, 0.1, 0.1),
        speed_scaling: float = 1.0,
        abort_at_s: float | None = None,
        initial_joints: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__("sim_arm")
        if isinstance(config, dict):  # raw --arm.* options: declared arm.* parameters
            options = {**config, "type": "ros2"}
            config = declare_and_build(self, "arm", options, arm_config_class, "ros2")
        self.config = config
        self.chain = config.serial_chain
        self.frame = config.canvas_frame
        ws = config.workspace
        self.canvas = Canvas(ws.canvas_width_m, ws.canvas_height_m, canvas_px)
        self.image = torch.ones(3, *self.canvas.size_px)
        self.brush = PhysicalBrush(Brush.preset("round"), seed=0)
        self.ink = torch.tensor(ink, dtype=torch.float32)
        self.speed_factor = speed_factor
        self.speed_scaling = float(self.declare_parameter("speed_scaling", speed_scaling).value)
        self.add_on_set_parameters_callback(self._on_parameters)  # the speed slider, live
        self.abort_at_s = abort_at_s
        start = self.chain.ready if initial_joints is None else initial_joints
        self.joints = np.array(start, dtype=np.float64)
        self._log = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115
        self._log_lock = threading.Lock()
        self._play = threading.Lock()  # one trajectory plays at a time
        self._active = None  # handle of the playing goal
        self._preempted: set = set()  # handles preempted by a newer goal
        group = ReentrantCallbackGroup()
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.canvas_pub = self.create_publisher(Image, "~/canvas", latched)
        self.state_pub = self.create_publisher(JointState, "/joint_states", 10)
        self.create_timer(1.0 / STATE_HZ, self._publish_state, callback_group=group)
        self._server = ActionServer(
            self,
            FollowJointTrajectory,
            config.action,
            execute_callback=self._execute,
            goal_callback=self._on_goal,
            cancel_callback=lambda _g: CancelResponse.ACCEPT,
            callback_group=group,
        )
        self.publish_canvas()
        self.get_logger().info(f"FollowJointTrajectory server on {config.action}")

    def _on_parameters(self, params) -> SetParametersResult:
        for p in params:
            if p.name == "speed_scaling":
                value = float(p.value)
                if not 0 <= value <= 1:
                    return SetParametersResult(successful=False, reason="speed_scaling: 0..1")
                self.speed_scaling = value
        return SetParametersResult(successful=True)

    # ---- checks -------------------------------------------------------------------------------
    def validate(self, traj, start: np.ndarray) -> str | None:
        """Why a JointTrajectory must be refused when played from joints ``start``, or None."""
        names = tuple(self.config.joint_names)
        if sorted(traj.joint_names) != sorted(names):
            return f"joint_names {list(traj.joint_names)} are not {list(names)}"
        if not traj.points:
            return "empty trajectory"
        q, qd, qdd, t = self.unpack(traj)
        if q is None:
            return ("every point needs one finite position (and velocity, acceleration, if any) "
                    "per joint; accelerations need velocities")  # fmt: skip
        if t[0] <= 0 or np.any(np.diff(t) <= 0):
            return "time_from_start must be > 0 and strictly increasing"
        lim = np.array(self.chain.joint_limits)
        if np.any(q < lim[:, 0]) or np.any(q > lim[:, 1]):
            return "a point breaks the joint limits"
        pos, vel, seg = self.sample(start, q, qd, qdd, t, SAMPLES)
        speed = np.abs(vel).max(axis=1)
        if speed.max() > self.config.max_joint_speed_rad_s * SPEED_MARGIN:
            k = int(seg[speed.argmax()])
            return f"segment {k}: joint speed {speed.max():.3f} rad/s over the limit"
        xyh = self.tool_canvas(pos)
        ws = self.config.workspace
        ends = self.tool_canvas(np.vstack([start[None], q]))
        approach = [not (ws.in_reach(*ends[k, :2]) and ws.in_reach(*ends[k + 1, :2]))
                    for k in range(len(q))]  # fmt: skip
        for (x, y, _h), k in zip(xyh, seg, strict=True):
            if not approach[k] and not ws.in_reach(x, y):
                return f"segment {k}: the brush passes ({x:.3f}, {y:.3f}) m, outside the reach box"
        if xyh[:, 2].min() < -self.config.press_depth_m * ws.max_press - 1e-4:
            return "brush pressed deeper than the workspace allows"
        return None

    def unpack(self, traj):
        """(q, qd or None, qdd or None, t) in the config's joint order, or four Nones when
        bad."""
        order = [list(traj.joint_names).index(j) for j in self.config.joint_names]
        try:
            q = np.array([[p.positions[i] for i in order] for p in traj.points], dtype=np.float64)
            has_v = all(len(p.velocities) for p in traj.points)
            qd = (
                np.array([[p.velocities[i] for i in order] for p in traj.points], dtype=np.float64)
                if has_v
                else None
            )
            has_a = all(len(p.accelerations) for p in traj.points)
            if has_a and not has_v:
                return None, None, None, None
            qdd = (
                np.array([[p.accelerations[i] for i in order] for p in traj.points], dtype=float)
                if has_a
                else None
            )
        except IndexError:
            return None, None, None, None
        if not all(x is None or np.isfinite(x).all() for x in (q, qd, qdd)):
            return None, None, None, None
        t = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9
                      for p in traj.points])  # fmt: skip
        return q, qd, qdd, t

    @staticmethod
    def at(start, q, qd, t, tau: float, qdd=None):
        """Joints and joint velocities at trajectory time tau (s): between waypoints a quintic
        when velocities and accelerations are given (both zero at the start), a cubic Hermite
        when velocities are, linear otherwise."""
        pts = np.vstack([start[None], q])
        vel = None if qd is None else np.vstack([np.zeros((1, len(start))), qd])
        times = np.concatenate([[0.0], t])
        k = int(np.clip(np.searchsorted(times, tau, side="right") - 1, 0, len(q) - 1))
        dt = times[k + 1] - times[k]
        s = min(max((tau - times[k]) / dt, 0.0), 1.0)
        p0, p1 = pts[k], pts[k + 1]
        if vel is None:
            return p0 + s * (p1 - p0), (p1 - p0) / dt
        if qdd is not None:
            acc = np.vstack([np.zeros((1, len(start))), qdd])
            return _quintic_at(p0, p1, vel[k], vel[k + 1], acc[k], acc[k + 1], dt, s * dt)
        m0, m1 = vel[k] * dt, vel[k + 1] * dt
        pos = ((2 * s**3 - 3 * s**2 + 1) * p0 + (s**3 - 2 * s**2 + s) * m0
               + (-2 * s**3 + 3 * s**2) * p1 + (s**3 - s**2) * m1)  # fmt: skip
        d = ((6 * s**2 - 6 * s) * p0 + (3 * s**2 - 4 * s + 1) * m0
             + (-6 * s**2 + 6 * s) * p1 + (3 * s**2 - 2 * s) * m1)  # fmt: skip
        return pos, d / dt

    def sample(self, start, q, qd, qdd, t, n: int):
        """Positions (S, dof), velocities (S, dof) and segment index (S,) at n + 1 samples of
        every segment."""
        times = np.concatenate([[0.0], t])
        pos, vel, seg = [], [], []
        for k in range(len(q)):
            for s in np.linspace(0.0, 1.0, n + 1):
                p, v = self.at(start, q, qd, t, times[k] + s * (times[k + 1] - times[k]), qdd)
                pos.append(p)
                vel.append(v)
                seg.append(k)
        return np.array(pos), np.array(vel), np.array(seg)

    def tool_canvas(self, q: np.ndarray) -> np.ndarray:
        """(N, dof) joints -> (N, 3) brush tip in canvas x m, y m, height m."""
        base = np.array([self.chain.fk(qk)[:3, 3] for qk in q])
        return canvas_from_base(self.frame, base)

    def _on_goal(self, goal) -> GoalResponse:
        why = self.validate(goal.trajectory, self.joints.copy())
        if why is not None:
            self._write({"event": "rejected", "reason": why, "wall": time.time()})
            self.get_logger().warn(f"rejected trajectory: {why}")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    # ---- execution ----------------------------------------------------------------------------
    def _execute(self, handle):
        result = FollowJointTrajectory.Result()
        active = self._active
        if active is not None:  # a new goal preempts the playing one
            self._preempted.add(id(active))
        with self._play:
            self._active = handle
            try:
                return self._play_goal(handle, result)
            finally:
                self._active = None
                self._preempted.discard(id(handle))

    def _play_goal(self, handle, result):
        traj = handle.request.trajectory
        start = self.joints.copy()
        why = self.validate(traj, start)  # from where the arm is now (after a preemption)
        if why is not None:
            self._write({"event": "aborted", "reason": why, "wall": time.time()})
            handle.abort()
            result.error_code, result.error_string = result.INVALID_GOAL, why
            return result
        q, qd, qdd, t = self.unpack(traj)
        self._write({"event": "goal", "wall": time.time(), "start": start.tolist(),
                     "q": q.tolist(), "t": t.tolist(), "velocities": None if qd is None
                     else qd.tolist(), "accelerations": None if qdd is None
                     else qdd.tolist()})  # fmt: skip
        xyh = self.tool_canvas(q)
        names = list(self.config.joint_names)
        tau, tick, next_point, contact = 0.0, 0, 0, []
        wall = time.monotonic()
        while True:
            if handle.is_cancel_requested:
                return self._end(handle, result, contact, "canceled", 0, f"canceled at {tau:.3f} s")
            if id(handle) in self._preempted:
                why = "preempted by a new goal"
                return self._end(handle, result, contact, "aborted", result.INVALID_GOAL, why)
            if self.abort_at_s is not None and tau >= self.abort_at_s:
                self.abort_at_s = None
                why = f"path tolerance violated at {tau:.3f} s (obstruction)"
                code = result.PATH_TOLERANCE_VIOLATED
                return self._end(handle, result, contact, "aborted", code, why)
            pos, _ = self.at(start, q, qd, t, min(tau, t[-1]), qdd)
            self.joints = pos
            tip = self.tool_canvas(pos[None])[0]
            self._write({"event": "state", "wall": time.time(), "q": pos.tolist(),
                         "canvas": tip.tolist()})  # fmt: skip
            contact = self._track(contact, tip)
            while next_point < len(q) and tau >= t[next_point] - 1e-9:
                k = next_point
                self._write(
                    {"event": "point", "wall": time.time(), "dt": t[k] - (t[k - 1] if k else 0.0),
                     "q": q[k].tolist(), "canvas": xyh[k].tolist()}
                )  # fmt: skip
                next_point += 1
            if tick % FEEDBACK_EVERY == 0 or next_point == len(q):
                fb = FollowJointTrajectory.Feedback(joint_names=names)
                fb.desired.positions = fb.actual.positions = pos.tolist()
                fb.desired.time_from_start = _duration(min(tau, t[-1]))
                handle.publish_feedback(fb)
            if next_point == len(q):
                break
            tick += 1
            if self.speed_factor > 0:
                wall += 1.0 / STATE_HZ / self.speed_factor
                time.sleep(max(0.0, wall - time.monotonic()))
            tau += self.speed_scaling / STATE_HZ
        self._paint(contact)
        self.publish_canvas()
        handle.succeed()
        result.error_code = result.SUCCESSFUL
        return result

    def _end(self, handle, result, contact, event: str, code: int, why: str):
        """Hold where the arm is and end the goal as canceled or aborted."""
        self._paint(contact)
        self.publish_canvas()
        self._write({"event": event, "wall": time.time(), "reason": why})
        result.error_code, result.error_string = code, why
        if event == "canceled":
            result.error_string = ""
            handle.canceled()
        else:
            handle.abort()
        return result

    def _publish_state(self) -> None:
        msg = JointState(name=list(self.config.joint_names), position=self.joints.tolist())
        msg.header.stamp = self.get_clock().now().to_msg()
        self.state_pub.publish(msg)

    def _track(self, contact: list, xyh: np.ndarray) -> list:
        """Collect pressed points on the canvas; a lowered brush elsewhere is a station dip."""
        x, y, h = xyh
        pressed = h <= 1e-5
        on_canvas = 0 <= x <= self.canvas.width_m and 0 <= y <= self.canvas.height_m
        if pressed and on_canvas:
            point = (x, y, min(1.0, max(0.0, -h / self.config.press_depth_m)))
            if contact and np.hypot(x - contact[-1][0], y - contact[-1][1]) < 5e-4:
                return contact  # 0.5 mm apart is enough for the brush model
            return [*contact, point]
        self._paint(contact)
        if pressed:
            self.brush.clean()
            self.brush.dip(self.ink)
        return []

    def _paint(self, contact: list) -> None:
        if len(contact) >= 2:
            path = BrushPath(torch.tensor(contact, dtype=torch.float32), self.ink)
            if self.brush.color is None:
                self.brush.dip(self.ink)
            self.image = self.brush.paint(self.image, path, self.canvas)
        contact.clear()

    def publish_canvas(self) -> None:
        """Publish the canvas as an rgb8 image (latched)."""
        rgb = (self.image.permute(1, 2, 0).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        self.canvas_pub.publish(rgb_to_image(rgb, "canvas", self.get_clock().now().to_msg()))

    def _write(self, record: dict) -> None:
        if self._log is not None:
            with self._log_lock:
                self._log.write(json.dumps(record) + "\n")


def _quintic_at(q0, q1, v0, v1, a0, a1, dt: float, tau: float):
    """Position and velocity at tau (s, 0..dt) of the quintic polynomial with these end
    positions, velocities and accelerations over dt seconds."""
    d = q1 - q0
    c3 = (20 * d - (8 * v1 + 12 * v0) * dt - (3 * a0 - a1) * dt**2) / (2 * dt**3)
    c4 = (-30 * d + (14 * v1 + 16 * v0) * dt + (3 * a0 - 2 * a1) * dt**2) / (2 * dt**4)
    c5 = (12 * d - 6 * (v1 + v0) * dt - (a0 - a1) * dt**2) / (2 * dt**5)
    pos = q0 + v0 * tau + a0 / 2 * tau**2 + c3 * tau**3 + c4 * tau**4 + c5 * tau**5
    vel = v0 + a0 * tau + 3 * c3 * tau**2 + 4 * c4 * tau**3 + 5 * c5 * tau**4
    return pos, vel


def _duration(seconds: float):
    from builtin_interfaces.msg import Duration

    sec = int(seconds)
    return Duration(sec=sec, nanosec=min(round((seconds - sec) * 1e9), 999_999_999))


def main(args: list[str] | None = None) -> None:
    argv = remove_ros_args(["sim_arm_node", *(sys.argv[1:] if args is None else args)])[1:]
    options, rest = split_options(argv, ["arm"])
    parser = argparse.ArgumentParser(prog="python -m robot.ros.sim_arm_node")
    parser.add_argument("--canvas-px", type=int, default=256)
    parser.add_argument("--speed-factor", type=float, default=1.0, help="1: real time, 0: none")
    parser.add_argument("--log", default=None, help="JSON lines of every played point")
    parser.add_argument("--ink", default="0.1,0.1,0.1", help="r,g,b in 0..1")
    parser.add_argument("--speed-scaling", type=float, default=1.0, help="0..1, 0 pauses")
    parser.add_argument("--abort-at-s", type=float, default=None, help="obstruction at T s")
    parser.add_argument("--initial-joints", default=None, help="rad, comma separated")
    opts = parser.parse_args(rest)
    ink = tuple(float(v) for v in opts.ink.split(","))
    rclpy.init(args=args)
    initial = None
    if opts.initial_joints:
        initial = tuple(float(v) for v in opts.initial_joints.split(","))
    node = SimArmNode(options["arm"], opts.canvas_px, opts.speed_factor, opts.log, ink,
                      opts.speed_scaling, opts.abort_at_s, initial)  # fmt: skip
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
