"""A GRBL 1.1 emulator on a pseudo-terminal: dry-run G-code, and test the driver for real.

The emulator opens a pseudo-terminal pair (``os.openpty``); ``emulator.port`` is the slave's
path, which pyserial (or any sender) opens like a USB serial port. It behaves like GRBL 1.1h
where a sender can tell:

- a 128-byte serial RX buffer: bytes that do not fit are lost (counted in ``overflows``);
- ``ok`` means *parsed and planned*, not executed: a motion line goes into a 15-block planner
  (``Bf:15,128`` when empty) and is answered as soon as it has a block; the blocks then run in
  (scaled) real time, each move taking its length over its feed (G1) or the axes' max rates
  (``$110``-``$112``, G0 and the cap of G1). ``G4``, ``M3``/``M5`` and ``$`` commands wait until
  the planner is empty (so their ``ok`` means everything before them ran); a move shorter than a
  step gets no block;
- real-time bytes at once: ``?`` (status ``<Run|MPos:x,y,z|Bf:blocks,bytes|Ln:n|FS:f,0>``;
  ``$10`` bit 0 MPos/WPos, bit 1 the ``Bf`` field; ``Ln`` is the N of the running block, with
  ``line_numbers``), ``!`` (feed hold: ``Hold:1`` while stopping, then ``Hold:0``), ``~`` (cycle
  start), Ctrl-X (soft reset: empties the RX buffer and the planner, drops G92 offsets and modal
  state, prints the banner; during motion it is ``ALARM:3`` and the machine stays locked);
- alarms: a hard limit (``ALARM:1``) stops at once, prints ``[MSG:Reset to continue]`` after
  ``alarm_delay_s`` and ignores a reset that comes sooner, and parses nothing until reset; after
  it, G-code gets ``error:9`` until ``$X`` or ``$H``. With homing enabled (``$22=1``) it boots
  locked (``[MSG:'$H'|'$X' to unlock]``);
- ``$$`` (settings), ``$10=3`` and the like, ``$X``, ``$H`` (homing: the machine goes to
  ``home_mpos``), ``$G``, ``$I``; G0 G1 G4 G10 L2/L20 G17 G21 G90 G91 G92 G94 M2 M3 M5 F S N.

``time_scale`` runs the motion that many times faster than real time (tests: seconds instead of
minutes); ``max_rate_hz`` caps the lines per second it parses (the bench's ceiling). Every line
it executes is appended to ``log`` with its ``N`` number and the machine position after it (a move
when its block finishes; a move interrupted by a hold and a reset is not logged). Faults can be
injected (`Fault`).

Command line (prints the port, runs until Ctrl-C, writes the move log as JSON lines)::

    python -m robot.arms.grbl.emulator --rate 500 --time-scale 1000 --setting 110=8000 \
        --log moves.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import re
import select
import sys
import threading
import time
import tty
from collections import deque
from dataclasses import dataclass, field

BANNER = b"\r\nGrbl 1.1h ['$' for help]\r\n"
LOCKED = b"[MSG:'$H'|'$X' to unlock]\r\n"
_WORD = re.compile(r"([A-Z])([-+]?(?:\d+\.?\d*|\.\d+))")
# GRBL 1.1 defaults (mm, mm/min, mm/s^2) that matter here; $10=1: MPos, no buffer data
DEFAULT_SETTINGS = {
    10: 1.0, 22: 0.0, 100: 250.0, 101: 250.0, 102: 250.0,
    110: 500.0, 111: 500.0, 112: 500.0, 120: 10.0, 121: 10.0, 122: 10.0,
    130: 200.0, 131: 200.0, 132: 200.0,
}  # fmt: skip
_VIEW = ("$$", "$#", "$G", "$I", "$N")


@dataclass
class Fault:
    """A fault to inject.

    Attributes:
        kind: on line N (its ``N`` number):
            "error": answer ``error:code`` instead of running it;
            "limit": a hard limit trips at fraction ``at`` of its move (``ALARM:code``, 1);
            "reset": a soft reset from outside (another program, the reset button) at ``at``;
            "hold": a feed hold (the machine's button) at ``at``, cycle start ``delay_s`` later;
            "vanish": the port disappears at ``at`` (cable pulled); the controller keeps running
            what it has and keeps its position; `reconnect` plugs it back;
            "reboot": as "vanish", and the controller restarts (position 0, offsets lost);
            "restart": the controller restarts with the port open (a brown-out): banner;
            "garbage": ``count`` bursts of random bytes, one after every ``every``-th line;
            "slow": wait ``delay_s`` before parsing each of ``count`` lines from N on.
        line: the ``N`` number of the job line that triggers it.
        code: error or alarm code (default: 20 for "error", 1 for "limit").
        at: fraction (0..1) of line N's move where a motion fault fires.
        every, count, delay_s: see kind.
    """

    kind: str
    line: int
    code: int | None = None
    at: float = 0.5
    every: int = 7
    count: int = 10
    delay_s: float = 0.05
    fired: int = field(default=0, compare=False)


@dataclass(frozen=True)
class LoggedMove:
    """One executed line: its N number (None when sent without one), text (upper case, no
    spaces) and the machine position after it (mm)."""

    n: int | None
    text: str
    pos: tuple[float, float, float]


@dataclass
class _Block:
    n: int | None
    text: str
    start: tuple[float, float, float]
    target: tuple[float, float, float]
    duration: float  # s, scaled
    t0: float | None = None  # perf_counter when it (re)started; None while not running
    frac: float = 0.0  # part done before a hold


class GrblEmulator:
    """See the module docstring.

    Args:
        max_rate_hz: lines per second it parses at most.
        rx_buffer_bytes: serial RX buffer size (GRBL: 128).
        planner_blocks: planner blocks (GRBL: 15 usable).
        faults: faults to inject.
        seed: seed of the garbage bytes.
        time_scale: motion runs this many times faster than real time.
        line_numbers: report ``Ln`` (GRBL built with USE_LINE_NUMBERS).
        homing: ``$22=1``: boots locked, ``$H`` homes to ``home_mpos``.
        settings: ``$`` settings overriding `DEFAULT_SETTINGS` (e.g. ``{110: 8000.0}``).
        alarm_delay_s: s after a hard limit before it accepts a reset.
    """

    def __init__(
        self,
        max_rate_hz: float = 1000.0,
        rx_buffer_bytes: int = 128,
        planner_blocks: int = 15,
        faults: list[Fault] | tuple[Fault, ...] = (),
        seed: int = 0,
        time_scale: float = 1.0,
        line_numbers: bool = True,
        homing: bool = False,
        settings: dict[int, float] | None = None,
        alarm_delay_s: float = 0.05,
        home_mpos: tuple[float, float, float] = (0.0, 0.0, 0.0),
    ) -> None:
        self.max_rate_hz = float(max_rate_hz)
        self.rx_buffer_bytes = rx_buffer_bytes
        self.planner_blocks = planner_blocks
        self.faults = list(faults)
        self.time_scale = float(time_scale)
        self.line_numbers = line_numbers
        self.settings = dict(DEFAULT_SETTINGS) | {22: 1.0 if homing else 0.0} | (settings or {})
        self.alarm_delay_s = alarm_delay_s
        self.home_mpos = tuple(home_mpos)
        self.log: list[LoggedMove] = []
        self.overflows = 0  # bytes lost because the sender overfilled the RX buffer
        self.received_lines = 0
        self.resets = 0  # soft resets that took effect
        self.ignored_resets = 0  # resets sent while a critical alarm was not yet resettable
        self.reboots = 0
        self.homed = 0
        self.state = "Alarm" if homing else "Idle"  # Idle | Run | Hold | Alarm | Home
        self.mpos = [0.0, 0.0, 0.0]  # machine position (mm)
        self.g54 = [0.0, 0.0, 0.0]  # work offset (persistent, like GRBL's EEPROM)
        self.g92 = [0.0, 0.0, 0.0]  # G92 offset (lost on reset)
        self.planner: deque[_Block] = deque()
        self._plan_pos = [0.0, 0.0, 0.0]  # machine position at the end of the planned blocks
        self._feed = 0.0
        self._motion = 0  # 0: G0, 1: G1
        self._absolute = True
        self._hold_done_at = 0.0
        self._critical_at: float | None = None  # a critical alarm: resettable from this time
        self._cycle_at: float | None = None  # a "hold" fault: cycle start at this time
        self._motion_fault: tuple[float, Fault] | None = None
        self._boot_banner = False
        self._epoch = 0  # bumped by resets: the line being parsed is dropped
        self._reports = 0
        self._wco_dirty = True
        self._rx = bytearray()
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._rng = random.Random(seed)
        self._master: int | None = None
        self._slave: int | None = None
        self.port = ""
        self._closing = False
        self._threads: list[threading.Thread] = []

    # ---- life cycle ----------------------------------------------------------------------------
    def start(self) -> str:
        """Open the pseudo-terminal and start serving; returns the port path."""
        self._open_pty()
        self._closing = False
        for target in (self._reader, self._parser, self._executor):
            t = threading.Thread(target=target, daemon=True, name=f"grbl-emu-{target.__name__}")
            t.start()
            self._threads.append(t)
        return self.port

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing, Ctrl-X passes through
        self._master, self._slave = master, slave
        self.port = os.ttyname(slave)
        os.write(master, BANNER + (LOCKED if self.state == "Alarm" else b""))

    def vanish(self, reboot: bool = False) -> None:
        """The port disappears (cable pulled): the sender gets I/O errors, replies are lost.
        Without ``reboot`` the controller keeps running what it received and keeps its
        position; with it, it restarts: position 0, planner and buffers empty, G92 lost."""
        with self._lock:
            self._catch_up()
            if self._master is not None:
                os.close(self._master)
                self._master = None
            if reboot:
                self.reboots += 1
                self._wipe()
                self.mpos = [0.0, 0.0, 0.0]
                self._plan_pos = [0.0, 0.0, 0.0]
                self.state = "Alarm" if self.settings[22] else "Idle"
                self._boot_banner = True
            self._cond.notify_all()

    def reconnect(self) -> str:
        """Plug the machine back in on a new pseudo-terminal (a booted controller prints its
        banner, like GRBL after the DTR reset of a port opening); returns the new port path."""
        with self._lock:
            if self._master is not None:
                self.vanish()
            if self._slave is not None:
                os.close(self._slave)
            master, slave = os.openpty()
            tty.setraw(slave)
            self._master, self._slave = master, slave
            self.port = os.ttyname(slave)
            if self._boot_banner:  # it restarted while unplugged: its boot message is waiting
                self._boot_banner = False
                self._write(BANNER + (LOCKED if self.state == "Alarm" else b""))
            self._cond.notify_all()
            return self.port

    def close(self) -> None:
        """Stop serving and close the pseudo-terminal."""
        self._closing = True
        with self._lock:
            self._cond.notify_all()
        for t in self._threads:
            t.join(timeout=2)
        self._threads.clear()
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None

    def __enter__(self) -> GrblEmulator:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def moves(self) -> list[int]:
        """N numbers of the executed numbered lines, in execution order."""
        return [m.n for m in self.log if m.n is not None]

    def wpos(self) -> tuple[float, float, float]:
        """The work position (mm): machine position minus the G54 and G92 offsets."""
        with self._lock:
            p = self._position()
            return tuple(p[i] - self.g54[i] - self.g92[i] for i in range(3))

    # ---- serial side ---------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        with self._lock:
            if self._master is None:
                return
            with contextlib.suppress(OSError):
                os.write(self._master, data)

    def _reader(self) -> None:
        while not self._closing:
            fd = self._master
            if fd is None:
                time.sleep(0.005)
                continue
            try:
                ready, _, _ = select.select([fd], [], [], 0.02)
                data = os.read(fd, 4096) if ready else b""
            except (OSError, ValueError):
                time.sleep(0.005)
                continue
            with self._lock:
                if self._critical_at is None and not any(c in data for c in b"?!~\x18"):
                    take = data[: max(0, self.rx_buffer_bytes - len(self._rx))]  # plain bytes
                    self._rx += take
                    self.overflows += len(data) - len(take)
                    if b"\n" in take:
                        self._cond.notify_all()
                    continue
                for b in data:
                    self._byte(b)

    def _byte(self, b: int) -> None:
        if b == 0x18:  # Ctrl-X
            self._soft_reset()
        elif self._critical_at is not None:
            if b not in (0x3F, 0x21, 0x7E):
                self._buffer(b)  # still buffered by the serial interrupt, never parsed
        elif b == 0x3F:  # '?'
            self._write(self._status().encode())
        elif b == 0x21:  # '!'
            self._feed_hold()
        elif b == 0x7E:  # '~'
            self._cycle_start()
        else:
            self._buffer(b)

    def _buffer(self, b: int) -> None:
        if len(self._rx) >= self.rx_buffer_bytes:
            self.overflows += 1
        else:
            self._rx.append(b)
            if b == 0x0A:
                self._cond.notify_all()

    def _catch_up(self) -> None:
        """Finish the blocks whose time is up (the executor thread may wake late)."""
        now = time.perf_counter()
        while self.planner and self.state == "Run":
            blk = self.planner[0]
            if blk.t0 is None or blk.t0 + blk.duration > now:
                return
            if self._motion_fault is not None and self._motion_fault[0] <= now:
                return  # the executor fires it first
            self._complete(blk)

    def _complete(self, blk: _Block) -> None:
        """Block done: log it and start the next one when this one ended (not when the thread
        wakes up), so that the motion time stays right under load."""
        end = blk.t0 + blk.duration
        self.mpos = list(blk.target)
        self.planner.popleft()
        self.log.append(LoggedMove(blk.n, blk.text, tuple(self.mpos)))
        if not self.planner:
            self.state = "Idle"
        elif self.planner[0].t0 is None:
            nxt = self.planner[0]
            nxt.t0 = end - nxt.frac * nxt.duration
            self._arm_motion_fault(nxt)
        self._cond.notify_all()

    def _position(self) -> list[float]:
        """Machine position now (interpolated inside the running block)."""
        blk = self.planner[0] if self.planner else None
        if blk is None or blk.t0 is None or self.state != "Run":
            return list(self.mpos)
        f = min(1.0, (time.perf_counter() - blk.t0) / blk.duration) if blk.duration > 0 else 1.0
        return [a + (b - a) * f for a, b in zip(blk.start, blk.target, strict=True)]

    def _status(self) -> str:
        self._catch_up()
        state = self.state
        if state == "Hold":
            state = "Hold:0" if time.perf_counter() >= self._hold_done_at else "Hold:1"
        p = self._position()
        mask = int(self.settings[10])
        if mask & 1:
            fields = ["MPos:" + ",".join(f"{v:.3f}" for v in p)]
        else:
            w = [p[i] - self.g54[i] - self.g92[i] for i in range(3)]
            fields = ["WPos:" + ",".join(f"{v:.3f}" for v in w)]
        if mask & 2:
            free_rx = self.rx_buffer_bytes - len(self._rx)
            fields.append(f"Bf:{self.planner_blocks - len(self.planner)},{free_rx}")
        head = self.planner[0] if self.planner else None
        if self.line_numbers and head is not None and head.n:
            fields.append(f"Ln:{head.n}")
        fields.append(f"FS:{self._feed:.0f},0")
        self._reports += 1
        if self._wco_dirty or self._reports % 10 == 0:
            self._wco_dirty = False
            fields.append("WCO:" + ",".join(f"{self.g54[i] + self.g92[i]:.3f}" for i in range(3)))
        return f"<{state}|{'|'.join(fields)}>\r\n"

    def _feed_hold(self) -> None:
        self._catch_up()
        now = time.perf_counter()
        if self.state == "Run":
            blk = self.planner[0]
            if blk.t0 is not None:
                self.mpos = self._position()
                blk.frac = min(1.0, (now - blk.t0) / blk.duration) if blk.duration > 0 else 1.0
                blk.t0 = None
            self.state = "Hold"
            self._hold_done_at = now + 0.01 / max(1.0, self.time_scale) + 0.002  # decelerating
        elif self.state == "Idle":
            self.state = "Hold"
            self._hold_done_at = now
        self._cond.notify_all()

    def _cycle_start(self) -> None:
        if self.state == "Hold":
            self.state = "Run" if self.planner else "Idle"
            self._cond.notify_all()

    def _wipe(self) -> None:
        """What every reset empties: RX buffer, planner, line being parsed, modal state, G92."""
        self._rx.clear()
        self.planner.clear()
        self._epoch += 1
        self._feed, self._motion, self._absolute = 0.0, 0, True
        self.g92 = [0.0, 0.0, 0.0]
        self._wco_dirty = True
        self._motion_fault = None
        self._cycle_at = None
        self._critical_at = None
        self._cond.notify_all()

    def _soft_reset(self) -> None:
        now = time.perf_counter()
        if self._critical_at is not None and now < self._critical_at:
            self.ignored_resets += 1  # GRBL drops a reset that arrives before it can take one
            return
        self._catch_up()
        stopping = self.state == "Hold" and now < self._hold_done_at
        moving = self.state in ("Run", "Home") or stopping
        self.mpos = self._position()
        alarm = self.state == "Alarm" or moving
        self._wipe()
        self._plan_pos = list(self.mpos)
        self.resets += 1
        self.state = "Alarm" if alarm else "Idle"
        if moving:
            self._write(b"ALARM:3\r\n")
        self._write(BANNER + (LOCKED if alarm else b""))

    # ---- executor: runs planner blocks in scaled real time --------------------------------------
    def _executor(self) -> None:
        with self._cond:
            while not self._closing:
                now = time.perf_counter()
                if self._critical_at is not None and now >= self._critical_at > 0:
                    self._write(b"[MSG:Reset to continue]\r\n")
                    self._critical_at = -1.0  # resettable from now on
                if self._cycle_at is not None and now >= self._cycle_at:
                    self._cycle_at = None
                    self._cycle_start()
                blk = self.planner[0] if self.planner else None
                if blk is None or self.state not in ("Run", "Idle"):
                    if blk is None and self.state == "Run":
                        self.state = "Idle"
                    self._cond.wait(0.01 if self._critical_at or self._cycle_at else 0.05)
                    continue
                if blk.t0 is None:
                    self.state = "Run"
                    blk.t0 = now - blk.frac * blk.duration
                    self._arm_motion_fault(blk)
                end = blk.t0 + blk.duration
                if self._motion_fault is not None and now >= self._motion_fault[0]:
                    self._fire(self._motion_fault[1], blk)
                    continue
                if now >= end:
                    self._catch_up()
                    continue
                wake = end if self._motion_fault is None else min(end, self._motion_fault[0])
                self._cond.wait(max(0.0005, wake - now))

    def _arm_motion_fault(self, blk: _Block) -> None:
        for f in self.faults:
            kinds = ("limit", "reset", "hold", "vanish", "reboot", "restart")
            if f.kind in kinds and f.line == blk.n and not f.fired:
                f.fired = 1
                self._motion_fault = (blk.t0 + f.at * blk.duration, f)

    def _fire(self, f: Fault, blk: _Block) -> None:
        self._motion_fault = None
        blk.t0 = time.perf_counter() - f.at * blk.duration  # where it is, however late we woke
        if f.kind == "limit":  # stop dead, lock, and take no reset for alarm_delay_s
            self.mpos = self._position()
            self._plan_pos = list(self.mpos)
            self.planner.clear()
            self._epoch += 1
            self.state = "Alarm"
            self._critical_at = time.perf_counter() + self.alarm_delay_s
            self._write(f"ALARM:{f.code or 1}\r\n".encode())
        elif f.kind == "reset":
            self._soft_reset()
        elif f.kind == "hold":
            self._feed_hold()
            self._cycle_at = time.perf_counter() + f.delay_s
        elif f.kind == "restart":
            self.reboots += 1
            self._wipe()
            self.mpos = [0.0, 0.0, 0.0]
            self._plan_pos = [0.0, 0.0, 0.0]
            self.state = "Alarm" if self.settings[22] else "Idle"
            self._write(BANNER + (LOCKED if self.state == "Alarm" else b""))
        else:  # vanish / reboot
            if f.kind == "reboot":
                self.mpos = self._position()
            self.vanish(reboot=f.kind == "reboot")

    # ---- parser: lines out of the RX buffer, into the planner ----------------------------------
    def _parser(self) -> None:
        period = 1.0 / self.max_rate_hz
        next_slot = 0.0
        while not self._closing:
            with self._cond:
                while not self._closing and (
                    b"\n" not in self._rx or self._critical_at is not None
                ):
                    self._cond.wait(0.05)
                if self._closing:
                    return
                epoch = self._epoch
            self._slow_down()
            start = max(time.perf_counter(), next_slot)
            while (left := start - time.perf_counter()) > 0:  # parsing the previous line
                time.sleep(min(left, 0.001))
            next_slot = start + period
            with self._cond:
                if epoch != self._epoch or b"\n" not in self._rx or self._critical_at is not None:
                    continue
                cut = self._rx.index(b"\n")
                raw = bytes(self._rx[:cut])
                del self._rx[: cut + 1]
                self.received_lines += 1
                self._line(raw, epoch)

    def _wait(self, ready, epoch: int, until: float | None = None) -> bool:
        """Wait (lock held) until ``ready()`` (or the perf_counter time ``until``); False if a
        reset or close came meanwhile."""
        while not (ready() if until is None else time.perf_counter() >= until):
            if self._closing or epoch != self._epoch:
                return False
            left = 0.05 if until is None else until - time.perf_counter()
            self._cond.wait(max(0.0, min(0.05, left)))
        return not self._closing and epoch == self._epoch

    def _sleep(self, seconds: float, epoch: int) -> bool:
        return self._wait(None, epoch, time.perf_counter() + seconds)

    def _sync(self, epoch: int) -> bool:
        """Wait until the planner is empty and the machine is not held (G4, M3, $ commands)."""
        return self._wait(lambda: not self.planner and self.state in ("Idle", "Alarm"), epoch)

    def _line(self, raw: bytes, epoch: int) -> None:
        """Parse, plan or execute one line (lock held) and answer it."""
        text = re.sub(r"\(.*?\)|;.*$", "", raw.decode("ascii", "replace")).strip().upper()
        text = text.replace(" ", "").replace("\r", "")
        reply, n = self._run(text, epoch)
        if reply is None:
            return  # dropped by a reset
        if self._master is None:
            return
        self._write(f"{reply}\r\n".encode())
        for f in self.faults:
            due = f.kind == "garbage" and n is not None and f.line <= n and f.fired < f.count
            if due and (n - f.line) % f.every == 0:
                f.fired += 1
                junk = bytes(self._rng.choice(range(14, 256)) for _ in range(12))
                self._write(junk + b"\r\n" + bytes([0, 0xFF, 0x7F]) + b"\r\n")

    def _slow_down(self) -> None:
        """A "slow" fault: it takes delay_s before it parses the next line (waiting on the
        condition, so status, hold and reset still work; a reset ends the wait)."""
        if not any(f.kind == "slow" for f in self.faults):
            return
        with self._cond:
            m = re.match(rb"\s*N(\d+)", bytes(self._rx))
            n = int(m.group(1)) if m else None
            for f in self.faults:
                if f.kind == "slow" and n is not None and f.line <= n and f.fired < f.count:
                    f.fired += 1
                    self._sleep(f.delay_s, self._epoch)

    def _done(self, n: int | None, text: str) -> str:
        self.log.append(LoggedMove(n, text, tuple(self._plan_pos)))
        return "ok"

    def _run(self, text: str, epoch: int) -> tuple[str | None, int | None]:
        """Parse and plan or execute; returns (reply or None if dropped, N number)."""
        if not text:
            return "ok", None
        if text.startswith("$"):
            return self._dollar(text, epoch), None
        words = _WORD.findall(text)
        if "".join(a + b for a, b in words) != text:
            return "error:1", None  # expected command letter / junk on the line
        w: dict[str, float] = {}
        gs: list[float] = []
        ms: list[float] = []
        for letter, value in words:
            v = float(value)
            if letter == "G":
                gs.append(v)
            elif letter == "M":
                ms.append(v)
            elif letter in w:
                return "error:25", None  # a word repeated
            else:
                w[letter] = v
        n = int(w["N"]) if "N" in w else None
        for f in self.faults:
            if f.kind == "error" and f.line == n and not f.fired:
                f.fired = 1
                return f"error:{f.code or 20}", n
        if self.state == "Alarm":
            return "error:9", n
        if any(g not in (0, 1, 4, 10, 17, 21, 54, 90, 91, 92, 94) for g in gs) or any(
            m not in (0, 2, 3, 5) for m in ms
        ):
            return "error:20", n
        axes = {k: w[k] for k in "XYZ" if k in w}
        if "F" in w:
            self._feed = w["F"]
        if 90 in gs:
            self._absolute = True
        if 91 in gs:
            self._absolute = False
        if 10 in gs:  # G10 L20 P1: this work position becomes the given one (L2: set offset)
            if not self._sync(epoch):
                return None, n
            for k, v in axes.items():
                i = "XYZ".index(k)
                self.g54[i] = v if w.get("L") == 2 else self.mpos[i] - self.g92[i] - v
            self._wco_dirty = True
            return self._done(n, text), n
        if 92 in gs:
            if not self._sync(epoch):
                return None, n
            for k, v in axes.items():
                i = "XYZ".index(k)
                self.g92[i] = self.mpos[i] - self.g54[i] - v
            self._wco_dirty = True
            return self._done(n, text), n
        if 4 in gs:
            if "P" not in w:
                return "error:28", n
            if not self._sync(epoch):
                return None, n
            if not self._sleep(w["P"] / self.time_scale, epoch):
                return None, n
            return self._done(n, text), n
        if ms and any(m in (3, 5) for m in ms):  # spindle (servo): synchronised in GRBL 1.1
            if not self._sync(epoch):
                return None, n
            return self._done(n, text), n
        if 0 in gs:
            self._motion = 0
        if 1 in gs:
            self._motion = 1
        if not axes:
            return self._done(n, text), n
        if self._motion == 1 and self._feed <= 0:
            return "error:22", n
        return self._plan(axes, n, text, epoch)

    def _plan(self, axes: dict[str, float], n, text: str, epoch: int):
        start = list(self._plan_pos)
        target = list(start)
        for k, v in axes.items():
            i = "XYZ".index(k)
            target[i] = v + self.g54[i] + self.g92[i] if self._absolute else start[i] + v
        spm = [self.settings[100 + i] for i in range(3)]
        if all(round(target[i] * spm[i]) == round(start[i] * spm[i]) for i in range(3)):
            return self._done(n, text), n  # shorter than a step: no block
        if not self._wait(lambda: len(self.planner) < self.planner_blocks, epoch):
            return None, n
        d = [target[i] - start[i] for i in range(3)]
        dist = math.sqrt(sum(v * v for v in d))
        cap = min(self.settings[110 + i] * dist / abs(d[i]) for i in range(3) if d[i])
        rate = cap if self._motion == 0 else min(self._feed, cap)  # mm/min
        duration = dist / (rate / 60.0) / self.time_scale
        self.planner.append(_Block(n, text, tuple(start), tuple(target), duration))
        self._plan_pos = target
        self._cond.notify_all()
        return "ok", n

    def _dollar(self, text: str, epoch: int) -> str | None:
        if text in _VIEW:
            if text == "$$":
                for k, v in sorted(self.settings.items()):
                    self._write(f"${k}={v:g}\r\n".encode())
            elif text == "$G":
                self._write(f"[GC:G{self._motion} G54 G17 G21 G9{0 if self._absolute else 1} "
                            f"G94 M5 M9 T0 F{self._feed:g} S0]\r\n".encode())  # fmt: skip
            elif text == "$I":
                self._write(b"[VER:1.1h.20190825:]\r\n[OPT:VL,15,128]\r\n")
            elif text == "$#":
                g54 = ",".join(f"{v:.3f}" for v in self.g54)
                g92 = ",".join(f"{v:.3f}" for v in self.g92)
                self._write(f"[G54:{g54}]\r\n[G92:{g92}]\r\n".encode())
            return "ok"
        if self.state in ("Run", "Hold", "Home"):
            return "error:8"  # $ commands only while idle
        if text == "$X":
            if self.state == "Alarm":
                self.state = "Idle"
                self._write(b"[MSG:Caution: Unlocked]\r\n")
            return "ok"
        if text == "$H":
            if not self.settings[22]:
                return "error:5"
            self.state = "Home"
            if not self._sleep(0.5 / self.time_scale, epoch):
                return None
            self.mpos = list(self.home_mpos)
            self._plan_pos = list(self.mpos)
            self.state = "Idle"
            self.homed += 1
            return "ok"
        m = re.fullmatch(r"\$(\d+)=([-+]?\d*\.?\d+)", text)
        if m and int(m.group(1)) in self.settings:
            self.settings[int(m.group(1))] = float(m.group(2))
            return "ok"
        return "error:3"


def main(argv: list[str] | None = None) -> int:
    """Serve an emulator until Ctrl-C; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m robot.arms.grbl.emulator", description=__doc__)
    parser.add_argument("--rate", type=float, default=1000.0, help="max lines parsed per second")
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="motion this many times faster than real"
    )
    parser.add_argument("--homing", action="store_true", help="$22=1: boots locked, $H homes")
    parser.add_argument(
        "--setting", action="append", default=[], metavar="N=V", help="a $ setting, e.g. 110=8000"
    )
    parser.add_argument("--log", default=None, help="write executed moves here (JSON lines)")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    args = parser.parse_args(argv)
    try:
        settings = {int(k): float(v) for k, v in (s.split("=", 1) for s in args.setting)}
    except ValueError:
        parser.error(f"--setting wants N=V (e.g. 110=8000), got {args.setting}")
    emu = GrblEmulator(
        max_rate_hz=args.rate, time_scale=args.time_scale, homing=args.homing, settings=settings
    )
    print(emu.start(), flush=True)
    try:
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        emu.close()
        if args.log:
            with open(args.log, "w") as f:
                for m in emu.log:
                    f.write(json.dumps({"n": m.n, "line": m.text, "pos": m.pos}) + "\n")
        print(f"executed {len(emu.log)} lines, overflowed bytes: {emu.overflows}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
