"""GRBL arms and drawing machines over a serial port.

`config.py` (the ``grbl`` arm type), `protocol.py` (safe paths -> G-code lines), `driver.py`
(pyserial streaming with GRBL's character-counting flow control, faults, resume) and
`emulator.py` (a GRBL emulator on a pseudo-terminal, to dry-run G-code and to test the driver).
"""

from robot.arms.grbl.config import GrblArmConfig

__all__ = ["GrblArmConfig"]
