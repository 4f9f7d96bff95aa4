"""Config of ROS 2 arms (type ``ros2``): action name, joints, kinematics, canvas frame."""

from __future__ import annotations

import math
from dataclasses import dataclass

from robot.arms.config import ArmConfig, register_arm_config
from robot.kinematics import ARMS, CanvasFrame, SerialChain

UR_JOINTS = (
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "elbow_joint",
    "wrist_1_joint",
    "wrist_2_joint",
    "wrist_3_joint",
)


@register_arm_config("ros2")
@dataclass
class Ros2ArmConfig(ArmConfig):
    """An arm behind a ros2_control ``joint_trajectory_controller``.

    Brush paths (canvas meters) become base-frame poses through the canvas frame (calibration),
    joints through inverse kinematics of ``chain``, and one ``FollowJointTrajectory`` goal per
    path (travel, lower, paint, lift; station visits before it when the planner asks).
    """

    driver = "robot.arms.ros2.driver:Ros2Arm"

    action: str = "/joint_trajectory_controller/follow_joint_trajectory"  # controller's action
    joint_names: tuple = UR_JOINTS  # controller joint names, in the chain's joint order
    chain: str = "ur5e"  # serial chain from robot.kinematics.ARMS (published DH parameters)
    tool_length_m: float = 0.15  # m, brush tip beyond the flange along its z
    canvas_origin_m: tuple = (0.55, 0.14, 0.02)  # m, base-frame top-left canvas corner (calib.)
    canvas_yaw_rad: float = -math.pi / 2  # rad, canvas x axis about base z (calibration)
    press_depth_m: float = 0.004  # m below the surface at pressing depth 1 (bristles bend)
    plunge_speed_m_s: float = 0.02  # m/s lowering/lifting the brush: bristles land, not stab
    max_joint_speed_rad_s: float = 1.0  # rad/s per joint: segments are slowed below this
    send_accelerations: bool = False  # goals carry joint accelerations too: the controller
    # plays quintics (joint_trajectory_controller does); off: positions + velocities (cubic)
    max_joint_accel_rad_s2: float = 4.0  # rad/s^2 per joint, kept along the quintic when sent
    ready: tuple = ()  # rad, joints of the rest pose (empty: the chain's ready pose)
    joint_states_topic: str = "/joint_states"  # sensor_msgs/JointState of the arm (measured)
    server_timeout_s: float = 10.0  # s to wait for the action server and joint states
    stall_timeout_s: float = 3.0  # s a goal may make no progress (no feedback time advance, no
    # joint motion) before it is cancelled and reported: a paused or dead controller

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.chain not in ARMS:
            raise ValueError(f"chain must be one of {sorted(ARMS)}, got {self.chain!r}")
        self.joint_names = tuple(str(j) for j in self.joint_names)
        self.canvas_origin_m = tuple(float(v) for v in self.canvas_origin_m)
        self.ready = tuple(float(v) for v in self.ready)
        base = ARMS[self.chain]
        if len(self.joint_names) != base.dof:
            raise ValueError(f"joint_names needs {base.dof} names for {self.chain}")
        if self.ready and len(self.ready) != base.dof:
            raise ValueError(f"ready needs {base.dof} joint values for {self.chain}")
        if len(self.canvas_origin_m) != 3:
            raise ValueError("canvas_origin_m must be (x, y, z) meters")
        for name in ("tool_length_m", "press_depth_m", "plunge_speed_m_s", "max_joint_speed_rad_s",
                     "max_joint_accel_rad_s2", "server_timeout_s", "stall_timeout_s"):  # fmt: skip
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}")

    @property
    def serial_chain(self) -> SerialChain:
        """The chain with this config's brush length (and rest pose)."""
        from dataclasses import replace

        base = ARMS[self.chain]
        return replace(base, tool_length_m=self.tool_length_m, ready=self.ready or base.ready)

    @property
    def accel_limit(self) -> float | None:
        """rad/s^2 the planner keeps joints within when accelerations are sent, else None."""
        return self.max_joint_accel_rad_s2 if self.send_accelerations else None

    @property
    def canvas_frame(self) -> CanvasFrame:
        return CanvasFrame(origin_m=self.canvas_origin_m, yaw_rad=self.canvas_yaw_rad)
