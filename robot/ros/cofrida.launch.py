"""ROS 2 launch description of cofrida's nodes (``launch`` package; ``launch_ros`` not needed).

    ros2 launch robot/ros/cofrida.launch.py arm_type:=sim camera_type:=sim
    ros2 launch robot/ros/cofrida.launch.py arm_type:=ros2 camera_type:=opencv \\
        params_file:=my_robot.yaml

Arguments: ``arm_type`` (sim: the simulated controller plus the painter; ros2: the painter
driving your running ros2_control controller; grbl), ``camera_type`` (sim, opencv, none) and
``params_file`` (a ROS parameters YAML given to every node: ``painter: ros__parameters:
arm.action: ...``, ``arm.canvas_origin_m: [0.55, 0.14, 0.02]``, ``camera: ros__parameters:
qos: reliable``). The nodes are the same command lines ``cofrida robot up`` starts
(`robot.ros.launch.commands`), run with the Python that runs the launch, so both ways behave
alike. Without ros2cli: ``python robot/ros/cofrida.launch.py arm_type:=sim`` runs this
description with `launch.LaunchService` when the ``launch`` package is importable, else falls
back to ``cofrida robot up``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ARGUMENTS = {"arm_type": "sim", "camera_type": "sim", "params_file": ""}


def node_commands(arm_type: str, camera_type: str, params_file: str = "") -> list[list[str]]:
    """The command line of every node for these launch arguments."""
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    from robot.ros.launch import commands

    argv = [f"--arm.type={arm_type}", f"--camera.type={camera_type}"]
    if params_file:
        argv.append(f"--params-file={params_file}")
    return commands(argv)


def generate_launch_description():
    """The `launch.LaunchDescription` ``ros2 launch`` runs."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction
    from launch.substitutions import LaunchConfiguration

    def nodes(context):
        values = {k: LaunchConfiguration(k).perform(context) for k in ARGUMENTS}
        return [
            ExecuteProcess(cmd=cmd, name=cmd[2].rsplit(".", 1)[-1], output="screen")
            for cmd in node_commands(
                values["arm_type"], values["camera_type"], values["params_file"]
            )
        ]

    arguments = [DeclareLaunchArgument(k, default_value=v) for k, v in ARGUMENTS.items()]
    return LaunchDescription([*arguments, OpaqueFunction(function=nodes)])


def main(argv: list[str]) -> int:
    """``python cofrida.launch.py name:=value ...`` without ros2cli."""
    values = dict(ARGUMENTS)
    for a in argv:
        key, sep, value = a.partition(":=")
        if not sep or key not in values:
            print(f"unknown launch argument {a!r}; known: {sorted(values)}", file=sys.stderr)
            return 2
        values[key] = value
    try:
        from launch import LaunchService
    except ImportError:  # no `launch` package: the same nodes through `cofrida robot up`
        from robot.ros.launch import main as robot_up

        argv = [f"--arm.type={values['arm_type']}", f"--camera.type={values['camera_type']}"]
        if values["params_file"]:
            argv.append(f"--params-file={values['params_file']}")
        return robot_up(argv)
    service = LaunchService(argv=[f"{k}:={v}" for k, v in values.items()])
    service.include_launch_description(generate_launch_description())
    return service.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
