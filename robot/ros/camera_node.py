"""Camera node: publishes frames of any `robot` Camera as ``sensor_msgs/Image`` (rgb8), with a
``sensor_msgs/CameraInfo`` beside each frame.

python -m robot.ros.camera_node --ros-args -p camera.type:=opencv -p camera.device:=0 -p rate:=5.0
python -m robot.ros.camera_node --ros-args -p camera.type:=sim -p qos:=reliable

Parameters (declared: ``ros2 param list /camera``): ``camera.*`` (the camera's config, see
`robot.ros.params`; ``--camera.<field>=`` flags set their defaults), ``topic`` (image topic,
default ``/camera/image_raw``; the info goes to ``camera_info`` beside it), ``rate`` (frames per
second), ``frame_id`` (default ``camera``) and ``qos``: ``sensor_data`` (best effort, depth 5:
live viewers, the default) or ``reliable`` (every frame delivered, depth 10: recorders such as
``ros2 bag``). The camera has no intrinsic calibration: CameraInfo carries the size and an all
zero K, which ROS tools read as "uncalibrated".
"""

from __future__ import annotations

import argparse
import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.utilities import remove_ros_args
from sensor_msgs.msg import CameraInfo, Image

from robot.cameras import Camera, camera_config_class, make_camera
from robot.cameras.ros2.ros2_camera import rgb_to_image
from robot.cli_config import split_options
from robot.errors import RobotError
from robot.ros.params import declare_and_build

QOS_PROFILES = {
    "sensor_data": qos_profile_sensor_data,
    "reliable": QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE),
}


def info_topic(image_topic: str) -> str:
    """``camera_info`` beside an image topic (``/camera/image_raw`` -> ``/camera/camera_info``)."""
    head = image_topic.rstrip("/").rsplit("/", 1)[0]
    return f"{head}/camera_info" if head else "camera_info"


class CameraNode(Node):
    """Captures from a camera ``rate`` times a second and publishes image and info.

    Args:
        camera: a connected `robot.cameras.Camera` (not owned), or None: built from the declared
            ``camera.*`` parameters (defaults ``camera_options``) and connected.
        topic, rate_hz, qos, frame_id: defaults of the parameters of the same names.
    """

    def __init__(
        self,
        camera: Camera | None = None,
        topic: str = "/camera/image_raw",
        rate_hz: float = 2.0,
        qos: str = "sensor_data",
        frame_id: str = "camera",
        camera_options: dict[str, str] | None = None,
    ):
        super().__init__("camera")
        topic = self.declare_parameter("topic", topic).value
        rate_hz = float(self.declare_parameter("rate", float(rate_hz)).value)
        qos = self.declare_parameter("qos", qos).value
        self.frame_id = self.declare_parameter("frame_id", frame_id).value
        if qos not in QOS_PROFILES:
            raise ValueError(f"parameter qos={qos!r}: expected one of {sorted(QOS_PROFILES)}")
        if not rate_hz > 0:
            raise ValueError(f"parameter rate={rate_hz!r}: expected frames per second > 0")
        if camera is None:
            config = declare_and_build(
                self, "camera", camera_options or {}, camera_config_class, "sim"
            )
            camera = make_camera(config)
            camera.connect()
        self.camera = camera
        self.publisher = self.create_publisher(Image, topic, QOS_PROFILES[qos])
        self.info_publisher = self.create_publisher(
            CameraInfo, info_topic(topic), QOS_PROFILES[qos]
        )
        self.frames = 0
        self.create_timer(1.0 / rate_hz, self._publish)

    def _publish(self) -> None:
        frame = self.camera.capture()
        stamp = self.get_clock().now().to_msg()
        info = CameraInfo(height=frame.shape[0], width=frame.shape[1], distortion_model="plumb_bob")
        info.header.stamp, info.header.frame_id = stamp, self.frame_id
        self.publisher.publish(rgb_to_image(frame, self.frame_id, stamp))
        self.info_publisher.publish(info)
        self.frames += 1


def main(args: list[str] | None = None) -> None:
    argv = remove_ros_args(["camera_node", *(sys.argv[1:] if args is None else args)])[1:]
    options, rest = split_options(argv, ["camera"])
    parser = argparse.ArgumentParser(prog="python -m robot.ros.camera_node")
    parser.add_argument("--topic", default="/camera/image_raw")
    parser.add_argument("--rate", type=float, default=2.0, help="frames per second")
    parser.add_argument("--qos", default="sensor_data", choices=sorted(QOS_PROFILES))
    opts = parser.parse_args(rest)
    rclpy.init(args=args)
    try:
        node = CameraNode(None, opts.topic, opts.rate, opts.qos, camera_options=options["camera"])
    except (RobotError, ValueError, RuntimeError, OSError) as e:  # no camera, a bad parameter
        print(f"camera: cannot start: {e}", file=sys.stderr)
        rclpy.try_shutdown()
        sys.exit(2)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.camera.disconnect()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
