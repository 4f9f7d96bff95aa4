"""The simulated camera: the sim arm's canvas as a real camera would see it."""

from robot.cameras.sim.config import SimCameraConfig

__all__ = ["SimCameraConfig"]
