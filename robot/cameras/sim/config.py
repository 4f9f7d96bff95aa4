"""Config of the simulated camera (type ``sim``)."""

from __future__ import annotations

from dataclasses import dataclass

from robot.cameras.config import CameraConfig, register_camera_config


@register_camera_config("sim")
@dataclass
class SimCameraConfig(CameraConfig):
    """A camera above the canvas: perspective, uneven light, colour cast, sensor noise.

    Without an arm the canvas is blank paper of ``canvas_width_m`` x ``canvas_height_m``.
    """

    driver = "robot.cameras.sim.sim_camera:SimCamera"

    width: int = 960  # px
    height: int = 720  # px
    fill: float = 0.85  # fraction of the frame width the board (canvas + markers) spans
    keystone: float = 0.06  # 0..0.3, how much narrower the far edge looks (camera tilt)
    rotation_deg: float = 4.0  # deg, roll of the camera about its axis
    light_falloff: float = 0.03  # 0..0.5, relative brightness lost across the frame
    white_balance: tuple = (1.0, 0.93, 0.8)  # linear RGB gains: a warm lamp
    crosstalk: float = 0.04  # 0..0.2, sensor colour channel mixing
    black_level: float = 0.02  # linear offset added to every channel (flare)
    noise_std: float = 0.01  # std of sensor noise in sRGB 0..1 units
    marker_size_m: float = 0.03  # m, side of the ArUco markers at the canvas corners
    aruco_dictionary: str = "DICT_4X4_50"  # OpenCV predefined dictionary of the markers
    canvas_width_m: float = 0.2794  # m, canvas size when no arm is attached
    canvas_height_m: float = 0.2159  # m
    seed: int = 0  # seed of the sensor noise

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.2 <= self.fill <= 0.98:
            raise ValueError(f"fill must be in 0.2..0.98, got {self.fill}")
        if not 0 <= self.keystone <= 0.3 or not 0 <= self.light_falloff <= 0.5:
            raise ValueError("keystone must be in 0..0.3 and light_falloff in 0..0.5")
        self.white_balance = tuple(float(g) for g in self.white_balance)
        if len(self.white_balance) != 3 or min(self.white_balance) <= 0:
            raise ValueError("white_balance must be three positive gains")
        if self.marker_size_m <= 0 or self.noise_std < 0:
            raise ValueError("marker_size_m must be > 0 and noise_std >= 0")
