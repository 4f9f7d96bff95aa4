"""Config of GRBL machines (type ``grbl``): serial port, machine frame, pen/brush height."""

from __future__ import annotations

import math
from dataclasses import dataclass

from robot.arms.config import ArmConfig, register_arm_config

PEN_MODES = ("z", "servo")


@register_arm_config("grbl")
@dataclass
class GrblArmConfig(ArmConfig):
    """A machine speaking GRBL 1.1 G-code over a serial port.

    Canvas meters (x right, y down) map to machine millimetres by
    `planner.gcode.canvas_to_machine_mm`, the convention `plan.to_gcode` uses too: machine Y up
    (``y_sign=-1``, the default), ``(origin_x_mm, origin_y_mm)`` the canvas' bottom-left corner,
    ``X = origin_x_mm + 1000 x``, ``Y = origin_y_mm + 1000 (canvas_height - y)``; with
    ``y_sign=+1`` (machine Y down) the origin is the top-left corner and ``Y = origin_y_mm +
    1000 y``. The brush height is either the Z axis (``pen="z"``) or a servo (``pen="servo"``,
    ``M3 S<n>``).
    """

    driver = "robot.arms.grbl.driver:GrblArm"

    port: str = "/dev/ttyUSB0"  # serial device of the controller
    baudrate: int = 115200  # GRBL 1.1 default
    rx_buffer_bytes: int = 127  # bytes in flight: GRBL's RX buffer is 128, one kept free (its docs)
    origin_x_mm: float = 0.0  # mm, machine X of the canvas' left edge
    origin_y_mm: float = 0.0  # mm, machine Y of the canvas' bottom edge (top edge: y_sign=+1)
    x_sign: int = 1  # +1 / -1: machine X direction of canvas +x
    y_sign: int = -1  # -1: machine Y up (canvas y is down), as plan.to_gcode; +1: machine Y down
    pen: str = "z"  # "z": brush height on the Z axis; "servo": M3 S<n> sets the height
    surface_z_mm: float = 0.0  # mm, machine Z where the bristles just touch (brush height calib.)
    press_depth_mm: float = 3.0  # mm below the surface at pressing depth z = 1
    station_depth_mm: float = 8.0  # mm below the surface the brush dips into a well / the jar
    plunge_speed_m_s: float = 0.02  # m/s lowering the brush: slow, so bristles land, not stab
    servo_up: int = 0  # S value with the brush lifted (servo mode)
    servo_touch: int = 600  # S value where the bristles just touch (servo mode)
    servo_press: int = 1000  # S value at pressing depth z = 1 (servo mode)
    servo_settle_s: float = 0.15  # s dwell (G4) after a servo move: servos are not tracked
    homing: bool = False  # home() runs $H (machine has limit switches) instead of a G0 to origin
    unlock_on_connect: bool = False  # send $X if the machine starts in ALARM (only if it is safe)
    ack_timeout_s: float = 10.0  # s without progress (no ok, no motion, no hold) before a halt
    status_interval_s: float = 0.2  # s between status polls (?) while streaming
    connect_timeout_s: float = 3.0  # s to wait for the GRBL banner after a reset
    line_numbers: bool = True  # send N<k> on job lines: status Ln tells which ran after a fault

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.pen not in PEN_MODES:
            raise ValueError(f"pen must be one of {PEN_MODES}, got {self.pen!r}")
        if self.x_sign not in (1, -1) or self.y_sign not in (1, -1):
            raise ValueError("x_sign and y_sign must be +1 or -1")
        if not 16 <= self.rx_buffer_bytes <= 1024:
            raise ValueError(f"rx_buffer_bytes must be in 16..1024, got {self.rx_buffer_bytes}")
        for name in ("ack_timeout_s", "status_interval_s", "connect_timeout_s", "plunge_speed_m_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if self.press_depth_mm < 0 or self.station_depth_mm < 0:
            raise ValueError("press_depth_mm and station_depth_mm must be >= 0")
