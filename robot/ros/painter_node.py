"""Painter node: an ``ExecutePlan`` action that paints a `planner.Plan` with any `robot` Arm.

    python -m robot.ros.painter_node --ros-args -p arm.type:=ros2 \\
        -p arm.action:=/scaled_joint_trajectory_controller/follow_joint_trajectory \\
        -p arm.canvas_origin_m:=[0.55,0.14,0.02]

The arm's config fields are declared parameters (``ros2 param list /painter``; see
`robot.ros.params`); ``--arm.<field>=<value>`` flags still set their defaults. Without a
controller the node exits after ``arm.server_timeout_s`` with a message naming what is missing.

Goal: the plan as JSON (``Plan.to_json()``) and the painting position to start from (a resume).
Feedback: strokes done / total *in the plan* after every stroke (a resume from position 10 of
24 reports 11/24 first). Result: the arm's `ExecutionReport` as JSON (its ``paths`` as painting
positions in the plan) plus ``start``, ``strokes_done`` and ``next_start`` (the position to
resume from), all in plan numbering (or ``{"error": ...}`` when the plan is refused: bad JSON,
the safety check, unreachable poses).

Cancelling the goal stops the arm (``arm.stop()``, repeated until the job has really ended, so
a cancel that arrives while the plan is still being checked is not lost). The
``~/emergency_stop`` service (``std_srvs/Trigger``) is latched: it stops the arm, the arm's
driver lifts the brush (the ``ros2`` driver always does after a stop), and every new goal is
refused until ``~/reset_emergency_stop`` (``std_srvs/Trigger``) is called. The latch is
published on ``~/emergency_stop_active`` (``std_msgs/Bool``, latched).

With a ``ros2`` arm the node also publishes TF (`robot.ros.tf_frames`): the ``canvas`` frame
on ``/tf_static`` and ``brush_tip`` on ``/tf`` from the measured joint states (frame names:
``tf.base_frame``, ``tf.canvas_frame``, ``tf.tip_frame`` parameters).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading

import rclpy
from cofrida_interfaces.action import ExecutePlan
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile
from rclpy.utilities import remove_ros_args
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from planner.plan import Plan
from robot.arms import Arm, arm_config_class, make_arm
from robot.arms.ros2.config import Ros2ArmConfig
from robot.cli_config import split_options
from robot.errors import DeviceConnectionError, RobotError
from robot.ros.params import declare_and_build
from robot.ros.tf_frames import ArmFrames

STOP_REPEAT_S = 0.05  # s between repeated arm.stop() calls while a cancelled job winds down


class PainterNode(Node):
    """Serves ``~/execute_plan``, ``~/emergency_stop`` and ``~/reset_emergency_stop`` for one
    connected arm.

    Args:
        arm: a connected `robot.arms.Arm` (the node does not own its connection), or None: the
            node declares ``arm.*`` parameters (defaults ``arm_options``, raw ``--arm.*`` flag
            values), builds the arm from them and connects it (raises `DeviceConnectionError`
            when the controller does not answer in ``arm.server_timeout_s``).
    """

    def __init__(self, arm: Arm | None = None, arm_options: dict[str, str] | None = None) -> None:
        super().__init__("painter")
        if arm is None:  # from declared parameters (arm.*); connects, waiting for the controller
            config = declare_and_build(self, "arm", arm_options or {}, arm_config_class, "ros2")
            arm = make_arm(config)
            arm.connect()
        self.arm = arm
        self._busy = threading.Lock()
        self._estop = threading.Event()
        group = ReentrantCallbackGroup()
        self._server = ActionServer(
            self,
            ExecutePlan,
            "~/execute_plan",
            execute_callback=self._execute,
            goal_callback=self._on_goal,
            cancel_callback=self._on_cancel,
            callback_group=group,
        )
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._estop_pub = self.create_publisher(Bool, "~/emergency_stop_active", latched)
        self._estop_pub.publish(Bool(data=False))
        self.create_service(Trigger, "~/emergency_stop", self._emergency_stop, callback_group=group)
        self.create_service(
            Trigger, "~/reset_emergency_stop", self._reset_emergency_stop, callback_group=group
        )
        self.frames = None
        if isinstance(arm.config, Ros2ArmConfig):  # canvas on /tf_static, brush tip on /tf
            self.frames = ArmFrames(self, arm.config, callback_group=group)
        self.get_logger().info(f"painter ready with a {arm.config.type} arm ({arm.name})")

    def _on_goal(self, _goal) -> GoalResponse:
        if self._estop.is_set():
            self.get_logger().error("goal refused: emergency stop is latched (reset it first)")
            return GoalResponse.REJECT
        return GoalResponse.REJECT if self._busy.locked() else GoalResponse.ACCEPT

    def _on_cancel(self, _goal) -> CancelResponse:
        self.arm.stop()
        return CancelResponse.ACCEPT

    def _emergency_stop(self, _request, response):
        self._estop.set()
        self.arm.stop()
        self._estop_pub.publish(Bool(data=True))
        self.get_logger().warn("emergency stop: latched until ~/reset_emergency_stop")
        if not self._busy.locked():  # idle: lift the brush here (a running job lifts itself)
            with contextlib.suppress(Exception):
                lift = getattr(self.arm, "lift", None)
                if lift is not None:
                    lift()
        response.success = True
        response.message = "arm stopped, brush lifted; new goals refused until reset"
        return response

    def _reset_emergency_stop(self, _request, response):
        was = self._estop.is_set()
        self._estop.clear()
        self._estop_pub.publish(Bool(data=False))
        self.get_logger().info("emergency stop reset")
        response.success, response.message = True, "reset" if was else "was not latched"
        return response

    def _execute(self, handle):
        result = ExecutePlan.Result()
        with self._busy:
            try:
                plan = Plan.from_json(handle.request.plan_json)
                start = int(handle.request.start)
                paths = plan.paths(start=start)
            except ValueError as e:
                return self._refuse(handle, result, f"bad plan: {e}")
            total = len(plan)

            def progress(done: int, _n: int) -> None:
                handle.publish_feedback(
                    ExecutePlan.Feedback(strokes_done=start + done, strokes_total=total)
                )

            finished = threading.Event()
            watcher = threading.Thread(target=self._stop_while, args=(handle, finished))
            watcher.start()
            try:
                if self._stopping(handle):
                    report = None
                else:
                    report = self.arm.execute(paths, on_progress=progress)
            except (RobotError, ValueError) as e:  # SafetyError, UnreachableError: nothing sent
                return self._refuse(handle, result, str(e))
            finally:
                finished.set()
                watcher.join()
            if report is None:
                result.completed = False
                result.report_json = json.dumps(
                    {"stopped": True, "start": start, "strokes_done": start, "next_start": start}
                )
                return self._end(handle, result, completed=False)
            done = start + report.paths_done
            body = report.to_dict() | {"start": start, "strokes_done": done, "next_start": done}
            body["paths"] = [start + i for i in body["paths"]]  # painting positions in the plan
            if self._estop.is_set():
                body["fault"] = body["fault"] or "emergency stop"
            result.completed = report.completed and not self._estop.is_set()
            result.report_json = json.dumps(body)
            self.get_logger().info(f"{report.summary()} (plan strokes {start}..{done} of {total})")
            return self._end(handle, result, result.completed)

    def _stopping(self, handle) -> bool:
        return handle.is_cancel_requested or self._estop.is_set()

    def _stop_while(self, handle, finished: threading.Event) -> None:
        """Repeat arm.stop() while the job runs and a cancel or the e-stop is pending: a stop
        that reached the arm before its job began would otherwise be cleared by it."""
        while not finished.wait(STOP_REPEAT_S):
            if self._stopping(handle):
                self.arm.stop()

    def _end(self, handle, result, completed: bool):
        if handle.is_cancel_requested:
            handle.canceled()
        elif completed:
            handle.succeed()
        else:
            handle.abort()
        return result

    def _refuse(self, handle, result, why: str):
        self.get_logger().error(why)
        result.completed, result.report_json = False, json.dumps({"error": why})
        handle.abort()
        return result


def main(args: list[str] | None = None) -> None:
    argv = remove_ros_args(["painter_node", *(sys.argv[1:] if args is None else args)])[1:]
    options, rest = split_options(argv, ["arm"])
    argparse.ArgumentParser(prog="python -m robot.ros.painter_node").parse_args(rest)
    rclpy.init(args=args)
    try:
        node = PainterNode(arm_options=options["arm"])
    except (DeviceConnectionError, ValueError) as e:  # no controller, a bad parameter
        print(f"painter: cannot start: {e}", file=sys.stderr)
        rclpy.try_shutdown()
        sys.exit(2)
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.arm.disconnect()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
