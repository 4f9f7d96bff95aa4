"""`GrblArm`: streams a job to a GRBL controller over a serial port (pyserial).

Streaming uses GRBL's character-counting flow control: the driver keeps as many lines in flight
as fit in the controller's RX buffer (``rx_buffer_bytes``, 127), and each ``ok`` / ``error:N``
frees the bytes of the oldest line in flight. Every job line is numbered (``N<k>``, k = job index
+ 1) and the driver records which lines the machine acknowledged, so after any fault it knows
where the job stood:

- ``error:N`` or ``ALARM:N``: stop sending, feed hold (``!``) and soft reset (Ctrl-X) to discard
  what the controller has not parsed yet, read the replies up to the reset banner (each ``ok``
  before it still counts), and report.
- the port vanishing: report the last acknowledged line; on `resume` (after a reconnect) the
  status report's ``Ln`` field says which in-flight lines ran even though their ``ok`` was lost.
- no ``ok`` within ``ack_timeout_s`` (status replies do not count): halt as above, report.
- unknown or garbled reply lines are counted and ignored.

`resume` unlocks (``$X``) if needed, puts the machine back where the last executed line left it
(`protocol.recovery_lines`) and streams the lines not yet executed: nothing twice, nothing
skipped. `stop` (any thread) is a feed hold plus a soft reset.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import serial

from robot.arms.arm import Arm, ExecutionReport, ProgressCallback
from robot.arms.grbl.config import GrblArmConfig
from robot.arms.grbl.protocol import (
    JobLine,
    MachineState,
    dab_lines,
    job_lines,
    parse_status,
    recovery_lines,
)
from robot.errors import DeviceConnectionError, refuses_reconnect, requires_connection
from robot.safety import SafePath, check_dab
from sim.brush_path import BrushPath

# what GRBL 1.1's codes mean (from its documented error and alarm tables; the common ones)
ERRORS = {
    1: "expected command letter",
    2: "bad number format",
    3: "invalid $ statement",
    9: "G-code locked out during alarm or jog",
    15: "jog target exceeds machine travel",
    20: "unsupported or invalid G-code command",
    22: "feed rate not set",
    33: "invalid target",
}
ALARMS = {
    1: "hard limit triggered",
    2: "soft limit: target outside machine travel",
    3: "reset while in motion (position may be lost)",
    8: "homing failed",
    9: "homing failed: limit switch not found",
}


@dataclass
class _Job:
    paths: list[SafePath]
    lines: list[JobLine]
    done: list[bool]  # the machine executed (acknowledged, or status Ln passed) this line
    sent: list[bool]  # written at least once
    report: ExecutionReport
    rejected: set[int] = field(default_factory=set)  # answered with error:N, not executed


class GrblArm(Arm):
    """A GRBL machine. See `GrblArmConfig` and the module docstring.

    Attributes:
        last_status: the latest parsed status report (`protocol.Status`), or None.
        ignored_replies: reply lines that were not understood (garbage on the line).
    """

    config_class = GrblArmConfig

    def __init__(self, config: GrblArmConfig) -> None:
        super().__init__(config)
        self._ser: serial.Serial | None = None
        self._wlock = threading.Lock()
        self._stop = threading.Event()
        self._streaming = False
        self._buf = bytearray()
        self._job: _Job | None = None
        self.last_status = None
        self.ignored_replies = 0

    # ---- connection ----------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self._ser is not None

    @refuses_reconnect
    def connect(self) -> None:
        """Open the port and soft-reset the controller; waits for its banner.

        Raises:
            DeviceConnectionError: the port cannot be opened or no GRBL answers on it.
        """
        self._open()
        self._reset_and_wait()
        status = self._query_status()
        if status is not None and status.state == "Alarm" and self.config.unlock_on_connect:
            self._command("$X")

    def _open(self) -> None:
        cfg = self.config
        try:
            self._ser = serial.Serial(cfg.port, cfg.baudrate, timeout=0.002, write_timeout=2.0)
        except (serial.SerialException, OSError) as e:
            raise DeviceConnectionError(f"could not open GRBL port {cfg.port!r}: {e}") from None
        self._buf.clear()

    def _reset_and_wait(self) -> None:
        self._ser.reset_input_buffer()
        self._write(b"\x18")
        deadline = time.monotonic() + self.config.connect_timeout_s
        while time.monotonic() < deadline:
            if any(r.startswith("Grbl") for r in self._read_replies()):
                return
        self._close()
        raise DeviceConnectionError(
            f"no GRBL banner on {self.config.port} within {self.config.connect_timeout_s} s "
            f"(is it a GRBL controller at {self.config.baudrate} baud?)"
        )

    def disconnect(self) -> None:
        self._stop.set()
        self._close()

    def _close(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                ser.close()

    # ---- simple commands -----------------------------------------------------------------------
    @requires_connection
    def home(self) -> None:
        """$H with ``homing``; else brush up and G0 to the canvas' top-left corner."""
        if self.config.homing:
            self._command("$H", timeout=120.0)
            return
        for line in recovery_lines(MachineState(), self.machine_config):
            self._command(line)

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
        it. A servo pen has no height to probe: set ``servo_touch`` by hand."""
        cfg = self.machine_config
        if cfg.pen != "z":
            raise NotImplementedError("dab needs pen='z'; with a servo, set servo_touch by hand")
        check_dab(cfg.workspace, x_m, y_m, height_m)
        station = cfg.workspace.paint_station(palette_index) if dip else None
        for line in dab_lines(cfg, x_m, y_m, height_m, station):
            self._command(line)

    @requires_connection
    def unlock(self) -> None:
        """Clear an ALARM with ``$X``. Only after checking the machine is safe to move."""
        self._command("$X")

    @requires_connection
    def feed_hold(self) -> None:
        """Pause motion now (``!``); `cycle_start` continues."""
        self._write(b"!")

    @requires_connection
    def cycle_start(self) -> None:
        """Continue after a feed hold (``~``)."""
        self._write(b"~")

    def _command(self, line: str, timeout: float | None = None) -> None:
        """Send one line outside a job and wait for its ok; raise on error/alarm/timeout."""
        self._write(line.encode() + b"\n")
        cfg = self.config
        deadline = time.monotonic() + (timeout or max(cfg.ack_timeout_s, cfg.connect_timeout_s))
        while time.monotonic() < deadline:
            for r in self._read_replies():
                if r == "ok":
                    return
                if r.startswith(("error:", "ALARM:")):
                    raise DeviceConnectionError(f"GRBL refused {line!r}: {_explain(r)}")
        raise DeviceConnectionError(f"no reply from GRBL to {line!r} within the ack timeout")

    def _query_status(self, timeout: float = 1.0):
        self._write(b"?")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in self._read_replies():
                status = parse_status(r)
                if status is not None:
                    self.last_status = status
                    return status
        return None

    # ---- I/O -----------------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        with self._wlock:
            ser = self._ser
            if ser is None:
                raise serial.SerialException("port closed")
            ser.write(data)

    def _read_replies(self) -> list[str]:
        """Whole reply lines received so far (waits up to the port timeout for the first byte)."""
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
    def execute(
        self, paths: Sequence[BrushPath], on_progress: ProgressCallback | None = None
    ) -> ExecutionReport:
        self._stop.clear()
        self._streaming = True  # from here a stop() is this job's: it holds, the loop resets
        try:
            safe = self.check(paths)  # raises SafetyError before anything is sent
        except BaseException:
            self._streaming = False
            raise
        lines = job_lines(safe, self.machine_config)
        n = len(lines)
        report = ExecutionReport(
            paths_total=len(safe), moves_total=n, clipped=[p.index for p in safe if p.clipped]
        )
        self._job = _Job(safe, lines, [False] * n, [False] * n, report)
        return self._stream(list(range(n)), [], on_progress)

    def resume(self, on_progress: ProgressCallback | None = None) -> ExecutionReport:
        """Continue the last job after a fault or a stop (reconnecting first if the port was
        lost: set ``config.port`` if the device came back under another name).

        Raises:
            RuntimeError: no job to resume, or it already completed.
            DeviceConnectionError: the controller cannot be reached.
        """
        job = self._job
        if job is None or all(job.done):
            raise RuntimeError("GrblArm.resume: there is no unfinished job")
        if self._ser is None:
            self._open()
        self._ser.reset_input_buffer()
        self._buf.clear()
        status = self._query_status(timeout=self.config.connect_timeout_s)
        if status is None:
            raise DeviceConnectionError(f"no status reply from GRBL on {self.config.port}")
        if status.line_number is not None:  # lines up to Ln ran, even if their ok was lost
            for i in range(len(job.lines)):
                if i + 1 <= status.line_number and job.sent[i] and i not in job.rejected:
                    job.done[i] = True
        if status.state == "Alarm":
            self._command("$X")
        pending = [i for i, d in enumerate(job.done) if not d]
        before = pending[0] - 1
        state = job.lines[before].state if before >= 0 else MachineState()
        preamble = recovery_lines(state, self.machine_config) if before >= 0 else []
        job.rejected.clear()
        self._stop.clear()
        job.report.fault, job.report.stopped, job.report.resumable = None, False, False
        return self._stream(pending, preamble, on_progress)

    def _stream(self, pending: list[int], preamble: list[str], on_progress) -> ExecutionReport:
        job, cfg = self._job, self.config
        queue = [(None, (t + "\n").encode()) for t in preamble]
        for i in pending:
            text = f"N{i + 1} {job.lines[i].text}" if cfg.line_numbers else job.lines[i].text
            queue.append((i, (text + "\n").encode()))
        inflight: deque[tuple[int | None, int]] = deque()
        used, nxt, fault = 0, 0, None
        last_reply = time.monotonic()
        next_poll = last_reply + cfg.status_interval_s
        self._streaming = True
        started = time.perf_counter()
        try:
            while True:
                if self._stop.is_set():
                    self._halt(inflight, on_progress)
                    job.report.stopped = True
                    break
                while nxt < len(queue) and used + len(queue[nxt][1]) <= cfg.rx_buffer_bytes:
                    idx, data = queue[nxt]
                    self._write(data)
                    inflight.append((idx, len(data)))
                    used += len(data)
                    nxt += 1
                    if idx is not None:
                        job.sent[idx] = True
                if nxt == len(queue) and not inflight:
                    break  # every line acknowledged
                now = time.monotonic()
                for r in self._read_replies():
                    if r == "ok" or r.startswith("error:"):
                        last_reply = now
                        if not inflight:
                            self.ignored_replies += 1
                            continue
                        idx, size = inflight.popleft()
                        used -= size
                        if r == "ok":
                            self._mark_done(idx, on_progress)
                        elif fault is None:
                            if idx is not None:
                                job.rejected.add(idx)
                            fault = f"{_explain(r)} on {self._label(idx)}"
                    elif r.startswith("ALARM:"):
                        near = self._label(inflight[0][0]) if inflight else "the last line"
                        fault = fault or f"{_explain(r)} near {near}"
                    elif r.startswith("Grbl"):
                        fault = fault or "the controller reset itself (unexpected banner)"
                        inflight.clear()
                    elif r.startswith("<"):
                        self.last_status = parse_status(r) or self.last_status
                    elif not r.startswith(("[", ">")):
                        self.ignored_replies += 1
                if fault is not None:
                    self._halt(inflight, on_progress)
                    break
                if now >= next_poll:
                    self._write(b"?")
                    next_poll = now + cfg.status_interval_s
                if inflight and now - last_reply > cfg.ack_timeout_s:
                    fault = (
                        f"no acknowledgement from the controller for {cfg.ack_timeout_s} s, "
                        f"waiting for {self._label(inflight[0][0])}"
                    )
                    self._halt(inflight, on_progress, timeout=1.0)
                    break
        except (serial.SerialException, OSError) as e:
            fault = f"connection lost ({e})"
            self._close()
        finally:
            self._streaming = False
            job.report.stream_s = time.perf_counter() - started
        return self._finish(fault)

    def _halt(self, inflight: deque, on_progress, timeout: float | None = None) -> None:
        """Feed hold + soft reset; account for the replies that arrive before the banner."""
        try:
            self._write(b"!\x18")
            deadline = time.monotonic() + (timeout or self.config.connect_timeout_s)
            while time.monotonic() < deadline:
                for r in self._read_replies():
                    if r.startswith("Grbl"):
                        return
                    if (r == "ok" or r.startswith("error:")) and inflight:
                        idx, _ = inflight.popleft()
                        if r == "ok":
                            self._mark_done(idx, on_progress)
                        elif idx is not None:
                            self._job.rejected.add(idx)
        except (serial.SerialException, OSError):
            self._close()
        finally:
            inflight.clear()

    def _mark_done(self, idx: int | None, on_progress) -> None:
        if idx is None:
            return
        job = self._job
        job.done[idx] = True
        if job.lines[idx].ends_path:
            job.report.paths_done = sum(
                1 for i, ln in enumerate(job.lines) if ln.ends_path and job.done[i]
            )
            if on_progress is not None:
                on_progress(job.report.paths_done, job.report.paths_total)

    def _label(self, idx: int | None) -> str:
        if idx is None:
            return "a recovery line"
        return f"line N{idx + 1} ({self._job.lines[idx].text})"

    def _finish(self, fault: str | None) -> ExecutionReport:
        job = self._job
        rep = job.report
        acked = -1
        while acked + 1 < len(job.done) and job.done[acked + 1]:
            acked += 1
        rep.acked_index = acked
        rep.moves_sent = sum(job.sent)
        touched = {ln.path for ln, s in zip(job.lines, job.sent, strict=True) if s and ln.path >= 0}
        rep.paths = [p for k, p in enumerate(job.paths) if k in touched]
        rep.paths_done = sum(1 for i, ln in enumerate(job.lines) if ln.ends_path and job.done[i])
        rep.resumable = not all(job.done)
        if fault is not None:
            where = (
                f"last acknowledged line N{acked + 1} of {len(job.lines)}"
                if acked >= 0
                else "no line acknowledged"
            )
            rep.fault = f"{fault}; {where}, {rep.paths_done}/{rep.paths_total} paths done"
        return rep

    def stop(self) -> None:
        """Feed hold + soft reset now, from any thread; the running `execute` returns stopped."""
        self._stop.set()
        with contextlib.suppress(serial.SerialException, OSError):
            self._write(b"!" if self._streaming else b"!\x18")


def _explain(reply: str) -> str:
    kind, _, code = reply.partition(":")
    table = ERRORS if kind == "error" else ALARMS
    meaning = table.get(int(code), "unknown code") if code.strip().isdigit() else "unknown code"
    return f"{reply} ({meaning})"
