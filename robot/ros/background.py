"""`BackgroundNode`: an rclpy node in its own context, spun by a daemon thread.

Drivers (the ``ros2`` arm and camera) use one so that they work inside any program, ROS or not,
without touching the global rclpy context of a node that hosts them.
"""

from __future__ import annotations

import contextlib
import threading

import rclpy
from rclpy.context import Context
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node


class BackgroundNode:
    """Create with a node name; `node` is ready to get publishers, clients, subscriptions.

    Args:
        name: node name (unique per process is enough).
        args: extra ROS arguments (``--ros-args ...``), usually none.
    """

    def __init__(self, name: str, args: list[str] | None = None) -> None:
        self.context = Context()
        rclpy.init(args=args, context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = MultiThreadedExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name=f"{name}-spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        with contextlib.suppress(Exception):  # the context was shut down under the executor
            self.executor.spin()

    def close(self) -> None:
        """Stop spinning and free the node and its context."""
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        if self.context.ok():
            rclpy.shutdown(context=self.context)
        self._thread.join(timeout=2.0)
