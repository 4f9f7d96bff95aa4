"""TF frames of a ROS 2 arm: the canvas (``/tf_static``) and the brush tip (``/tf``).

``canvas`` is the canvas' top-left corner on its surface, x right, y down, z into the canvas
(the project's canvas geometry, `robot.kinematics.CanvasFrame`), from the arm config's
calibration ``canvas_origin_m`` / ``canvas_yaw_rad``; published once, latched (transient-local,
as tf2's static broadcaster does). ``brush_tip`` is the tip's pose in the base frame from the
measured ``/joint_states`` through the chain's forward kinematics (the flange's orientation,
``tool_length_m`` along its z), stamped with the joint state's stamp, like
``robot_state_publisher``. The base frame is the kinematic chain's base (the DH frame, UR's
``base``, not ``base_link``).

Parameters (declared on the node): ``tf.base_frame`` (``base``), ``tf.canvas_frame``
(``canvas``), ``tf.tip_frame`` (``brush_tip``), ``tf.tip_rate_hz`` (50: most /tf messages per
second; 0 publishes every joint state).
"""

from __future__ import annotations

import math

import numpy as np
from geometry_msgs.msg import TransformStamped
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from tf2_msgs.msg import TFMessage

from robot.arms.ros2.config import Ros2ArmConfig
from robot.kinematics import CanvasFrame


def quaternion(rot: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, z, w) unit quaternion of a 3x3 rotation matrix (w >= 0)."""
    r = np.asarray(rot, dtype=np.float64)
    tr = r[0, 0] + r[1, 1] + r[2, 2]
    if tr > 0:
        s = 2.0 * math.sqrt(tr + 1.0)
        q = ((r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s, s / 4)
    else:
        i = int(np.argmax(np.diag(r)))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 2.0 * math.sqrt(max(1.0 + r[i, i] - r[j, j] - r[k, k], 1e-300))
        v = [0.0, 0.0, 0.0]
        v[i] = s / 4
        v[j] = (r[j, i] + r[i, j]) / s
        v[k] = (r[k, i] + r[i, k]) / s
        q = (*v, (r[k, j] - r[j, k]) / s)
    q = np.array(q) / np.linalg.norm(q)
    if q[3] < 0:
        q = -q
    return tuple(float(v) for v in q)


def canvas_pose(frame: CanvasFrame) -> np.ndarray:
    """4x4 pose of the canvas frame in the base frame: origin at the top-left corner, x
    right, y down, z into the canvas (so base z = surface - canvas z)."""
    c, s = math.cos(frame.yaw_rad), math.sin(frame.yaw_rad)
    pose = np.eye(4)
    pose[:3, :3] = np.array([[c, s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]])  # columns ex, ey, ez
    pose[:3, 3] = frame.origin_m
    return pose


def transform_msg(pose: np.ndarray, parent: str, child: str, stamp) -> TransformStamped:
    """``geometry_msgs/TransformStamped`` of a 4x4 pose of ``child`` in ``parent``."""
    msg = TransformStamped()
    msg.header.stamp = stamp
    msg.header.frame_id = parent
    msg.child_frame_id = child
    t = msg.transform.translation
    t.x, t.y, t.z = (float(v) for v in pose[:3, 3])
    r = msg.transform.rotation
    r.x, r.y, r.z, r.w = quaternion(pose[:3, :3])
    return msg


class ArmFrames:
    """Publishes the canvas and brush-tip frames of a `Ros2ArmConfig` arm from ``node``."""

    def __init__(self, node, config: Ros2ArmConfig, callback_group=None) -> None:
        self.node = node
        self.config = config
        self.chain = config.serial_chain
        self.base = str(node.declare_parameter("tf.base_frame", "base").value)
        self.canvas = str(node.declare_parameter("tf.canvas_frame", "canvas").value)
        self.tip = str(node.declare_parameter("tf.tip_frame", "brush_tip").value)
        rate = float(node.declare_parameter("tf.tip_rate_hz", 50.0).value)
        if not (math.isfinite(rate) and rate >= 0):
            raise ValueError(f"parameter tf.tip_rate_hz must be >= 0, got {rate!r}")
        self._min_gap_ns = 0 if rate == 0 else int(1e9 / rate)
        self._last_ns: int | None = None
        static_qos = QoSProfile(
            depth=1,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
            reliability=ReliabilityPolicy.RELIABLE,
        )
        self.static_pub = node.create_publisher(TFMessage, "/tf_static", static_qos)
        self.tf_pub = node.create_publisher(TFMessage, "/tf", 100)
        stamp = node.get_clock().now().to_msg()
        corner = transform_msg(canvas_pose(config.canvas_frame), self.base, self.canvas, stamp)
        self.static_pub.publish(TFMessage(transforms=[corner]))
        self._order: list[int] | None = None
        node.create_subscription(
            JointState, config.joint_states_topic, self._on_state, 10, callback_group=callback_group
        )

    def _on_state(self, msg: JointState) -> None:
        names = list(self.config.joint_names)
        if self._order is None or len(msg.name) <= max(self._order, default=0):
            if not set(names) <= set(msg.name):
                return  # another arm's joints on the same topic
            self._order = [list(msg.name).index(j) for j in names]
        elif [msg.name[i] for i in self._order] != names:
            self._order = None
            return self._on_state(msg)
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        if self._last_ns is not None and 0 <= stamp_ns - self._last_ns < self._min_gap_ns:
            return
        q = np.array([msg.position[i] for i in self._order], dtype=np.float64)
        if not np.isfinite(q).all():
            return
        self._last_ns = stamp_ns
        pose = self.chain.fk(q)
        self.tf_pub.publish(
            TFMessage(transforms=[transform_msg(pose, self.base, self.tip, msg.header.stamp)])
        )
