"""The simulated arm: paints on an in-memory canvas with `sim.physical_brush.PhysicalBrush`."""

from robot.arms.sim.config import SimArmConfig

__all__ = ["SimArmConfig"]
