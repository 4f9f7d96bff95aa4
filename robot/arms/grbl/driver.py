"""`GrblArm`: streams a job to a GRBL 1.1 controller over a serial port (pyserial).

Streaming uses GRBL's character-counting flow control: as many lines in flight as fit in the
controller's RX buffer (``rx_buffer_bytes``, 127); each ``ok`` / ``error:N`` frees the bytes of
the oldest. GRBL's ``ok`` means *parsed and planned*: up to 15 more moves may still be waiting in
its planner. The driver therefore tracks what actually *ran* (`tracking.Stream`): a ``G4`` / ``M3``
acknowledgement means everything before it ran; a status report's ``Bf`` (free planner blocks:
``$10`` bit 1, which `connect` turns on) says how many acknowledged moves are still queued, and
``Ln`` (when GRBL reports it) which one is running. A job counts as complete when the machine is
idle with an empty planner.

After a fault it halts (feed hold, wait for ``Hold:0``, soft reset: the position is kept), reads
where the machine stopped and finds the first job line that did not complete (`locate`: the
moves known to have run, then the position along the moves that may have). `resume` lifts the
brush where it stands, travels to that line's start, lowers the brush and streams from there.
Faults:

- ``error:N``: halt; the rejected line and everything after it run again on resume.
- ``ALARM:1`` / ``ALARM:2`` (limits): GRBL ignores a reset until ``[MSG:Reset to continue]``;
  the driver waits for it, resets, and the job stays locked until `home` (``$H``) or `unlock`
  (``$X``, after *you* checked the machine). ``ALARM:3`` (a reset from elsewhere during motion)
  and any banner the driver did not cause: the same.
- the port vanishing: on `resume` the driver reopens it, assumes nothing about the buffers (feed
  hold, soft reset, banner, status) and continues. A controller that restarted meanwhile (its
  banner arrived unasked, or its position is not on the job's path) has lost its coordinates:
  the job stays locked until `home` or `register_position`.
- no progress for ``ack_timeout_s`` (no ``ok``, the position not moving, not in a feed hold,
  beyond the dwell being run): halt as above. A feed hold is never a timeout.
- unknown or garbled reply lines are counted and ignored.

`stop` (any thread) is a feed hold, then a soft reset once the machine has stopped, in a job,
a `dab`, a `home` or idle. `disconnect` stops what runs and lifts a brush left down to travel
height before it closes the port (not on a locked or restarted machine).
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import serial

from robot.arms.arm import Arm, ExecutionReport, ProgressCallback
from robot.arms.grbl.config import GrblArmConfig
from robot.arms.grbl.protocol import (
    GcodeWriter,
    JobLine,
    MachineState,
    Status,
    dab_lines,
    explain,
    job_lines,
    parse_status,
    recovery_lines,
)
from robot.arms.grbl.tracking import (
    POSITION_TOL_MM,
    Entry,
    Stream,
    entries,
    fmt_pos,
    locate,
    near,
)
from robot.errors import DeviceConnectionError, RobotError, refuses_reconnect, requires_connection
from robot.safety import SafePath, check_dab
from sim.brush_path import BrushPath

HOME_HINT = (
    "home it (arm.home(): $H, needs homing switches and homing=true) or, once you have checked "
    "that it is where GRBL thinks and safe to move, arm.unlock() ($X); then resume()"
)
LOST_HINT = (
    "its position is lost: home it (arm.home() with homing=true) or move the brush to a known "
    "point and arm.register_position(x_mm, y_mm, z_mm); then resume()"
)


class MachineLockedError(DeviceConnectionError):
    """GRBL is locked (ALARM) or its position is not trusted: home, unlock or register first."""


class StoppedError(RobotError):
    """`GrblArm.stop` interrupted a `dab` or `home`: the machine was held, then reset."""


@dataclass
class _Job:
    paths: list[SafePath]
    lines: list[JobLine]
    report: ExecutionReport
    done: int = 0  # job lines [0, done) have run
    sent: int = 0  # job lines [0, sent) were written at least once
    locked: str | None = None  # why it may not resume before home / unlock / register_position
    lost: bool = False  # the lock needs the position re-established (unlock is not enough)
    parked: tuple[float, float, float] | None = None  # disconnect() lifted the brush to here


def _exclusive(method):
    """One operation talks to GRBL at a time; `stop` calls made after it began interrupt it."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        gen = self._stops  # read before waiting: a stop() meanwhile is this operation's
        with self._io:
            self._io_owner, self._gen = threading.get_ident(), gen
            try:
                return method(self, *args, **kwargs)
            finally:
                self._io_owner = None

    return wrapper


