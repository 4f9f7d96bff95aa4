"""Camera node: publishes frames of any `robot` Camera as ``sensor_msgs/Image`` (rgb8).

python -m robot.ros.camera_node --camera.type=opencv --camera.device=0 --rate 5
python -m robot.ros.camera_node --camera.type=sim --topic /camera/image_raw
"""

from __future__ import annotations

import argparse
import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import Image

from robot.cameras import Camera, camera_config_class, make_camera
from robot.cameras.ros2.ros2_camera import rgb_to_image
from robot.cli_config import build_config, split_options


class CameraNode(Node):
    """Captures from a connected camera ``rate_hz`` times a second and publishes on ``topic``.

    Args:
        camera: a connected `robot.cameras.Camera` (the node does not own its connection).
        topic: image topic.
        rate_hz: frames per second.
    """

    def __init__(self, camera: Camera, topic: str = "/camera/image_raw", rate_hz: float = 2.0):
        super().__init__("camera")
        self.camera = camera
        self.publisher = self.create_publisher(Image, topic, qos_profile_sensor_data)
        self.frames = 0
        self.create_timer(1.0 / rate_hz, self._publish)

    def _publish(self) -> None:
        frame = self.camera.capture()
        self.publisher.publish(rgb_to_image(frame, "camera", self.get_clock().now().to_msg()))
        self.frames += 1


def main(args: list[str] | None = None) -> None:
    argv = remove_ros_args(["camera_node", *(sys.argv[1:] if args is None else args)])[1:]
    options, rest = split_options(argv, ["camera"])
    parser = argparse.ArgumentParser(prog="python -m robot.ros.camera_node")
    parser.add_argument("--topic", default="/camera/image_raw")
    parser.add_argument("--rate", type=float, default=2.0, help="frames per second")
    opts = parser.parse_args(rest)
    config = build_config("camera", options["camera"], camera_config_class, "sim")
    rclpy.init(args=args)
    camera = make_camera(config)
    camera.connect()
    node = CameraNode(camera, opts.topic, opts.rate)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        camera.disconnect()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
