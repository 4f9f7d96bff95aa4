"""Camera configs: one dataclass per driver, registered under a type name (as for arms)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from robot.cameras.camera import Camera

_BUILTIN_CONFIG_MODULES = (
    "robot.cameras.sim.config",
    "robot.cameras.opencv.config",
    "robot.cameras.ros2.config",
)
_CAMERA_CONFIGS: dict[str, type[CameraConfig]] = {}


@dataclass
class CameraConfig:
    """Fields every camera has. Subclasses add their own and set ``driver``."""

    type: ClassVar[str] = ""
    driver: ClassVar[str] = ""  # "package.module:ClassName", imported only when chosen

    width: int = 1280  # px, frame width requested
    height: int = 720  # px, frame height requested

    def __post_init__(self) -> None:
        if not (isinstance(self.width, int) and isinstance(self.height, int)):
            raise ValueError("width and height must be integers (px)")
        if self.width < 16 or self.height < 16:
            raise ValueError(f"frame size {self.width}x{self.height} px is too small")


def register_camera_config(type_name: str):
    """Class decorator: register a `CameraConfig` subclass under ``type_name``."""

    def wrap(cls: type[CameraConfig]) -> type[CameraConfig]:
        if type_name in _CAMERA_CONFIGS and _CAMERA_CONFIGS[type_name] is not cls:
            raise ValueError(f"camera type {type_name!r} is already registered")
        cls.type = type_name
        _CAMERA_CONFIGS[type_name] = cls
        return cls

    return wrap


def _load_builtins() -> None:
    for module in _BUILTIN_CONFIG_MODULES:
        importlib.import_module(module)


def camera_types() -> list[str]:
    """Registered camera type names."""
    _load_builtins()
    return sorted(_CAMERA_CONFIGS)


def camera_config_class(type_name: str) -> type[CameraConfig]:
    """The config dataclass registered under ``type_name``; ValueError lists the known ones."""
    _load_builtins()
    if type_name not in _CAMERA_CONFIGS:
        raise ValueError(
            f"unknown camera type {type_name!r}; choose one of {sorted(_CAMERA_CONFIGS)}"
        )
    return _CAMERA_CONFIGS[type_name]


def make_camera(config: CameraConfig, **kwargs) -> Camera:
    """Build the driver of ``config`` (importing its module now). The sim camera takes
    ``arm=`` (a connected `SimArm`) to look at its canvas."""
    if not isinstance(config, CameraConfig) or not config.driver:
        raise ValueError(
            f"make_camera needs a registered CameraConfig, got {type(config).__name__}"
        )
    module_name, class_name = config.driver.split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(config, **kwargs)
