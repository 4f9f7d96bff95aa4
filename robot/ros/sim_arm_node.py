"""Simulated arm node: a ``FollowJointTrajectory`` server that paints into a simulated canvas.

    python -m robot.ros.sim_arm_node --arm.chain=ur5e --speed-factor=4 --log=/tmp/points.jsonl

It stands in for ros2_control's ``joint_trajectory_controller`` so the ``ros2`` arm driver is
tested end to end against the standard interface. Every goal is validated (joint names, joint
limits, joint speeds, the brush inside the reach box and never below the pressing depth): a bad
goal is rejected with ``INVALID_GOAL`` and nothing of it is painted. An accepted trajectory is
played point by point (real time / ``--speed-factor``), a cancel stops it at the next segment;
every point played is appended to ``--log`` (JSON lines) so tests can check what reached the
wire. Joint positions go back through forward kinematics to canvas meters: where the brush is
pressed inside the canvas it paints with the physical brush model (one ink, reloaded at any
station visit). The canvas is published on ``~/canvas`` (``sensor_msgs/Image``, latched).
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
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import Image

from robot.arms.config import arm_config_class
from robot.arms.ros2.config import Ros2ArmConfig
from robot.arms.ros2.trajectory import canvas_from_base
from robot.cameras.ros2.ros2_camera import rgb_to_image
from robot.cli_config import build_config, split_options
from sim.brush import Brush
from sim.brush_path import BrushPath
from sim.canvas import Canvas
from sim.physical_brush import PhysicalBrush

SPEED_MARGIN = 1.05  # joint speed accepted up to 5 % over the limit (time rounding)


class SimArmNode(Node):
    """The simulated joint trajectory controller. See the module docstring.

    Args:
        config: the same `Ros2ArmConfig` the driver uses (chain, frame, joints, limits).
        canvas_px: canvas image width (px).
        speed_factor: 1 = real time; 0 = no waits.
        log_path: JSON-lines file of every played point and every rejected goal, or None.
        ink: (r, g, b) in 0..1 the brush paints with.
    """

    def __init__(
        self,
        config: Ros2ArmConfig,
        canvas_px: int = 256,
        speed_factor: float = 1.0,
        log_path: str | None = None,
        ink: tuple[float, float, float] = (0.1, 0.1, 0.1),
    ) -> None:
        super().__init__("sim_arm")
        self.config = config
        self.chain = config.serial_chain
        self.frame = config.canvas_frame
        ws = config.workspace
        self.canvas = Canvas(ws.canvas_width_m, ws.canvas_height_m, canvas_px)
        self.image = torch.ones(3, *self.canvas.size_px)
        self.brush = PhysicalBrush(Brush.preset("round"), seed=0)
        self.ink = torch.tensor(ink, dtype=torch.float32)
        self.speed_factor = speed_factor
        self.joints = np.array(self.chain.ready, dtype=np.float64)
        self._log = open(log_path, "a", buffering=1) if log_path else None  # noqa: SIM115
        self._busy = threading.Lock()
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.canvas_pub = self.create_publisher(Image, "~/canvas", latched)
        self._server = ActionServer(
            self,
            FollowJointTrajectory,
            config.action,
            execute_callback=self._execute,
            goal_callback=self._on_goal,
            cancel_callback=lambda _g: CancelResponse.ACCEPT,
            callback_group=ReentrantCallbackGroup(),
        )
        self.publish_canvas()
        self.get_logger().info(f"FollowJointTrajectory server on {config.action}")

    # ---- checks -------------------------------------------------------------------------------
    def validate(self, traj) -> str | None:
        """Why a JointTrajectory must be refused, or None when it is safe to play."""
        names = tuple(self.config.joint_names)
        if tuple(traj.joint_names) != names:
            return f"joint_names {list(traj.joint_names)} != {list(names)}"
        if not traj.points:
            return "empty trajectory"
        q = np.array([p.positions for p in traj.points], dtype=np.float64)
        if q.ndim != 2 or q.shape[1] != len(names) or not np.isfinite(q).all():
            return "every point needs one finite position per joint"
        t = np.array(
            [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in traj.points]
        )
        if t[0] <= 0 or np.any(np.diff(t) <= 0):
            return "time_from_start must be > 0 and strictly increasing"
        lim = np.array(self.chain.joint_limits)
        if np.any(q < lim[:, 0]) or np.any(q > lim[:, 1]):
            return "a point breaks the joint limits"
        dq = np.abs(np.diff(np.vstack([self.joints[None], q]), axis=0)).max(axis=1)
        speed = dq / np.diff(np.concatenate([[0.0], t]))
        if speed.max() > self.config.max_joint_speed_rad_s * SPEED_MARGIN:
            k = int(speed.argmax())
            return f"point {k}: joint speed {speed[k]:.3f} rad/s over the limit"
        xyh = self.tool_canvas(q)
        ws = self.config.workspace
        inside = [ws.in_reach(x, y) for x, y in xyh[:, :2]]
        if not all(inside):
            return f"point {inside.index(False)}: brush outside the reach box"
        if xyh[:, 2].min() < -self.config.press_depth_m * ws.max_press - 1e-4:
            return "brush pressed deeper than the workspace allows"
        return None

    def tool_canvas(self, q: np.ndarray) -> np.ndarray:
        """(N, dof) joints -> (N, 3) brush tip in canvas x m, y m, height m."""
        base = np.array([self.chain.fk(qk)[:3, 3] for qk in q])
        return canvas_from_base(self.frame, base)

    def _on_goal(self, goal) -> GoalResponse:
        return GoalResponse.ACCEPT  # validated in _execute, which can report why

    # ---- execution ----------------------------------------------------------------------------
    def _execute(self, handle):
        traj = handle.request.trajectory
        result = FollowJointTrajectory.Result()
        with self._busy:
            why = self.validate(traj)
            if why is not None:
                self._write({"event": "rejected", "reason": why})
                self.get_logger().warn(f"rejected trajectory: {why}")
                handle.abort()
                result.error_code, result.error_string = result.INVALID_GOAL, why
                return result
            q = np.array([p.positions for p in traj.points], dtype=np.float64)
            t = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in traj.points]
            xyh = self.tool_canvas(q)
            start, previous_t, contact = time.monotonic(), 0.0, []
            for k in range(len(q)):
                if handle.is_cancel_requested:
                    self._paint(contact)
                    self._write({"event": "canceled", "wall": time.time(), "at": k})
                    handle.canceled()
                    result.error_string = f"canceled before point {k}"
                    return result
                if self.speed_factor > 0:
                    time.sleep(max(0.0, start + t[k] / self.speed_factor - time.monotonic()))
                self.joints = q[k]
                self._write(
                    {"event": "point", "wall": time.time(), "dt": t[k] - previous_t,
                     "q": q[k].tolist(), "canvas": xyh[k].tolist()}
                )  # fmt: skip
                previous_t = t[k]
                contact = self._track(contact, xyh[k])
                feedback = FollowJointTrajectory.Feedback(joint_names=list(traj.joint_names))
                feedback.desired.positions = feedback.actual.positions = q[k].tolist()
                handle.publish_feedback(feedback)
            self._paint(contact)
            self.publish_canvas()
            handle.succeed()
            result.error_code = result.SUCCESSFUL
            return result

    def _track(self, contact: list, xyh: np.ndarray) -> list:
        """Collect pressed points on the canvas; a lowered brush elsewhere is a station dip."""
        x, y, h = xyh
        pressed = h <= 1e-5
        on_canvas = 0 <= x <= self.canvas.width_m and 0 <= y <= self.canvas.height_m
        if pressed and on_canvas:
            return [*contact, (x, y, min(1.0, max(0.0, -h / self.config.press_depth_m)))]
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
            self._log.write(json.dumps(record) + "\n")


def main(args: list[str] | None = None) -> None:
    argv = remove_ros_args(["sim_arm_node", *(sys.argv[1:] if args is None else args)])[1:]
    options, rest = split_options(argv, ["arm"])
    parser = argparse.ArgumentParser(prog="python -m robot.ros.sim_arm_node")
    parser.add_argument("--canvas-px", type=int, default=256)
    parser.add_argument("--speed-factor", type=float, default=1.0, help="1: real time, 0: none")
    parser.add_argument("--log", default=None, help="JSON lines of every played point")
    parser.add_argument("--ink", default="0.1,0.1,0.1", help="r,g,b in 0..1")
    opts = parser.parse_args(rest)
    config = build_config("arm", {**options["arm"], "type": "ros2"}, arm_config_class, "ros2")
    ink = tuple(float(v) for v in opts.ink.split(","))
    rclpy.init(args=args)
    node = SimArmNode(config, opts.canvas_px, opts.speed_factor, opts.log, ink)
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
