"""Everything between a `planner.Plan` and paint on paper.

Layout (after lerobot: a base class per kind of device, a registered config dataclass per
implementation, the driver imported only when chosen):

- `robot.arms`: `Arm` (connect / home / execute(paths, on_progress) / stop / disconnect,
  `ExecutionReport`), `make_arm(config)`; drivers ``sim`` (`robot.arms.sim`, the physical brush
  model on an in-memory canvas) and ``grbl`` (`robot.arms.grbl`: G-code over pyserial with
  character-counting flow control, fault reports and resume, plus a GRBL emulator on a pty) and
  ``ros2`` (`robot.arms.ros2`: ``FollowJointTrajectory`` through inverse kinematics).
- `robot.cameras`: `Camera` (connect / capture / disconnect), `make_camera(config)`; drivers
  ``sim`` (renders the sim canvas with perspective, light, noise and ArUco corner markers) and
  ``opencv`` (``cv2.VideoCapture``).
- `robot.safety`: `Workspace`, `MotionLimits`, `check_paths` (refuse or clip) run by every
  driver before anything is sent.
- `robot.calibration`: canvas homography, colour correction, brush height, robot-to-canvas
  placement, stroke capture; saved per robot. Arms apply the brush height and the placement
  saved under their name.
- `robot.kinematics`: DH serial chains (UR5e shipped), FK, damped-least-squares IK, canvas frame.
- `robot.cli_config`: ``--arm.type=grbl --arm.port=/dev/ttyUSB0`` options into the configs.
- `robot.errors`: typed errors and the connection decorators.

Not yet: URDF chains, a test against a real ``joint_trajectory_controller``.
"""
