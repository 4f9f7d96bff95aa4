"""What ran on a GRBL machine: the lines of one streaming pass and how far they executed.

GRBL answers ``ok`` when a line is *planned*. A pass (`Stream`) therefore keeps, per line
(`Entry`), whether it makes a planner block ("block"), waits for the planner to empty before
its ``ok`` ("sync": ``G4``, ``M3``/``M5``) or only sets modes ("modal"), and the work position
before and after it (mm). From the answers and the status reports (``Bf``: free planner blocks,
``Ln``: the running line) it derives the prefix of lines that ran; after a stop, `locate` finds
from the machine's position the first line that did not complete.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field, replace

from robot.arms.grbl.protocol import JobLine, Status

POSITION_TOL_MM = 0.02  # a reported position (3 decimals) within this of a path is on it
_AXIS = re.compile(rb"([XYZ])([-+]?(?:\d+\.?\d*|\.\d+))")


@dataclass
class Entry:
    """One line of a pass.

    Attributes:
        idx: job line index; None for a recovery line.
        data: the bytes sent (``N<idx+1>`` prefix, newline).
        kind: "block", "sync" or "modal" (see the module docstring).
        start, end: work position (mm) before and after it.
        dwell_s: the ``G4`` dwell (s), 0 otherwise.
    """

    idx: int | None
    data: bytes
    kind: str
    start: tuple[float, float, float]
    end: tuple[float, float, float]
    dwell_s: float = 0.0


def entries(
    items: list[tuple[int | None, JobLine]],
    here: tuple[float, float, float] | None,
    step_mm: float,
    line_numbers: bool,
) -> list[Entry]:
    """Entries for (job index or None, line) pairs, starting from the work position ``here``
    (None: unknown). A move counts as a block only when it is surely at least one step
    (``step_mm``) long: counting a block GRBL did not plan would mark a queued move as run."""
    pos = None if here is None else tuple(here)
    out = []
    for idx, line in items:
        end = (line.state.x, line.state.y, line.state.z)
        text = line.text if idx is None or not line_numbers else f"N{idx + 1} {line.text}"
        dwell = 0.0
        if line.text.startswith("G4"):
            kind, dwell = "sync", float(line.text.split("P")[1])
        elif line.text.startswith(("M3", "M5")):
            kind = "sync"
        elif line.text.startswith(("G0", "G1")) and (
            pos is None or max(abs(a - b) for a, b in zip(end, pos, strict=True)) >= step_mm
        ):
            kind = "block"
        else:
            kind = "modal"  # no move (or less than a step): no block, done once parsed
        out.append(
            Entry(idx, (text + "\n").encode(), kind, end if pos is None else pos, end, dwell)
        )
        pos = end
    return out


@dataclass
class Stream:
    """One streaming pass: what was sent, answered and executed (indices into ``entries``)."""

    entries: list[Entry]
    sent: int = 0
    acked: int = 0
    executed: int = 0  # entries [0, executed) ran
    barrier: int | None = None  # first entry GRBL rejected: nothing from it on counts as run
    queued: deque = field(default_factory=deque)  # answered "block" entries not known to have run
    inflight: deque = field(default_factory=deque)  # entries written, no answer yet
    used: int = 0  # bytes in flight
    step_mm: float = 0.004  # a move shorter than this gets no planner block (1 / $100..$102)

    def answered(self, q: int, ok: bool) -> int:
        """Entry q got ``ok`` (planned) or ``error:N`` (rejected); returns how many entries
        are now known to have run (``executed`` is not changed: see `capped`)."""
        self.acked = q + 1
        if not ok:
            self.barrier = q if self.barrier is None else self.barrier
            self.skip(q)
            return self.executed
        kind = self.entries[q].kind
        if kind == "sync":
            self.queued.clear()  # GRBL waited for the planner to empty before answering
            return q + 1
        if kind == "block":
            self.queued.append(q)
            return self.queued[0]
        return self.queued[0] if self.queued else q + 1

    def skip(self, q: int) -> None:
        """GRBL dropped entry q (its answer was an error) and plans the next lines from where
        q would have started: recompute their positions and blocks as GRBL runs them, so
        that the ``Bf`` count and the position (`locate`) follow what the machine really does.
        Job lines are absolute (G90): an axis a line does not name keeps its value."""
        e = self.entries[q]
        pos = e.start
        self.entries[q] = replace(e, end=pos, kind="modal" if e.kind == "block" else e.kind)
        for j in range(q + 1, len(self.entries)):
            e = self.entries[j]
            words = dict(_AXIS.findall(e.data))
            if not words:
                self.entries[j] = replace(e, start=pos, end=pos)
                continue
            end = tuple(
                float(words[a]) if a in words else v
                for a, v in zip((b"X", b"Y", b"Z"), pos, strict=True)
            )
            kind = e.kind
            if kind in ("block", "modal"):
                moved = max(abs(a - b) for a, b in zip(end, pos, strict=True))
                kind = "block" if moved >= self.step_mm else "modal"
            self.entries[j] = replace(e, start=pos, end=end, kind=kind)
            pos = end

    def status(self, s: Status, planner_blocks: int) -> int:
        """A status report: ``Bf`` says how many answered blocks are still queued, ``Ln`` which
        line runs; idle with an empty planner means all answered lines ran."""
        if s.buffer is not None:
            still = max(0, planner_blocks - s.buffer[0])
            while len(self.queued) > still:
                self.queued.popleft()
        if s.line_number is not None:
            while (
                self.queued
                and (idx := self.entries[self.queued[0]].idx) is not None
                and (idx + 1 < s.line_number)
            ):
                self.queued.popleft()
        empty = s.buffer is None or s.buffer[0] >= planner_blocks
        if s.state == "Idle" and not self.inflight and empty:
            self.queued.clear()
        return self.queued[0] if self.queued else self.acked

    def capped(self, upto: int) -> int:
        """``upto`` limited by a rejected line: it and what follows run again on resume."""
        return upto if self.barrier is None else min(upto, self.barrier)


def fmt_pos(p) -> str:
    return "?" if p is None else "(" + ", ".join(f"{v:.3f}" for v in p) + ")"


def near(a, b) -> bool:
    return max(abs(x - y) for x, y in zip(a, b, strict=True)) <= POSITION_TOL_MM


def on_segment(p, a, b) -> bool:
    d = [y - x for x, y in zip(a, b, strict=True)]
    n2 = sum(v * v for v in d)
    if n2 == 0:
        return near(p, a)
    t = max(0.0, min(1.0, sum((pi - ai) * di for pi, ai, di in zip(p, a, d, strict=True)) / n2))
    return near(p, [ai + t * di for ai, di in zip(a, d, strict=True)])


def locate(lines: list[Entry], lo: int, hi: int, p) -> int | None:
    """The first entry in [lo, hi] that did not complete, for a machine stopped at ``p``
    (work mm): entries before ``lo`` ran, those from ``hi`` on never reached GRBL's planner.
    The earliest consistent answer wins (repeat a move rather than skip one); None when ``p``
    lies on none of those moves (the position was lost)."""
    if p is None:
        return lo
    for q in range(lo, min(hi, len(lines))):
        a, b = lines[q].start, lines[q].end
        if near(p, a) or (on_segment(p, a, b) and not near(p, b)):
            return q
    last = min(hi, len(lines))
    if last > lo and near(p, lines[last - 1].end):
        return last
    if last == lo and lo < len(lines) and near(p, lines[lo].start):
        return lo
    if last == lo and lo == len(lines) and lo > 0 and near(p, lines[lo - 1].end):
        return lo
    return None
