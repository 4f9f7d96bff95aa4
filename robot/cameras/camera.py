"""`Camera`: the base class of every camera driver.

``connect() -> capture() ... -> disconnect()``; `capture` returns an (H, W, 3) uint8 RGB numpy
array (what OpenCV and the calibration work with).
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from robot.cameras.config import CameraConfig


class Camera(abc.ABC):
    """A camera looking at the canvas.

    Args:
        config: the camera's registered config dataclass.
    """

    config_class: type[CameraConfig]

    def __init__(self, config: CameraConfig) -> None:
        self.config = config

    @property
    @abc.abstractmethod
    def is_connected(self) -> bool:
        """Whether `connect` succeeded and `disconnect` was not called since."""

    @abc.abstractmethod
    def connect(self) -> None:
        """Open the device; raises `robot.errors.DeviceConnectionError` if it cannot."""

    @abc.abstractmethod
    def capture(self) -> np.ndarray:
        """One frame: (H, W, 3) uint8 RGB."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Release the device."""

    def __enter__(self) -> Camera:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        if self.is_connected:
            self.disconnect()
