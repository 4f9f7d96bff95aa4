"""G-code for GRBL 1.1 from checked `SafePath`s, and parsing of GRBL's replies.

A job is a list of `JobLine`s: the G-code text (without the ``N`` line number, which the driver
adds), the path it belongs to and the machine state after it, so a resumed job can put the
machine back where it stood. Program shape:

    G21 G90 G94            millimetres, absolute, feed per minute
    G1 Z<travel> F<travel> brush up
    per path:  [clean: travel to the jar, G1 down, G4 dwell, up]
               [dip:   travel to the paint well, G1 down, G4 dwell, up]
               G1 X Y (start, travel feed)  G1 Z<z0> F<plunge>  G1 X Y Z F<feed> ...  up
    travel to the canvas origin

Travel and brush lifts are G1 at ``limits.travel_speed_m_s`` (a G0 would run at the machine's
maximum rates, whatever the config says). With ``pen="servo"`` every Z is instead ``M3 S<n>``
followed by a ``G4`` dwell.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from planner.gcode import canvas_to_machine_mm
from robot.arms.grbl.config import GrblArmConfig
from robot.safety import SafePath


@dataclass(frozen=True)
class MachineState:
    """Machine state after a line: position (mm), servo value, feed (mm/min), brush down."""

    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    s: int = 0
    feed: float = 0.0
    down: bool = False


@dataclass(frozen=True)
class JobLine:
    """One G-code line of a job.

    Attributes:
        text: G-code without line number or newline.
        path: index (into the job's safe paths) of the path it belongs to; -1 for set-up.
        ends_path: True on the line that finishes its path (the brush lift).
        state: machine state once the line has run.
    """

    text: str
    path: int
    ends_path: bool
    state: MachineState


def fmt(v: float) -> str:
    """A coordinate with at most 3 decimals and no trailing zeros (bytes are the bottleneck)."""
    s = f"{v:.3f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


class GcodeWriter:
    """Builds a job's lines while tracking the machine state. See the module docstring."""

    def __init__(self, config: GrblArmConfig) -> None:
        self.cfg = config
        self.lines: list[JobLine] = []
        self.state = MachineState(z=self.travel_z, s=config.servo_up)
        self._path = -1

    # ---- canvas -> machine ---------------------------------------------------------------------
    @property
    def travel_z(self) -> float:
        return self.cfg.surface_z_mm + 1000.0 * self.cfg.workspace.travel_height_m

    def xy_mm(self, x_m: float, y_m: float) -> tuple[float, float]:
        """Canvas m -> machine mm, by the convention `plan.to_gcode` uses too."""
        c = self.cfg
        origin = (c.origin_x_mm, c.origin_y_mm)
        h = c.workspace.canvas_height_m
        return canvas_to_machine_mm(x_m, y_m, h, origin, c.y_sign == -1, c.x_sign)

    def z_mm(self, press: float) -> float:
        return self.cfg.surface_z_mm - press * self.cfg.press_depth_mm

    def servo(self, press: float) -> int:
        c = self.cfg
        return round(c.servo_touch + press * (c.servo_press - c.servo_touch))

    # ---- emitting ------------------------------------------------------------------------------
    def emit(self, text: str, ends_path: bool = False, **state) -> None:
        st = self.state.__dict__ | state
        self.state = MachineState(**st)
        self.lines.append(JobLine(text, self._path, ends_path, self.state))

    def travel_move(self, words: str, ends_path: bool = False, **state) -> None:
        """A brush-up move at the travel speed (the F word only when the feed changes)."""
        f = 60000.0 * self.cfg.limits.travel_speed_m_s
        feed = "" if self.state.feed == f else f" F{fmt(f)}"
        self.emit(f"G1 {words}{feed}", ends_path, feed=f, **state)

    def brush_up(self, ends_path: bool = False) -> None:
        c = self.cfg
        if c.pen == "z":
            self.travel_move(f"Z{fmt(self.travel_z)}", ends_path, z=self.travel_z, down=False)
        else:
            self.emit(f"M3 S{c.servo_up}", s=c.servo_up, down=False)
            self.emit(f"G4 P{fmt(c.servo_settle_s)}", ends_path)

    def brush_to(self, press: float, depth_mm: float | None = None) -> None:
        """Lower (or press) the brush: pressing depth 0..1, or an absolute depth below surface."""
        c = self.cfg
        if c.pen == "z":
            z = self.z_mm(press) if depth_mm is None else c.surface_z_mm - depth_mm
            f = 60000.0 * c.plunge_speed_m_s
            self.emit(f"G1 Z{fmt(z)} F{fmt(f)}", z=z, feed=f, down=True)
        else:
            s = c.servo_press if depth_mm is not None else self.servo(press)
            self.emit(f"M3 S{s}", s=s, down=True)
            self.emit(f"G4 P{fmt(c.servo_settle_s)}")

    def travel(self, x_m: float, y_m: float) -> None:
        x, y = self.xy_mm(x_m, y_m)
        self.travel_move(f"X{fmt(x)} Y{fmt(y)}", x=x, y=y)

    def station(self, xy: Sequence[float]) -> None:
        """Dip into a paint well or rinse in the jar: travel, down, dwell, up."""
        self.travel(xy[0], xy[1])
        self.brush_to(0.0, depth_mm=self.cfg.station_depth_mm)
        self.emit(f"G4 P{fmt(self.cfg.workspace.station_dwell_s)}")
        self.brush_up()

    def path(self, k: int, sp: SafePath) -> None:
        self._path = k
        ws = self.cfg.workspace
        if sp.clean_before:
            self.station(ws.water_station)
        if sp.dip_before:
            self.station(ws.paint_station(sp.palette_index))
        pts = sp.points
        self.travel(pts[0, 0], pts[0, 1])
        self.brush_to(float(pts[0, 2]))
        feed = 60000.0 * sp.speed_m_s
        for j in range(1, len(pts)):
            x, y = self.xy_mm(pts[j, 0], pts[j, 1])
            words = f"G1 X{fmt(x)} Y{fmt(y)}"
            if self.cfg.pen == "z":
                z = self.z_mm(float(pts[j, 2]))
                words += f" Z{fmt(z)}"
            else:
                z = self.state.z
                s = self.servo(float(pts[j, 2]))
                if s != self.state.s:
                    self.emit(f"M3 S{s}", s=s)
            if j == 1:
                words += f" F{fmt(feed)}"
            self.emit(words, x=x, y=y, z=z, feed=feed)
        self.brush_up(ends_path=True)
        self._path = -1


def job_lines(paths: Sequence[SafePath], config: GrblArmConfig) -> list[JobLine]:
    """The whole job's G-code for checked paths (see the module docstring)."""
    w = GcodeWriter(config)
    w.emit("G21 G90 G94")
    w.brush_up()
    for k, sp in enumerate(paths):
        w.path(k, sp)
    w.travel(0.0, 0.0)
    return w.lines


def dab_lines(
    config: GrblArmConfig, x_m: float, y_m: float, height_m: float, dip_station=None
) -> list[str]:
    """A brush-height probe (``pen="z"``): [dip,] travel above (x, y), lower the tip to
    ``height_m`` above ``surface_z_mm``, dwell, lift; the final ``G4 P0`` is answered only
    when every move before it has finished."""
    w = GcodeWriter(config)
    w.emit("G21 G90 G94")
    w.brush_up()
    if dip_station is not None:
        w.station(dip_station)
    w.travel(x_m, y_m)
    z = config.surface_z_mm + 1000.0 * height_m
    f = 60000.0 * config.plunge_speed_m_s
    w.emit(f"G1 Z{fmt(z)} F{fmt(f)}", z=z, feed=f, down=True)
    w.emit(f"G4 P{fmt(config.workspace.station_dwell_s)}")
    w.brush_up()
    w.emit("G4 P0")
    return [line.text for line in w.lines]


def recovery_lines(
    state: MachineState, config: GrblArmConfig, start: MachineState | None = None
) -> list[JobLine]:
    """Lines that bring a reset, homed or reconnected machine back to ``state`` before a resume:
    modes, brush up where it stands, travel to the position, brush back down if it was down,
    feed. ``start`` is where the machine is now (its states then tell which lines move)."""
    w = GcodeWriter(config)
    if start is not None:
        w.state = start
    w.emit("G21 G90 G94")
    w.brush_up()
    w.travel_move(f"X{fmt(state.x)} Y{fmt(state.y)}", x=state.x, y=state.y)
    if state.down:
        if config.pen == "z":
            f = 60000.0 * config.plunge_speed_m_s
            w.emit(f"G1 Z{fmt(state.z)} F{fmt(f)}", z=state.z, feed=f, down=True)
        else:
            w.emit(f"M3 S{state.s}", s=state.s, down=True)
            w.emit(f"G4 P{fmt(config.servo_settle_s)}")
    if state.feed > 0:
        w.emit(f"F{fmt(state.feed)}", feed=state.feed)
    return w.lines


# ---- replies -------------------------------------------------------------------------------------
_STATUS = re.compile(r"^<([A-Za-z]+)(?::(\d))?\|(.*)>$")


@dataclass(frozen=True)
class Status:
    """A parsed status report ``<State|MPos:x,y,z|Bf:blocks,bytes|Ln:n|WCO:x,y,z>``.

    Attributes:
        state: "Idle", "Run", "Hold", "Alarm", "Home", "Jog", "Door", "Check", "Sleep".
        mpos: machine position (mm), when ``$10`` reports it.
        line_number: ``Ln``: N of the block running now (GRBL built with line numbers).
        substate: the digit after ``Hold:`` / ``Door:`` (``Hold:0``: the hold is complete).
        wpos: work position (mm), when ``$10`` reports it instead of ``mpos``.
        buffer: ``Bf``: (free planner blocks, free RX bytes), with ``$10`` bit 1.
        wco: ``WCO``: work coordinate offset (mm), sent every few reports.
    """

    state: str
    mpos: tuple[float, ...] | None
    line_number: int | None
    substate: int | None = None
    wpos: tuple[float, ...] | None = None
    buffer: tuple[int, int] | None = None
    wco: tuple[float, ...] | None = None

    @property
    def stopped(self) -> bool:
        """No motion: idle, alarm, or a feed hold that has finished decelerating."""
        return self.state in ("Idle", "Alarm", "Sleep") or (
            self.state == "Hold" and self.substate == 0
        )


def parse_status(text: str) -> Status | None:
    """Parse a status report line; None if it is not one."""
    m = _STATUS.match(text)
    if not m:
        return None
    fields = dict(f.split(":", 1) for f in m.group(3).split("|") if ":" in f)

    def vec(name: str) -> tuple[float, ...] | None:
        return tuple(float(v) for v in fields[name].split(",")) if name in fields else None

    try:
        ln = int(fields["Ln"]) if "Ln" in fields else None
        bf = tuple(int(v) for v in fields["Bf"].split(",")) if "Bf" in fields else None
        sub = int(m.group(2)) if m.group(2) is not None else None
        status = Status(m.group(1), vec("MPos"), ln, sub, vec("WPos"), bf, vec("WCO"))
    except ValueError:
        return None
    if bf is not None and len(bf) != 2:
        return None
    return status


# GRBL 1.1's documented error and alarm codes (its interface docs), in short
ERRORS = {
    1: "a G-code word has no letter",
    2: "bad or missing number",
    3: "'$' command not recognised or not supported",
    4: "negative value where a positive one is expected",
    5: "homing is not enabled ($22=0)",
    6: "step pulse must be longer than 3 us",
    7: "EEPROM read failed: settings restored to defaults",
    8: "'$' command only while idle",
    9: "G-code locked out during alarm or jog (home with $H or unlock with $X)",
    10: "soft limits need homing enabled",
    11: "line too long (not executed)",
    12: "setting exceeds the maximum step rate",
    13: "safety door open",
    14: "build info or startup line too long for the EEPROM",
    15: "jog target exceeds machine travel",
    16: "invalid jog command",
    17: "laser mode needs PWM output",
    20: "unsupported or invalid G-code command",
    21: "two G-code commands of the same modal group",
    22: "feed rate not set",
    23: "command needs an integer value",
    24: "two commands that both need the axis words",
    25: "a word is repeated in the block",
    26: "command needs axis words, none given",
    27: "line number out of range (1-9999999)",
    28: "command is missing a P or L value",
    29: "unsupported work coordinate system",
    30: "G53 needs G0 or G1 active",
    31: "axis words unused while G80 is active",
    32: "arc without axis words in its plane",
    33: "invalid motion target",
    34: "arc radius error",
    35: "arc without IJK offset in its plane",
    36: "unused words in the block",
    37: "tool length offset on a non-configured axis",
    38: "tool number too large",
}
ALARMS = {
    1: "hard limit triggered: position likely lost, home again",
    2: "soft limit: target outside machine travel (position kept)",
    3: "reset while in motion: position may be lost, home again",
    4: "probe not in its expected initial state",
    5: "probe did not touch within its travel",
    6: "homing failed: reset during homing",
    7: "homing failed: safety door opened",
    8: "homing failed: could not pull off the limit switch",
    9: "homing failed: limit switch not found",
}


def explain(reply: str) -> str:
    """``error:N`` / ``ALARM:N`` with what GRBL 1.1 means by it."""
    kind, _, code = reply.partition(":")
    table = ERRORS if kind == "error" else ALARMS
    meaning = table.get(int(code), "unknown code") if code.strip().isdigit() else "unknown code"
    return f"{reply} ({meaning})"
