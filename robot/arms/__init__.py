"""Arms: the `Arm` base class, its config registry and one subfolder per driver.

Built-in types: ``sim`` (`robot.arms.sim`) and ``grbl`` (`robot.arms.grbl`). Build one from a
config with `make_arm`; the driver module is imported only then.
"""

from robot.arms.arm import Arm, ExecutionReport, ProgressCallback
from robot.arms.config import ArmConfig, arm_config_class, arm_types, make_arm, register_arm_config

__all__ = [
    "Arm",
    "ArmConfig",
    "ExecutionReport",
    "ProgressCallback",
    "arm_config_class",
    "arm_types",
    "make_arm",
    "register_arm_config",
]
