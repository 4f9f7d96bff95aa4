"""Everything between a `planner.Plan` and paint on paper.

Will own the `Arm` and `Camera` base classes with registered config dataclasses, their drivers
(simulated, GRBL over serial, ROS 2 ``FollowJointTrajectory``), kinematics, the safety envelope,
calibration (canvas homography, colour, brush height, stroke capture) and the ROS 2 nodes.
"""
