"""Painter node: an ``ExecutePlan`` action that paints a `planner.Plan` with any `robot` Arm.

    python -m robot.ros.painter_node --arm.type=ros2 \\
        --arm.action=/joint_trajectory_controller/follow_joint_trajectory

Goal: the plan as JSON (``Plan.to_json()``) and the painting position to start from. Feedback:
strokes done / total after every stroke. Result: the arm's `ExecutionReport` as JSON (or
``{"error": ...}`` when the plan is refused: bad JSON, the safety check, unreachable poses).
Cancelling the goal calls ``arm.stop()``; so does the ``~/emergency_stop`` service
(``std_srvs/Trigger``), at any time.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading

import rclpy
from cofrida_interfaces.action import ExecutePlan
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.utilities import remove_ros_args
from std_srvs.srv import Trigger

from planner.plan import Plan
from robot.arms import Arm, arm_config_class, make_arm
from robot.cli_config import build_config, split_options
from robot.errors import RobotError


class PainterNode(Node):
    """Serves ``~/execute_plan`` and ``~/emergency_stop`` for one connected arm.

    Args:
        arm: a connected `robot.arms.Arm`; the node does not own its connection.
    """

    def __init__(self, arm: Arm) -> None:
        super().__init__("painter")
        self.arm = arm
        self._busy = threading.Lock()
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
        self.create_service(Trigger, "~/emergency_stop", self._emergency_stop, callback_group=group)
        self.get_logger().info(f"painter ready with a {arm.config.type} arm ({arm.name})")

    def _on_goal(self, _goal) -> GoalResponse:
        return GoalResponse.REJECT if self._busy.locked() else GoalResponse.ACCEPT

    def _on_cancel(self, _goal) -> CancelResponse:
        self.arm.stop()
        return CancelResponse.ACCEPT

    def _emergency_stop(self, _request, response):
        self.arm.stop()
        self.get_logger().warn("emergency stop")
        response.success, response.message = True, "arm.stop() called"
        return response

    def _execute(self, handle):
        result = ExecutePlan.Result()
        with self._busy:
            try:
                plan = Plan.from_json(handle.request.plan_json)
                paths = plan.paths(start=int(handle.request.start))
            except ValueError as e:
                return self._refuse(handle, result, f"bad plan: {e}")

            def progress(done: int, total: int) -> None:
                handle.publish_feedback(
                    ExecutePlan.Feedback(strokes_done=done, strokes_total=total)
                )

            try:
                report = self.arm.execute(paths, on_progress=progress)
            except (RobotError, ValueError) as e:  # SafetyError, UnreachableError: nothing sent
                return self._refuse(handle, result, str(e))
            result.completed = report.completed
            result.report_json = json.dumps(report.to_dict())
            self.get_logger().info(report.summary())
            if handle.is_cancel_requested:
                handle.canceled()
            elif report.completed:
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
    config = build_config("arm", options["arm"], arm_config_class, "ros2")
    rclpy.init(args=args)
    arm = make_arm(config)
    arm.connect()
    node = PainterNode(arm)
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        arm.disconnect()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
