"""ROS 2 side of the robot: nodes (camera, painter, simulated arm) and interface definitions.

Set up once with ``python -m robot.ros.setup_env`` (pinned ``ros-jazzy-*`` wheels + interfaces
generated with cmake/ninja). Nothing here is imported by the rest of ``robot`` unless a ROS
driver or node is chosen.
"""
