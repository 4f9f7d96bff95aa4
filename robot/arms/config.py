"""Arm configs: one dataclass per driver, registered under a type name.

Each driver folder has a ``config.py`` with a dataclass decorated by
``@register_arm_config("name")`` and a ``driver`` class variable ("module:Class"). The config
modules are light (no serial, no OpenCV), so the command line can list every type; `make_arm`
imports the driver module only for the type chosen.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from robot.safety import VIOLATION_POLICIES, MotionLimits, Workspace

if TYPE_CHECKING:
    from robot.arms.arm import Arm

# config modules of the built-in arms, imported on first lookup
_BUILTIN_CONFIG_MODULES = (
    "robot.arms.sim.config",
    "robot.arms.grbl.config",
    "robot.arms.ros2.config",
)
_ARM_CONFIGS: dict[str, type[ArmConfig]] = {}


@dataclass
class ArmConfig:
    """Fields every arm has. Subclasses add their own and set ``type`` / ``driver``."""

    type: ClassVar[str] = ""
    driver: ClassVar[str] = ""  # "package.module:ClassName" of the driver, imported lazily

    name: str = "default"  # robot name: calibrations are saved under it in the user data dir
    workspace: Workspace = field(default_factory=Workspace)  # where the brush may go
    limits: MotionLimits = field(default_factory=MotionLimits)  # how fast it may go
    on_violation: str = "refuse"  # "refuse" a bad plan outright, or "clip" it into the limits
    paint_speed_m_s: float = 0.05  # m/s tip speed for paths without meta["speed_m_s"]
    use_calibration: bool = True  # apply the robot-to-canvas and brush-height calibrations
    # saved under `name` (if any); false: exactly where the config puts the canvas

    def __post_init__(self) -> None:
        if self.on_violation not in VIOLATION_POLICIES:
            raise ValueError(
                f"on_violation must be one of {VIOLATION_POLICIES}, got {self.on_violation!r}"
            )
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"name must be a plain, non-empty name, got {self.name!r}")
        if not 0 < self.paint_speed_m_s <= self.limits.max_speed_m_s:
            raise ValueError(
                f"paint_speed_m_s={self.paint_speed_m_s} must be in (0, limits.max_speed_m_s="
                f"{self.limits.max_speed_m_s}]"
            )


def register_arm_config(type_name: str):
    """Class decorator: register an `ArmConfig` subclass under ``type_name``."""

    def wrap(cls: type[ArmConfig]) -> type[ArmConfig]:
        if type_name in _ARM_CONFIGS and _ARM_CONFIGS[type_name] is not cls:
            raise ValueError(f"arm type {type_name!r} is already registered")
        cls.type = type_name
        _ARM_CONFIGS[type_name] = cls
        return cls

    return wrap


def _load_builtins() -> None:
    for module in _BUILTIN_CONFIG_MODULES:
        importlib.import_module(module)


def arm_types() -> list[str]:
    """Registered arm type names."""
    _load_builtins()
    return sorted(_ARM_CONFIGS)


def arm_config_class(type_name: str) -> type[ArmConfig]:
    """The config dataclass registered under ``type_name``; ValueError lists the known ones."""
    _load_builtins()
    if type_name not in _ARM_CONFIGS:
        raise ValueError(f"unknown arm type {type_name!r}; choose one of {sorted(_ARM_CONFIGS)}")
    return _ARM_CONFIGS[type_name]


def make_arm(config: ArmConfig, **kwargs) -> Arm:
    """Build the driver of ``config`` (importing its module now). Not connected yet."""
    if not isinstance(config, ArmConfig) or not config.driver:
        raise ValueError(f"make_arm needs a registered ArmConfig, got {type(config).__name__}")
    module_name, class_name = config.driver.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(config, **kwargs)
