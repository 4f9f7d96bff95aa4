"""`cofrida robot up`: start the ROS 2 nodes for an arm and a camera, until Ctrl-C.

    cofrida robot up --arm.type=sim --camera.type=sim
    cofrida robot up --arm.type=ros2 \\
        --arm.action=/scaled_joint_trajectory_controller/follow_joint_trajectory \\
        --arm.canvas_origin_m=[0.5,0.1,0.02] --camera.type=opencv --camera.device=0

``--params-file=robot.yaml`` passes a ROS parameters file to every node (``painter:
ros__parameters: arm.canvas_origin_m: [0.55, 0.14, 0.02]``...). With ros2cli and the ``launch``
package installed, ``ros2 launch robot/ros/cofrida.launch.py arm_type:=sim`` starts the same
nodes (see that file).

``--arm.type=sim`` is the simulation: the simulated FollowJointTrajectory server
(`robot.ros.sim_arm_node`) plus the painter driving it with the ``ros2`` arm driver, so the
whole ROS path runs. ``--arm.type=ros2`` drives a real controller that is already running
(ros2_control); any other type (``grbl``) is driven by the painter directly. The camera node
publishes ``--camera.*`` frames on ``/camera/image_raw`` unless ``--camera.type=none``.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence

from robot.cli_config import split_options

_ROS2_ARM_KEYS = ("name", "action", "joint_names", "chain", "tool_length_m", "canvas_origin_m",
                  "canvas_yaw_rad", "press_depth_m", "max_joint_speed_rad_s", "workspace",
                  "limits", "on_violation", "paint_speed_m_s", "joint_states_topic",
                  "stall_timeout_s", "server_timeout_s", "plunge_speed_m_s", "send_accelerations",
                  "max_joint_accel_rad_s2")  # fmt: skip


def commands(argv: Sequence[str]) -> list[list[str]]:
    """The node command lines for these options (each run with this Python)."""
    options, rest = split_options(argv, ["arm", "camera"])
    ros_args: list[str] = []
    for k, a in enumerate(list(rest)):  # --params-file=FILE: a ROS parameters YAML for all nodes
        if a.startswith("--params-file="):
            ros_args = ["--ros-args", "--params-file", a.split("=", 1)[1]]
            rest = rest[:k] + rest[k + 1 :]
            break
    arm, cam = dict(options["arm"]), dict(options["camera"])
    arm_type = arm.pop("type", "sim")
    py = [sys.executable, "-m"]
    as_args = lambda group, d: [f"--{group}.{k}={v}" for k, v in d.items()]  # noqa: E731
    out = []
    if arm_type == "sim":
        shared = {k: v for k, v in arm.items() if k.split(".")[0] in _ROS2_ARM_KEYS}
        sim_own = [f"--{k.replace('_', '-')}={v}" for k, v in arm.items() if k not in shared]
        out.append([*py, "robot.ros.sim_arm_node", *as_args("arm", shared), *sim_own])
        out.append([*py, "robot.ros.painter_node", "--arm.type=ros2", *as_args("arm", shared)])
    else:
        out.append([*py, "robot.ros.painter_node", f"--arm.type={arm_type}", *as_args("arm", arm)])
    if cam.get("type") != "none":
        out.append([*py, "robot.ros.camera_node", *as_args("camera", cam), *rest])
    return [[*cmd, *ros_args] for cmd in out]


def main(argv: Sequence[str] | None = None) -> int:
    """Start the nodes; stop them all when one exits or on Ctrl-C. Returns the exit code."""
    procs = [
        subprocess.Popen(cmd) for cmd in commands(list(sys.argv[1:] if argv is None else argv))
    ]
    print("cofrida robot up: " + ", ".join(c.args[2] for c in procs) + " (Ctrl-C stops)")
    code = 0
    try:
        while all(p.poll() is None for p in procs):
            time.sleep(0.2)
        code = next(p.returncode for p in procs if p.poll() is not None) or 1
    except KeyboardInterrupt:
        pass
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
    return code


if __name__ == "__main__":
    sys.exit(main())