class GrblArm(Arm):
    """A GRBL machine. See `GrblArmConfig` and the module docstring.

    Attributes:
        last_status: the latest parsed status report (`protocol.Status`), or None.
        ignored_replies: reply lines that were not understood (garbage on the line).
        alarm: why GRBL is locked right now (None when it is not), e.g. after `connect` on a
            machine with homing enabled.
        settings: GRBL's ``$`` settings as read by `connect` (number -> value).
    """

    config_class = GrblArmConfig

    def __init__(self, config: GrblArmConfig) -> None:
        super().__init__(config)
        self._ser: serial.Serial | None = None
        self._wlock = threading.Lock()
        self._io = threading.Lock()  # held by the one operation that talks to GRBL
        self._io_owner: int | None = None  # thread running that operation
        self._stops = 0  # stop() calls so far
        self._gen = 0  # stop() calls before the running operation began: more means stopped
        self._buf = bytearray()
        self._pending: list[str] = []
        self._job: _Job | None = None
        self._wco = (0.0, 0.0, 0.0)
        self._planner_blocks = 15
        self.last_status: Status | None = None
        self.ignored_replies = 0
        self.alarm: str | None = None
        self.settings: dict[int, float] = {}

    # ---- connection ----------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self._ser is not None

    @refuses_reconnect
    @_exclusive
    def connect(self) -> None:
        """Open the port and make sure a GRBL answers, without resetting a controller that is
        idle (a reset would drop its G92 offsets); turns on ``Bf`` in status reports (``$10``).

        A machine that starts locked (homing enabled, or an alarm) connects, with `alarm`
        saying so and a warning; `execute` refuses until `home` or `unlock`.

        Raises:
            DeviceConnectionError: the port cannot be opened or no GRBL answers on it.
        """
        self._open()
        try:
            _, status = self._probe(self.config.connect_timeout_s)
            if status is None:  # silent: reset it, it must print its banner
                self._reset_and_wait()
            elif not status.stopped or self._busy(status):
                self._hold_and_reset()
            self._read_settings()
            status = self._query_status()
            if status is None:
                raise DeviceConnectionError(f"GRBL on {self.config.port} sends no status report")
            if status.buffer is not None and status.stopped:
                self._planner_blocks = status.buffer[0]
            if status.state == "Alarm":
                if self.config.unlock_on_connect:
                    self._command("$X")
                else:
                    self.alarm = "GRBL is locked in ALARM after connecting (homing enabled?)"
                    warnings.warn(f"{self.alarm}: {HOME_HINT}", stacklevel=2)
        except BaseException:
            self._close()
            raise

    def _open(self) -> None:
        cfg = self.config
        try:
            self._ser = serial.Serial(cfg.port, cfg.baudrate, timeout=0.002, write_timeout=2.0)
        except (serial.SerialException, OSError) as e:
            raise DeviceConnectionError(f"could not open GRBL port {cfg.port!r}: {e}") from None
        self._buf.clear()
        self._pending = []

    def _probe(self, timeout: float) -> tuple[bool, Status | None]:
        """Ask for status (every 0.25 s: a controller may still be booting) until one comes.
        Returns (a banner arrived unasked, the status or None)."""
        banner, status, deadline, ask = False, None, time.monotonic() + timeout, 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= ask:
                self._write(b"?")
                ask = time.monotonic() + 0.25
            for r in self._read_replies():
                if r.startswith("Grbl"):
                    banner = True
                elif (s := parse_status(r)) is not None:
                    status = self._note_status(s)
            if status is not None:
                return banner, status
        return banner, None

    def _reset_and_wait(self) -> None:
        self._write(b"\x18")
        if not self._await_banner(self.config.connect_timeout_s):
            raise DeviceConnectionError(
                f"no GRBL banner on {self.config.port} within {self.config.connect_timeout_s} s "
                f"(is it a GRBL controller at {self.config.baudrate} baud?)"
            )

    def _await_banner(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in self._read_replies():
                if r.startswith("Grbl"):
                    return True
                if r.startswith("ALARM:"):
                    self.alarm = explain(r)
        return False

    def _hold_and_reset(self, on_status=None) -> Status | None:
        """Feed hold, wait until stopped (``Hold:0``), soft reset, banner: the position is kept
        and nothing queued runs. Returns the last status before the reset (None if none)."""
        self._write(b"!")
        last, deadline, ask = None, time.monotonic() + self.config.connect_timeout_s, 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= ask:
                self._write(b"?")
                ask = time.monotonic() + 0.02
            for r in self._read_replies():
                if (s := parse_status(r)) is not None:
                    last = self._note_status(s)
                    if on_status is not None:
                        on_status(s)
                elif on_status is not None:
                    on_status(r)
            if last is not None and last.stopped:
                break
        self._reset_and_wait()
        return last

    def _read_settings(self) -> None:
        """``$$`` into `settings`; switch on the ``Bf`` status field (``$10`` bit 1)."""
        self.settings = {}
        for line in self._command("$$"):
            m = re.fullmatch(r"\$(\d+)=([-+]?[\d.]+)", line)
            if m:
                self.settings[int(m.group(1))] = float(m.group(2))
        mask = int(self.settings.get(10, 1))
        if not mask & 2:
            self._command(f"$10={mask | 2}")
            self.settings[10] = float(mask | 2)

    def disconnect(self) -> None:
        """Stop what runs (as `stop`), lift a brush left down to travel height, close the port.

        The lift happens only on a machine that answers, is not locked (ALARM, a job locked
        by a fault) and did not restart unasked (its position would be wrong); it is bounded
        by ``connect_timeout_s`` without progress. Called from inside a running operation
        (a progress callback), it only closes the port.
        """
        if self._io_owner == threading.get_ident():
            self._stops += 1
            self._close()
            return
        got = self._io.acquire(blocking=False)
        if not got:  # an operation runs: stop it, let it halt the machine, then take over
            self._stops += 1
            with contextlib.suppress(serial.SerialException, OSError):
                self._write(b"!")
            got = self._io.acquire(timeout=3.0 * self.config.connect_timeout_s + 1.0)
        try:
            if got and self._ser is not None:
                self._gen = self._stops
                with contextlib.suppress(serial.SerialException, OSError, DeviceConnectionError):
                    self._park()
        finally:
            self._close()
            if got:
                self._io.release()

    def _park(self) -> None:
        """Lift the brush to travel height where it stands, if it is down and moving is safe."""
        rebooted, status = self._probe(min(1.0, self.config.connect_timeout_s))
        job = self._job
        if (
            status is None
            or rebooted  # restarted unasked: its position is not the one the job knows
            or status.state == "Alarm"
            or self.alarm is not None
            or (job is not None and job.locked)
        ):
            return
        if not status.stopped or status.state == "Hold" or self._busy(status):
            self._hold_and_reset()  # held or still busy: stop it in place first
            status = self._query_status()
            if status is None or status.state == "Alarm":
                return
        cfg = self.machine_config
        w = GcodeWriter(cfg)
        here = self._work_pos(status)
        if cfg.pen == "z" and (here is None or here[2] >= w.travel_z - POSITION_TOL_MM):
            return  # already up (a servo's height cannot be read: it is always lifted)
        w.emit("G21 G90 G94")
        w.brush_up()
        for line in [ln.text for ln in w.lines] + ["G4 P0"]:
            self._command(line, timeout=cfg.connect_timeout_s)
        if job is not None:
            job.parked = self._work_pos(self._query_status())

    def _close(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()

    # ---- simple commands -----------------------------------------------------------------------
    @requires_connection
    @_exclusive
    def home(self) -> None:
        """``$H`` with ``homing`` (clears an alarm and a lost position); else brush up and
        travel to the canvas origin. Returns once the machine is there; `stop` interrupts it
        (`StoppedError`).

        Raises:
            MachineLockedError: GRBL is locked and the config has no homing: say how to go on.
        """
        if self.config.homing:
            self._command("$H", timeout=120.0)
            self._unlocked(position_known=True)
            return
        if self._machine_state() == "Alarm":
            hint = (
                "" if not self.settings.get(22) else " (GRBL has homing on, $22=1: set homing=true)"
            )
            raise MachineLockedError(f"GRBL is locked in ALARM{hint}; {HOME_HINT}")
        for line in recovery_lines(MachineState(), self.machine_config):
            self._command(line.text)
        self._command("G4 P0")  # answered once the machine is there (ok only means planned)

    @requires_connection
    @_exclusive
    def unlock(self) -> None:
        """Clear an ALARM with ``$X``: only after you checked the machine is where GRBL thinks
        and safe to move. Does not re-establish a lost position (see `register_position`)."""
        self._command("$X")
        self._unlocked(position_known=False)

    @requires_connection
    @_exclusive
    def register_position(self, x_mm: float, y_mm: float, z_mm: float) -> None:
        """Tell GRBL where the brush is now, in the job's (work) coordinates, after a restart of
        a machine without homing switches: ``G10 L20 P1`` (persistent G54 offset)."""
        for v in (x_mm, y_mm, z_mm):
            if not math.isfinite(v):
                raise ValueError(f"register_position needs finite mm, got {(x_mm, y_mm, z_mm)}")
        if self._machine_state() == "Alarm":
            self._command("$X")
        self._command(f"G10 L20 P1 X{x_mm:.3f} Y{y_mm:.3f} Z{z_mm:.3f}")
        self._unlocked(position_known=True)

    def _unlocked(self, position_known: bool) -> None:
        self.alarm = None
        job = self._job
        if job is not None and job.locked and (position_known or not job.lost):
            job.locked, job.lost = None, False

    def _busy(self, status: Status) -> bool:
        """Something is queued in GRBL's planner or RX buffer (needs ``Bf``; False without)."""
        bf = status.buffer
        return bf is not None and (
            bf[0] < self._planner_blocks or bf[1] < self.config.rx_buffer_bytes
        )

    def _machine_state(self) -> str | None:
        status = self._query_status()
        return None if status is None else status.state

    @property
    def machine_config(self) -> GrblArmConfig:
        """The config the G-code is generated from: ``surface_z_mm`` (and ``press_depth_mm``)
        moved by the brush-height calibration, when one is loaded."""
        cfg = self.config
        if self.brush_height is None:
            return cfg
        return replace(
            cfg,
            surface_z_mm=cfg.surface_z_mm + 1000.0 * self.surface_offset_m,
            press_depth_mm=1000.0 * self.pressing_depth_m(cfg.press_depth_mm / 1000.0),
        )

    @requires_connection
    @_exclusive
    def dab(
        self,
        x_m: float,
        y_m: float,
        height_m: float,
        *,
        dip: bool = False,
        color: tuple[float, float, float] = (0.0, 0.0, 0.0),
        palette_index: int = 0,
    ) -> None:
        """A brush-height probe on the Z axis (see `Arm.dab`); returns once GRBL has finished
        it. A servo pen has no height to probe: set ``servo_touch`` by hand. `stop` interrupts
        it (`StoppedError`): the brush stays where it stopped; `disconnect` lifts it."""
        cfg = self.machine_config
        if cfg.pen != "z":
            raise NotImplementedError("dab needs pen='z'; with a servo, set servo_touch by hand")
        check_dab(cfg.workspace, x_m, y_m, height_m)
        station = cfg.workspace.paint_station(palette_index) if dip else None
        for line in dab_lines(cfg, x_m, y_m, height_m, station):
            self._command(line)

    @requires_connection
    def feed_hold(self) -> None:
        """Pause motion now (``!``); `cycle_start` continues. A running job waits."""
        self._write(b"!")

    @requires_connection
    def cycle_start(self) -> None:
        """Continue after a feed hold (``~``)."""
        self._write(b"~")

    def _command(self, line: str, timeout: float | None = None) -> list[str]:
        """Send one line outside a job, wait for its ok; returns the lines before it.

        Raises:
            DeviceConnectionError: error / alarm / no reply (MachineLockedError for error:9).
            StoppedError: `stop` was called (the machine was held, then reset).
        """
        if self._stopped():
            raise StoppedError(f"stopped before {line!r} was sent")
        self._write(line.encode() + b"\n")
        cfg = self.config
        limit = timeout or max(cfg.ack_timeout_s, cfg.connect_timeout_s)
        before: list[str] = []
        last_progress = next_poll = time.monotonic()
        last_pos = None
        while time.monotonic() - last_progress < limit:  # moving (a G4 waits for that) is fine
            if self._stopped():
                self._halt_motion()
                raise StoppedError(
                    f"stopped during {line!r}: GRBL was held, then reset (position kept)"
                )
            if time.monotonic() >= next_poll:
                self._write(b"?")
                next_poll = time.monotonic() + cfg.status_interval_s
            for r in self._read_replies():
                if r == "ok":
                    return before
                if r.startswith(("error:", "ALARM:")):
                    if r == "error:9":
                        raise MachineLockedError(
                            f"GRBL refused {line!r}: {explain(r)}; {HOME_HINT}"
                        )
                    raise DeviceConnectionError(f"GRBL refused {line!r}: {explain(r)}")
                if (s := parse_status(r)) is not None:
                    self._note_status(s)
                    pos = self._work_pos(s)
                    if pos != last_pos or s.state in ("Hold", "Home", "Jog"):
                        last_progress, last_pos = time.monotonic(), pos
                else:
                    before.append(r)
        raise DeviceConnectionError(f"no reply from GRBL to {line!r} within {limit} s")

    def _query_status(self, timeout: float = 1.0) -> Status | None:
        self._write(b"?")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in self._read_replies():
                status = parse_status(r)
                if status is not None:
                    return self._note_status(status)
        return None

    def _note_status(self, status: Status) -> Status:
        self.last_status = status
        if status.wco is not None:
            self._wco = status.wco
        return status

    def _work_pos(self, status: Status | None) -> tuple[float, float, float] | None:
        if status is None:
            return None
        if status.wpos is not None:
            return tuple(status.wpos[:3])
        if status.mpos is not None:
            return tuple(m - w for m, w in zip(status.mpos[:3], self._wco, strict=False))
        return None

    # ---- I/O -----------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        with self._wlock:
            ser = self._ser
            if ser is None:
                raise serial.SerialException("port closed")
            ser.write(data)

    def _unread(self, lines: list[str]) -> None:
        """Give reply lines back: the next `_read_replies` returns them first."""
        self._pending = lines + self._pending

    def _read_replies(self) -> list[str]:
        """Whole reply lines received so far (waits up to the port timeout for the first byte)."""
        if self._pending:
            out, self._pending = self._pending, []
            return out
        ser = self._ser
        if ser is None:
            raise serial.SerialException("port closed")
        data = ser.read(max(1, ser.in_waiting))
        if not data:
            return []
        self._buf += data
        *lines, rest = self._buf.split(b"\n")
        self._buf = bytearray(rest)
        out = []
        for raw in lines:
            text = raw.decode("ascii", "replace").strip()
            if text:
                out.append(text)
        return out

    # ---- jobs ----------------------------------------------------------------------------------
    @requires_connection
    @_exclusive
    def execute(
        self, paths: Sequence[BrushPath], on_progress: ProgressCallback | None = None
    ) -> ExecutionReport:
        """See `Arm.execute`. Raises `MachineLockedError` (nothing sent) while GRBL is locked."""
        safe = self.check(paths)  # raises SafetyError before anything is sent
        status = self._query_status()
        if status is not None and status.state == "Alarm":
            raise MachineLockedError(f"GRBL is locked in ALARM; {HOME_HINT}")
        self.alarm = None
        lines = job_lines(safe, self.machine_config)
        report = ExecutionReport(
            paths_total=len(safe),
            moves_total=len(lines),
            clipped=[p.index for p in safe if p.clipped],
        )
        self._job = _Job(safe, lines, report)
        return self._stream([], self._work_pos(status), on_progress)

    @_exclusive
    def resume(self, on_progress: ProgressCallback | None = None) -> ExecutionReport:
        """Continue the last job after a fault or a stop, from the first line that did not run
        (reopening the port first if it was lost: set ``config.port`` if the device came back
        under another name). The brush is lifted where it stands before anything moves.

        Raises:
            RuntimeError: no job to resume, or it already completed.
            MachineLockedError: GRBL is locked or its position was lost: the message says what
                to do (home, unlock, register_position); nothing was sent.
            DeviceConnectionError: the controller cannot be reached.
        """
        job = self._job
        if job is None or job.done >= len(job.lines):
            raise RuntimeError("GrblArm.resume: there is no unfinished job")
        if self._ser is None:
            self._open()
            try:
                self._after_reconnect(job)
            except BaseException as e:
                self._close()  # the next resume() starts the reconnection over
                if isinstance(e, (serial.SerialException, OSError)):
                    raise DeviceConnectionError(
                        f"GRBL on {self.config.port} unreachable: {e}"
                    ) from None
                raise
        status = self._query_status(timeout=self.config.connect_timeout_s)
        if status is None:
            raise DeviceConnectionError(f"no status reply from GRBL on {self.config.port}")
        if job.locked:
            raise MachineLockedError(f"{job.locked}; {LOST_HINT if job.lost else HOME_HINT}")
        if status.state == "Alarm":
            raise MachineLockedError(f"GRBL is locked in ALARM; {HOME_HINT}")
        if not status.stopped or self._busy(status):
            self._hold_and_reset()
            status = self._query_status()
        here = self._work_pos(status)
        prev = job.lines[job.done - 1].state if job.done > 0 else MachineState()
        start = MachineState(*here, feed=0.0) if here is not None else None
        preamble = recovery_lines(prev, self.machine_config, start) if job.done > 0 else []
        job.parked = None
        report = job.report
        report.fault, report.stopped, report.resumable = None, False, False
        return self._stream(preamble, here, on_progress)

    def _after_reconnect(self, job: _Job) -> None:
        """The port was lost: a booted controller's banner may be waiting (read it, do not
        flush it). Otherwise let the machine finish what it had queued, following its status
        reports along the lines that may have reached it, then reset (it is idle: the
        position is kept) and find the first line it did not run."""
        rebooted, status = self._probe(self.config.connect_timeout_s)
        if status is None:
            raise DeviceConnectionError(f"no status reply from GRBL on {self.config.port}")
        if rebooted or status.state == "Alarm":
            job.locked, job.lost = "the controller restarted while the port was lost", True
            return
        parked, job.parked = job.parked, None
        if (
            parked is not None
            and status.state == "Idle"
            and not self._busy(status)
            and self._work_pos(status) is not None
            and near(self._work_pos(status), parked)
        ):
            return  # disconnect() stopped the job (done is known) and lifted the brush here
        entries = self._entries([], None, job.done, job.sent)
        cursor = 0
        last_move = time.monotonic()
        prev = self._work_pos(status)
        while not status.stopped or self._busy(status):
            if status.line_number is not None:  # Ln: that job line is running, those before ran
                for q in range(cursor, len(entries)):
                    if entries[q].idx is not None and entries[q].idx + 1 == status.line_number:
                        cursor = q
                        break
            q = locate(entries, cursor, len(entries), self._work_pos(status))
            cursor = cursor if q is None else q
            if self._work_pos(status) != prev:
                prev, last_move = self._work_pos(status), time.monotonic()
            if status.state == "Hold" or time.monotonic() - last_move > self.config.ack_timeout_s:
                break  # held, or stuck: stop it here
            time.sleep(0.01)
            status = self._query_status()
            if status is None:
                raise DeviceConnectionError(f"no status reply from GRBL on {self.config.port}")
        self._hold_and_reset()
        status = self._query_status() or status
        q = locate(entries, cursor, len(entries), self._work_pos(status))
        if q is None:
            where = self._work_pos(status)
            job.locked, job.lost = (
                (
                    f"after reconnecting, the machine is at {fmt_pos(where)} mm, not on the job's "
                    f"path between lines N{job.done + 1} and N{job.sent}"
                ),
                True,
            )
            return
        job.done = entries[q].idx if q < len(entries) else job.sent

    def _step_mm(self) -> float:
        """mm of the coarsest axis step (``$100``-``$102`` steps/mm)."""
        return 1.0 / max(1.0, min(self.settings.get(k, 250.0) for k in (100, 101, 102)))

    def _entries(
        self, preamble: list[JobLine], here, first: int, last: int | None = None
    ) -> list[Entry]:
        """Preamble + job lines [first, last) as stream entries (see `tracking.entries`)."""
        job = self._job
        step = self._step_mm()
        if here is None and first > 0:
            s = job.lines[first - 1].state
            here = (s.x, s.y, s.z)
        items = [(None, ln) for ln in preamble]
        items += [(i, job.lines[i]) for i in range(first, len(job.lines) if last is None else last)]
        return entries(items, here, step, self.config.line_numbers)

    def _stream(self, preamble: list[JobLine], here, on_progress) -> ExecutionReport:
        job, cfg = self._job, self.config
        st = Stream(self._entries(preamble, here, job.done), step_mm=self._step_mm())
        job.report.paths_done = self._paths_done()
        fault: str | None = None
        last_progress = time.monotonic()
        last_pos = here
        next_poll = last_poll = last_progress
        started = time.perf_counter()

        def on_status(s: Status) -> None:
            nonlocal last_progress, last_pos
            self._note_status(s)
            pos = self._work_pos(s)
            if s.state in ("Hold", "Door", "Home", "Jog") or (pos is not None and pos != last_pos):
                last_progress = time.monotonic()  # moving, or paused on purpose: no timeout
            last_pos = pos
            self._executed_from_status(st, s, on_progress)

        try:
            while True:
                if self._stopped():
                    self._halt(st, on_progress)
                    job.report.stopped = True
                    break
                while st.sent < len(st.entries) and (
                    st.used + len(st.entries[st.sent].data) <= cfg.rx_buffer_bytes
                ):
                    e = st.entries[st.sent]
                    self._write(e.data)
                    st.inflight.append(st.sent)
                    st.used += len(e.data)
                    st.sent += 1
                    if e.idx is not None:
                        job.sent = max(job.sent, e.idx + 1)
                if st.executed == len(st.entries):
                    break  # every line ran
                now = time.monotonic()
                replies = self._read_replies()
                for k, r in enumerate(replies):
                    if r == "ok" or r.startswith("error:"):
                        last_progress = now
                        if not st.inflight:
                            self.ignored_replies += 1
                            continue
                        q = st.inflight.popleft()
                        st.used -= len(st.entries[q].data)
                        self._acked(st, q, r == "ok", on_progress)
                        if r != "ok" and fault is None:
                            fault = f"{explain(r)} on {self._label(st.entries[q].idx)}"
                    elif r.startswith(("ALARM:", "Grbl")):
                        if r.startswith("ALARM:"):
                            fault = fault or f"{explain(r)} near {self._label(self._running(st))}"
                        else:
                            fault = fault or "the controller reset or restarted (unexpected banner)"
                        self._unread(replies[k + 1 :])  # its banner / messages may follow
                        self._after_alarm(st, r)
                        break
                    elif (s := parse_status(r)) is not None:
                        on_status(s)
                    elif not r.startswith(("[", ">")):
                        self.ignored_replies += 1
                if fault is not None:
                    if self._ser is not None and not job.locked:
                        self._halt(st, on_progress)
                    break
                all_acked = st.sent == len(st.entries) and not st.inflight
                if now >= (last_poll + 0.01 if all_acked else next_poll):
                    # every line planned: poll every 10 ms until idle, starting at once (not
                    # up to status_interval_s after the last ok), so the job ends when it ran
                    self._write(b"?")
                    last_poll, next_poll = now, now + cfg.status_interval_s
                if now - last_progress > cfg.ack_timeout_s and now - last_progress > (
                    cfg.ack_timeout_s + self._longest_dwell(st)  # only then: it walks the queue
                ):
                    fault = (
                        f"no progress from the controller for {cfg.ack_timeout_s} s (no ok, no "
                        f"motion), waiting for {self._label(self._running(st))}"
                    )
                    self._halt(st, on_progress)
                    break
        except (serial.SerialException, OSError) as e:
            fault = f"connection lost ({e}); reconnect and resume()"
            self._close()
        finally:
            job.report.stream_s = time.perf_counter() - started
        return self._finish(fault)

    @staticmethod
    def _longest_dwell(st: Stream) -> float:
        """s of the longest ``G4`` among the lines sent and not known to have run."""
        return max((e.dwell_s for e in st.entries[st.executed : st.sent]), default=0.0)

    def _acked(self, st: Stream, q: int, ok: bool, on_progress) -> None:
        """Line q was answered: planned (ok) or rejected (error)."""
        self._advance(st, st.answered(q, ok), on_progress)

    def _executed_from_status(self, st: Stream, s: Status, on_progress) -> None:
        self._advance(st, st.status(s, self._planner_blocks), on_progress)

    def _advance(self, st: Stream, upto: int, on_progress) -> None:
        """Entries [0, upto) ran: move the job's done mark and report finished paths."""
        upto = st.capped(upto)
        if upto <= st.executed:
            return
        job = self._job
        for e in st.entries[st.executed : upto]:
            if e.idx is not None and e.idx + 1 > job.done:
                job.done = e.idx + 1
                if job.lines[e.idx].ends_path:
                    job.report.paths_done += 1
                    if on_progress is not None:
                        on_progress(job.report.paths_done, job.report.paths_total)
        st.executed = upto

    def _paths_done(self) -> int:
        job = self._job
        return sum(1 for i in range(job.done) if job.lines[i].ends_path)

    def _running(self, st: Stream) -> int | None:
        e = st.entries[st.executed] if st.executed < len(st.entries) else None
        return None if e is None else e.idx

    def _halt(self, st: Stream, on_progress) -> None:
        """Feed hold, wait for Hold:0, soft reset; then the position says where it stopped."""

        def seen(item) -> None:
            if isinstance(item, Status):
                self._executed_from_status(st, item, on_progress)
            elif (item == "ok" or item.startswith("error:")) and st.inflight:
                q = st.inflight.popleft()
                self._acked(st, q, item == "ok", on_progress)

        try:
            last = self._hold_and_reset(on_status=seen)
            if last is None:
                raise serial.SerialException("no status while holding")
            status = self._query_status() or last
            self._settle(st, status, on_progress)
        except (serial.SerialException, OSError, DeviceConnectionError):
            self._close()  # unreachable: resume() reopens and finds out where it stands
        finally:
            st.inflight.clear()

    def _after_alarm(self, st: Stream, reply: str) -> None:
        """An alarm or an unexpected banner: GRBL dropped its planner. Reset when it takes one
        (after ``[MSG:Reset to continue]`` for limits), then read where it stopped; the job
        stays locked until home / unlock / register_position."""
        job = self._job
        code = reply.partition(":")[2]
        job.locked = (
            f"GRBL raised {explain(reply)}"
            if reply.startswith("ALARM")
            else ("GRBL reset or restarted by itself during the job")
        )
        job.lost = not reply.startswith("ALARM")
        try:
            if reply.startswith("ALARM") and code.strip() in ("1", "2"):
                deadline = time.monotonic() + max(5.0, self.config.connect_timeout_s)
                while time.monotonic() < deadline:  # a reset before this message is ignored
                    if any(r.startswith("[MSG:Reset to continue") for r in self._read_replies()):
                        break
                self._reset_and_wait()
            elif reply.startswith("ALARM"):
                self._await_banner(self.config.connect_timeout_s)  # ALARM:3 comes with one
            status = self._query_status()
            self._settle(st, status, on_progress=None)
            if reply.startswith("Grbl") and status is not None:
                q = locate(st.entries, st.executed, st.sent, self._work_pos(status))
                job.lost = q is None  # a restart zeroes the position; a reset keeps it
        except (serial.SerialException, OSError, DeviceConnectionError):
            self._close()
        finally:
            st.inflight.clear()

    def _settle(self, st: Stream, status: Status | None, on_progress) -> None:
        """After the machine stopped: the first entry that did not complete, from what is known
        to have run and where the machine is (see `tracking.locate`)."""
        job = self._job
        hi = st.sent if self._ser is None else max(st.acked, st.executed)
        q = locate(st.entries, st.executed, hi, self._work_pos(status))
        if q is not None and st.barrier is not None:
            q = min(q, st.barrier)  # a rejected line and all after it run again
        if q is None:
            if status is not None and self._work_pos(status) is not None and not job.locked:
                job.locked, job.lost = (
                    f"the machine stopped at {fmt_pos(self._work_pos(status))} mm, not on the "
                    f"job's path",
                    True,
                )
            return
        self._advance(st, q, on_progress)

    def _label(self, idx: int | None) -> str:
        if idx is None:
            return "a recovery line"
        return f"line N{idx + 1} ({self._job.lines[idx].text})"

    def _finish(self, fault: str | None) -> ExecutionReport:
        job = self._job
        rep = job.report
        rep.acked_index = job.done - 1  # the last line known to have run (in order)
        rep.moves_sent = job.sent
        touched = {ln.path for ln in job.lines[: job.sent] if ln.path >= 0}
        rep.paths = [p for k, p in enumerate(job.paths) if k in touched]
        rep.paths_done = self._paths_done()
        rep.resumable = job.done < len(job.lines)
        if fault is None and rep.resumable and not rep.stopped:
            fault = "the job ended before every line ran"
        if fault is not None:
            where = (
                f"last executed line N{job.done} of {len(job.lines)}"
                if job.done > 0
                else "no line executed"
            )
            rep.fault = f"{fault}; {where}, {rep.paths_done}/{rep.paths_total} paths done"
            if job.locked:
                rep.fault += f"; {job.locked}: {LOST_HINT if job.lost else HOME_HINT}"
        return rep

    def stop(self) -> None:
        """Feed hold now, from any thread. A running `execute` / `resume` resets once the
        machine has stopped (``Hold:0``) and returns stopped; a running `dab` / `home` does the
        same and raises `StoppedError`; with nothing running, `stop` itself holds, waits (at
        most ``connect_timeout_s``) and resets. The reset never comes while the machine still
        moves (GRBL would raise ``ALARM:3`` and lock). Never raises for a lost connection."""
        self._stops += 1
        with contextlib.suppress(serial.SerialException, OSError):
            self._write(b"!")
        if not self._io.acquire(blocking=False):
            return  # the running operation sees the stop and finishes the halt
        try:
            if self._ser is not None:
                with contextlib.suppress(serial.SerialException, OSError, DeviceConnectionError):
                    self._halt_motion()
        finally:
            self._io.release()

    def _stopped(self) -> bool:
        """`stop` was called since the running operation began."""
        return self._stops != self._gen

    def _halt_motion(self) -> None:
        """Stop the machine in place without an ``ALARM:3``: a feed hold, ``Hold:0``, a reset.
        Homing ignores a feed hold: only a reset stops it (GRBL then asks to home again)."""
        if self.last_status is not None and self.last_status.state == "Home":
            self._reset_and_wait()
        else:
            self._hold_and_reset()
