"""A GRBL 1.1 emulator on a pseudo-terminal: dry-run G-code, and test the driver for real.

The emulator opens a pseudo-terminal pair (``os.openpty``); ``emulator.port`` is the slave's
path, which pyserial (or any sender) opens like a USB serial port. Like GRBL it has a 128-byte
serial RX buffer (bytes that do not fit are lost and counted in ``overflows``), answers every
line with ``ok`` or ``error:N``, handles the real-time bytes ``?`` (status), ``!`` (feed hold),
``~`` (cycle start) and Ctrl-X (soft reset) at once, and refuses G-code with ``error:9`` while in
ALARM until ``$X`` or ``$H``. The motion planner is modelled by a maximum rate: it takes at most
``max_rate_hz`` lines per second out of the RX buffer. Every move it executes is appended to
``log`` with its ``N`` line number. Faults can be injected (`Fault`).

Command line (prints the port, runs until Ctrl-C, writes the move log as JSON lines)::

    python -m robot.arms.grbl.emulator --rate 500 --log moves.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import select
import sys
import threading
import time
import tty
from dataclasses import dataclass, field

BANNER = b"\r\nGrbl 1.1h ['$' for help]\r\n"
_WORD = re.compile(r"([A-Z])([-+]?(?:\d+\.?\d*|\.\d+))")


@dataclass
class Fault:
    """A fault to inject.

    Attributes:
        kind: "error" (answer ``error:code`` instead of running line N), "alarm" (enter ALARM
            ``code`` at line N, which is refused), "vanish" (run line N, then close the port before
            its ``ok``), "garbage" (``count`` bursts of random bytes, one after every
            ``every``-th line from line N on), "slow" (wait ``delay_s`` before accepting each of
            ``count`` lines from line N on).
        line: the ``N`` number of the job line that triggers it.
        code: error or alarm code.
        every, count, delay_s: see kind.
    """

    kind: str
    line: int
    code: int = 20
    every: int = 7
    count: int = 10
    delay_s: float = 0.05
    fired: int = field(default=0, compare=False)


@dataclass(frozen=True)
class LoggedMove:
    """One executed line: its N number (None when sent without one), text, and end position."""

    n: int | None
    text: str
    pos: tuple[float, float, float]


class GrblEmulator:
    """See the module docstring.

    Args:
        max_rate_hz: lines per second the planner accepts at most (the streaming ceiling).
        rx_buffer_bytes: serial RX buffer size (GRBL: 128).
        faults: faults to inject.
        seed: seed of the garbage bytes.
    """

    def __init__(
        self,
        max_rate_hz: float = 1000.0,
        rx_buffer_bytes: int = 128,
        faults: list[Fault] | tuple[Fault, ...] = (),
        seed: int = 0,
    ) -> None:
        self.max_rate_hz = float(max_rate_hz)
        self.rx_buffer_bytes = rx_buffer_bytes
        self.faults = list(faults)
        self.log: list[LoggedMove] = []
        self.overflows = 0  # bytes lost because the sender overfilled the RX buffer
        self.received_lines = 0
        self.resets = 0
        self.state = "Idle"  # Idle | Run | Hold | Alarm
        self.pos = [0.0, 0.0, 0.0]
        self.line_number = 0  # N of the last executed numbered line (status field Ln)
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
        for target in (self._reader, self._planner):
            t = threading.Thread(target=target, daemon=True, name=f"grbl-emu-{target.__name__}")
            t.start()
            self._threads.append(t)
        return self.port

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing, Ctrl-X passes through
        self._master, self._slave = master, slave
        self.port = os.ttyname(slave)
        os.write(master, BANNER)

    def vanish(self) -> None:
        """The port disappears (cable pulled): the sender gets I/O errors; unread bytes are lost.
        The machine keeps its position, log and line number."""
        with self._lock:
            if self._master is not None:
                os.close(self._master)
                self._master = None
            self._rx.clear()
            if self.state in ("Run", "Hold"):
                self.state = "Idle"

    def reconnect(self) -> str:
        """Plug the machine back in on a new pseudo-terminal; returns the new port path."""
        with self._lock:
            if self._master is not None:
                self.vanish()
            if self._slave is not None:
                os.close(self._slave)
            self._open_pty()
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
            for b in data:
                self._byte(b)

    def _byte(self, b: int) -> None:
        with self._lock:
            if b == 0x3F:  # '?'
                self._write(self._status().encode())
            elif b == 0x21:  # '!'
                if self.state == "Run" or self.state == "Idle":
                    self.state = "Hold"
            elif b == 0x7E:  # '~'
                if self.state == "Hold":
                    self.state = "Idle"
                    self._cond.notify_all()
            elif b == 0x18:  # Ctrl-X
                self._soft_reset()
            elif len(self._rx) >= self.rx_buffer_bytes:
                self.overflows += 1
            else:
                self._rx.append(b)
                if b == 0x0A:
                    self._cond.notify_all()

    def _status(self) -> str:
        x, y, z = self.pos
        state = "Run" if self.state == "Idle" and b"\n" in self._rx else self.state
        return f"<{state}|MPos:{x:.3f},{y:.3f},{z:.3f}|FS:0,0|Ln:{self.line_number}>\r\n"

    def _soft_reset(self) -> None:
        moving = self.state in ("Run", "Hold") or b"\n" in self._rx
        self._rx.clear()
        self.resets += 1
        self.state = "Alarm" if moving else ("Alarm" if self.state == "Alarm" else "Idle")
        self._write(BANNER)
        if self.state == "Alarm":
            self._write(b"[MSG:'$H'|'$X' to unlock]\r\n")
        self._cond.notify_all()

    # ---- planner side --------------------------------------------------------------------------
    def _planner(self) -> None:
        period = 1.0 / self.max_rate_hz
        next_slot = 0.0
        while not self._closing:
            with self._cond:
                while not self._closing and (b"\n" not in self._rx or self.state == "Hold"):
                    self._cond.wait(0.05)
                if self._closing:
                    return
            self._slow_down()
            start = max(time.perf_counter(), next_slot)
            while (left := start - time.perf_counter()) > 0:  # busy with the previous block
                time.sleep(min(left, 0.001))
            next_slot = start + period
            with self._lock:
                if b"\n" not in self._rx or self.state == "Hold":
                    continue  # a reset or a hold came in meanwhile
                cut = self._rx.index(b"\n")
                raw = bytes(self._rx[:cut])
                del self._rx[: cut + 1]
                self.received_lines += 1
                self._execute(raw)

    def _execute(self, raw: bytes) -> None:
        """Run one line (lock held) and answer it."""
        text = re.sub(r"\(.*?\)|;.*$", "", raw.decode("ascii", "replace")).strip().upper()
        text = text.replace(" ", "").replace("\r", "")
        reply, n = self._run(text)
        fault = self._fault_for(n)
        if fault is not None and fault.kind == "vanish":
            self.vanish()
            return
        self._write(f"{reply}\r\n".encode())
        if fault is not None and fault.kind == "garbage" and (n - fault.line) % fault.every == 0:
            junk = bytes(self._rng.choice(range(14, 256)) for _ in range(12))
            self._write(junk + b"\r\n" + bytes([0, 0xFF, 0x7F]) + b"\r\n")

    def _slow_down(self) -> None:
        """A "slow" fault: the machine takes delay_s before it accepts the next line (the lock
        is free meanwhile, so status, hold and reset still work)."""
        with self._lock:
            m = re.match(rb"\s*N(\d+)", bytes(self._rx))
            n = int(m.group(1)) if m else None
        for f in self.faults:
            if f.kind == "slow" and n is not None and f.line <= n and f.fired < f.count:
                f.fired += 1
                time.sleep(f.delay_s)

    def _fault_for(self, n: int | None) -> Fault | None:
        if n is None:
            return None
        for f in self.faults:
            if f.kind == "vanish" and f.line == n and not f.fired:
                f.fired = 1
                return f
            if f.kind == "garbage" and f.line <= n and f.fired < f.count:
                if (n - f.line) % f.every == 0:
                    f.fired += 1
                return f
        return None

    def _run(self, text: str) -> tuple[str, int | None]:
        """Parse and execute; returns (reply, N number)."""
        if not text:
            return "ok", None
        if text.startswith("$"):
            if text in ("$X", "$H"):
                if text == "$H":
                    self.pos = [0.0, 0.0, 0.0]
                self.state = "Idle"
                return "ok", None
            return ("ok", None) if self.state != "Alarm" else ("error:9", None)
        words = _WORD.findall(text)
        if "".join(a + b for a, b in words) != text:
            return "error:1", None  # expected command letter / junk on the line
        n = None
        for letter, value in words:
            if letter == "N":
                n = int(float(value))
        for f in self.faults:
            if f.line == n and not f.fired and f.kind == "error":
                f.fired = 1
                return f"error:{f.code}", n
            if f.line == n and not f.fired and f.kind == "alarm":
                f.fired = 1
                self.state = "Alarm"
                self._write(f"ALARM:{f.code}\r\n".encode())
        if self.state == "Alarm":
            return "error:9", n
        axes = {"X": 0, "Y": 1, "Z": 2}
        for letter, value in words:
            if letter in axes:
                self.pos[axes[letter]] = float(value)
        if n is not None:
            self.line_number = n
        self.log.append(LoggedMove(n, text, tuple(self.pos)))
        return "ok", n


def main(argv: list[str] | None = None) -> int:
    """Serve an emulator until Ctrl-C; see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m robot.arms.grbl.emulator", description=__doc__)
    parser.add_argument("--rate", type=float, default=1000.0, help="max lines per second")
    parser.add_argument("--log", default=None, help="write executed moves here (JSON lines)")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long")
    args = parser.parse_args(argv)
    emu = GrblEmulator(max_rate_hz=args.rate)
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
