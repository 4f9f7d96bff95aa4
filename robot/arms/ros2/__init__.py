"""ROS 2 arm (type ``ros2``): any arm with a ros2_control ``joint_trajectory_controller``,
driven through ``control_msgs/action/FollowJointTrajectory``."""

from robot.arms.ros2.config import Ros2ArmConfig

__all__ = ["Ros2ArmConfig"]
