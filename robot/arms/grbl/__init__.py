"""GRBL arms and drawing machines over a serial port.

`config.py` (the ``grbl`` arm type), `protocol.py` (safe paths -> G-code lines, replies),
`driver.py` (pyserial streaming with GRBL's character-counting flow control, faults, resume),
`tracking.py` (which lines actually ran: GRBL's ``ok`` only means planned) and `emulator.py` (a
GRBL 1.1 emulator on a pseudo-terminal, to dry-run G-code and to test the driver).
"""

from robot.arms.grbl.config import GrblArmConfig

__all__ = ["GrblArmConfig"]
