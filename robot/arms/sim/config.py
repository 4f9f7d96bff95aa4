"""Config of the simulated arm (type ``sim``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from robot.arms.config import ArmConfig, register_arm_config
from sim.brush import BRUSH_PRESETS


@register_arm_config("sim")
@dataclass
class SimArmConfig(ArmConfig):
    """A simulated arm painting with the physical brush model; what the UI and demo use."""

    driver = "robot.arms.sim.sim_arm:SimArm"

    canvas_px: int = 512  # px, width of the simulated canvas image (height keeps the aspect)
    brush: str = "round"  # sim.Brush preset the arm holds
    speed_factor: float = 0.0  # 1 = real arm speed (sleeps), 2 = twice as fast; 0 or inf = no waits
    dip_time_s: float = 2.0  # s a dip or a clean takes at real speed (well, wipe, back)
    seed: int = 0  # seed of the physical brush's randomness
    press_depth_m: float = 0.003  # m the brush is lowered below the surface at pressing depth 1
    # Where the canvas really is, unknown to the arm (0 / 1: exactly where the config says).
    # The calibrations measure these: robot-to-canvas the placement, brush height the surface.
    misregistration_offset_m: tuple = (0.0, 0.0)  # m, (dx, dy) the brush lands off, everywhere
    misregistration_rotation_deg: float = 0.0  # deg, turn about the canvas centre (x towards y)
    misregistration_scale: float = 1.0  # scale about the canvas centre (arm steps per mm off)
    surface_error_m: float = 0.0  # m the true surface lies above the configured one (<0: below)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (isinstance(self.canvas_px, int) and self.canvas_px >= 8):
            raise ValueError(f"canvas_px must be an int >= 8, got {self.canvas_px!r}")
        if self.brush not in BRUSH_PRESETS:
            raise ValueError(f"brush must be one of {sorted(BRUSH_PRESETS)}, got {self.brush!r}")
        if math.isnan(self.speed_factor) or self.speed_factor < 0:
            raise ValueError(f"speed_factor must be >= 0 (0 = no waits), got {self.speed_factor}")
        if not (math.isfinite(self.dip_time_s) and self.dip_time_s >= 0):
            raise ValueError(f"dip_time_s must be >= 0, got {self.dip_time_s}")
        self.misregistration_offset_m = tuple(float(v) for v in self.misregistration_offset_m)
        if len(self.misregistration_offset_m) != 2:
            raise ValueError("misregistration_offset_m must be (dx, dy) meters")
        if not 0.5 <= self.misregistration_scale <= 2.0 or not self.press_depth_m > 0:
            raise ValueError("misregistration_scale must be in 0.5..2 and press_depth_m > 0")
        values = (*self.misregistration_offset_m, self.misregistration_rotation_deg,
                  self.surface_error_m)  # fmt: skip
        if not all(math.isfinite(v) for v in values):
            raise ValueError("the misregistration and surface_error_m must be finite")
