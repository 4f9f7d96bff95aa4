"""`SessionStore`: everything a co-painting session does, persisted as it happens.

A session is a folder::

    session.sqlite            turns, prompts, proposals, choice, plan, stroke log, events
    images/turn_0003/...      canvas before/after, proposals, stroke snapshots (PNG)

Durability: SQLite in WAL mode with ``synchronous=FULL`` (a committed row survives power loss
and ``kill -9``), images written to a temp file, fsynced and renamed (`images.write_png_atomic`)
*before* the row that names them is committed. So at any instant the database only points at
complete files, and a session killed mid-stroke resumes from its last committed stroke: the
strokes marked done are exactly those whose result is in the latest snapshot, so none is painted
twice and none is lost.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cofrida.session.images import read_png, write_png_atomic
from cofrida.session.lock import SessionLock

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS turn (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('human', 'robot')),
    prompt TEXT,
    state TEXT NOT NULL,
    canvas_before TEXT NOT NULL,
    canvas_after TEXT,
    chosen INTEGER,
    target TEXT,
    plan TEXT,
    strokes_total INTEGER NOT NULL DEFAULT 0,
    strokes_done INTEGER NOT NULL DEFAULT 0,
    snapshot TEXT,
    created REAL NOT NULL,
    finished REAL
);
CREATE TABLE IF NOT EXISTS proposal (
    turn_id INTEGER NOT NULL REFERENCES turn(id),
    idx INTEGER NOT NULL,
    image TEXT NOT NULL,
    score REAL,
    PRIMARY KEY (turn_id, idx)
);
CREATE TABLE IF NOT EXISTS stroke (
    turn_id INTEGER NOT NULL REFERENCES turn(id),
    idx INTEGER NOT NULL,
    finished REAL NOT NULL,
    snapshot TEXT,
    PRIMARY KEY (turn_id, idx)
);
CREATE TABLE IF NOT EXISTS event (
    id INTEGER PRIMARY KEY,
    turn_id INTEGER REFERENCES turn(id),
    t REAL NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL
);
"""

# Turn states, in order. 'undone' and 'cancelled' end a turn without its result counting.
STATES = ("open", "proposed", "chosen", "planned", "executing", "done", "undone", "cancelled")


@dataclass
class StrokeProgress:
    """How far a robot turn's execution got: strokes [0, done) are painted, in `snapshot`."""

    done: int
    total: int
    snapshot: Path | None


@dataclass
class TurnRecord:
    """One turn as stored; image fields are absolute paths."""

    id: int
    kind: str
    prompt: str | None
    state: str
    canvas_before: Path
    canvas_after: Path | None
    chosen: int | None
    target: Path | None
    plan: str | None
    progress: StrokeProgress
    created: float
    finished: float | None
    proposals: list[tuple[Path, float | None]] = field(default_factory=list)


class SessionStore:
    """Open (or create) the session in `folder`. Thread-safe; one writer at a time: a writer
    holds the session's OS file lock (`cofrida.session.lock`) until `close`, and a second
    writer, in any process, gets `SessionInUse` naming the holder.

    Args:
        folder: the session folder (created if missing).
        config: stored on creation (brush, palette, canvas, model, ...); ignored when reopening.
        keep_every: keep the stroke snapshot of every k-th stroke for time-lapses (others are
            replaced as execution advances; the latest is always kept).
        readonly: open an existing session to look at it while another process writes (a UI,
            an export): nothing is written or cleaned up, and writing raises.
    Raises:
        SessionInUse: (a writer) the session is open elsewhere.
        ValueError: the session's schema is not one this version reads.
    """

    def __init__(
        self,
        folder: str | Path,
        config: dict | None = None,
        keep_every: int = 10,
        readonly: bool = False,
    ):
        self.folder = Path(folder)
        self.readonly = readonly
        self._owner: SessionLock | None = None
        if readonly:
            if not (self.folder / "session.sqlite").is_file():
                raise FileNotFoundError(f"no session at {self.folder}")
            self._lock = threading.RLock()
            uri = f"file:{self.folder / 'session.sqlite'}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
            self.keep_every = max(1, keep_every)
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self.keep_every = max(1, keep_every)
        self._lock = threading.RLock()
        self._owner = SessionLock(self.folder)  # before anything is read or written
        try:
            self._open_writer(config)
        except BaseException:
            self._owner.release()
            raise

    def _open_writer(self, config: dict | None) -> None:
        self._db = sqlite3.connect(
            self.folder / "session.sqlite", check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        # Temp files of writes a crash interrupted: never referenced by a committed row.
        for stale in (self.folder / "images").glob("*/.*.tmp"):
            stale.unlink(missing_ok=True)
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                db.execute("INSERT INTO meta VALUES ('config', ?)", (json.dumps(config or {}),))
                db.execute("INSERT INTO meta VALUES ('created', ?)", (repr(time.time()),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise ValueError(
                    f"{self.folder}: session schema {row[0]} is not supported "
                    f"(this version reads {SCHEMA_VERSION})"
                )

    # ---- plumbing ------------------------------------------------------------------------
    class _Tx:
        def __init__(self, store: SessionStore):
            self.store = store

        def __enter__(self) -> sqlite3.Connection:
            if self.store.readonly:
                raise PermissionError(f"session {self.store.folder} was opened read-only")
            self.store._lock.acquire()
            self.store._db.execute("BEGIN IMMEDIATE")
            return self.store._db

        def __exit__(self, exc_type, exc, tb) -> None:
            try:
                self.store._db.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.store._lock.release()

    def _tx(self) -> SessionStore._Tx:
        return SessionStore._Tx(self)

    def close(self) -> None:
        """Close the database and give up the session's lock (idempotent)."""
        with self._lock:
            self._db.close()
            if self._owner is not None:
                self._owner.release()

    def __enter__(self) -> SessionStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _rel(self, path: Path) -> str:
        return str(path.relative_to(self.folder))

    def _abs(self, rel: str | None) -> Path | None:
        return None if rel is None else self.folder / rel

    def _image(self, turn_id: int, name: str, image) -> str:
        if self.readonly:
            raise PermissionError(f"session {self.folder} was opened read-only")
        return self._rel(
            write_png_atomic(image, self.folder / "images" / f"turn_{turn_id:04d}" / name)
        )

    @property
    def config(self) -> dict:
        with self._lock:
            return json.loads(
                self._db.execute("SELECT value FROM meta WHERE key='config'").fetchone()[0]
            )

    # ---- turns ---------------------------------------------------------------------------
    def begin_turn(self, kind: str, canvas_before, prompt: str | None = None) -> int:
        """Start a turn from the canvas as it is now; returns the turn id."""
        if kind not in ("human", "robot"):
            raise ValueError(f"turn kind must be 'human' or 'robot', got {kind!r}")
        with self._lock:
            turn_id = (self._db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM turn").fetchone())[0]
            before = self._image(turn_id, "canvas_before.png", canvas_before)
            with self._tx() as db:
                db.execute(
                    "INSERT INTO turn (id, kind, prompt, state, canvas_before, created) "
                    "VALUES (?, ?, ?, 'open', ?, ?)",
                    (turn_id, kind, prompt, before, time.time()),
                )
            self.log(turn_id, "begin", {"kind": kind, "prompt": prompt})
            return turn_id

    def add_proposals(self, turn_id: int, images, scores=None) -> None:
        """Store the model's proposals (and their scores) for a turn."""
        scores = [None] * len(images) if scores is None else [float(s) for s in scores]
        if len(scores) != len(images):
            raise ValueError(f"{len(images)} proposals but {len(scores)} scores")
        rows = [
            (turn_id, i, self._image(turn_id, f"proposal_{i:02d}.png", img), scores[i])
            for i, img in enumerate(images)
        ]
        with self._tx() as db:
            db.execute("DELETE FROM proposal WHERE turn_id=?", (turn_id,))
            db.executemany("INSERT INTO proposal VALUES (?, ?, ?, ?)", rows)
            db.execute("UPDATE turn SET state='proposed' WHERE id=?", (turn_id,))

    def add_region(self, turn_id: int, mask) -> str:
        """Keep the region the person marked for a turn's proposals ((3, H, W), 1 inside);
        returns its path relative to the session folder (the turn's ``propose`` event names
        it)."""
        return self._image(turn_id, "region.png", mask)

    def region(self, turn_id: int) -> torch.Tensor | None:
        """The region of the turn's latest proposals as an (H, W) bool mask, or None."""
        for e in reversed(self.events(turn_id)):
            if e["event"] == "propose":
                rel = e["data"].get("region_png")
                return None if rel is None else read_png(self._abs(rel))[0] > 0.5
        return None

    def choose(self, turn_id: int, target, chosen: int | None = None) -> None:
        """Record the person's choice: a proposal index, or None for a composite `target`."""
        rel = self._image(turn_id, "target.png", target)
        with self._tx() as db:
            db.execute(
                "UPDATE turn SET state='chosen', chosen=?, target=? WHERE id=?",
                (chosen, rel, turn_id),
            )
        self.log(turn_id, "choose", {"chosen": chosen})

    def set_plan(self, turn_id: int, plan_json: str, strokes_total: int) -> None:
        """Store the plan to execute (JSON) and its stroke count."""
        with self._tx() as db:
            db.execute(
                "UPDATE turn SET state='planned', plan=?, strokes_total=?, strokes_done=0, "
                "snapshot=NULL WHERE id=?",
                (plan_json, int(strokes_total), turn_id),
            )

    def stroke_done(self, turn_id: int, stroke_index: int, canvas_after=None) -> None:
        """Mark stroke `stroke_index` painted (strokes are painted in order), with the canvas
        after it when the arm can show it (the sim arm can; a real arm's camera may not)."""
        with self._lock:
            t = self._turn_row(turn_id)
            if stroke_index != t["strokes_done"]:
                raise ValueError(
                    f"turn {turn_id}: stroke {stroke_index} reported done, but the next stroke "
                    f"to paint is {t['strokes_done']} (strokes are painted in order, once)"
                )
            snap = None
            if canvas_after is not None:
                snap = self._image(turn_id, f"stroke_{stroke_index:04d}.png", canvas_after)
            old = t["snapshot"]
            with self._tx() as db:
                db.execute(
                    "INSERT INTO stroke VALUES (?, ?, ?, ?)",
                    (turn_id, stroke_index, time.time(), snap),
                )
                db.execute(
                    "UPDATE turn SET state='executing', strokes_done=?, "
                    "snapshot=COALESCE(?, snapshot) WHERE id=?",
                    (stroke_index + 1, snap, turn_id),
                )
            # The superseded snapshot goes only after the new one is committed.
            if snap is not None and old is not None and old != snap:
                old_index = int(Path(old).stem.split("_")[1])
                if old_index % self.keep_every != 0:
                    (self.folder / old).unlink(missing_ok=True)

    def finish_turn(self, turn_id: int, canvas_after) -> None:
        """Close a turn with the canvas as it ended."""
        rel = self._image(turn_id, "canvas_after.png", canvas_after)
        with self._tx() as db:
            db.execute(
                "UPDATE turn SET state='done', canvas_after=?, finished=? WHERE id=?",
                (rel, time.time(), turn_id),
            )
        self.log(turn_id, "finish", {})

    def cancel_turn(self, turn_id: int, reason: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE turn SET state='cancelled', finished=? WHERE id=?", (time.time(), turn_id)
            )
        self.log(turn_id, "cancel", {"reason": reason})

    def undo_turn(self, turn_id: int) -> torch.Tensor:
        """Mark a finished turn undone; returns the canvas it started from."""
        t = self._turn_row(turn_id)
        if t["state"] != "done":
            raise ValueError(f"turn {turn_id} is {t['state']}; only a finished turn can be undone")
        with self._tx() as db:
            db.execute("UPDATE turn SET state='undone' WHERE id=?", (turn_id,))
        self.log(turn_id, "undo", {})
        return read_png(self.folder / t["canvas_before"])

    def log(self, turn_id: int | None, kind: str, payload: dict) -> None:
        """Append an event to the execution log."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO event (turn_id, t, kind, payload) VALUES (?, ?, ?, ?)",
                (turn_id, time.time(), kind, json.dumps(payload)),
            )

    # ---- reading -------------------------------------------------------------------------
    def _turn_row(self, turn_id: int) -> sqlite3.Row:
        with self._lock:
            self._db.row_factory = sqlite3.Row
            try:
                row = self._db.execute("SELECT * FROM turn WHERE id=?", (turn_id,)).fetchone()
            finally:
                self._db.row_factory = None
        if row is None:
            raise KeyError(f"no turn {turn_id} in session {self.folder}")
        return row

    def turn(self, turn_id: int) -> TurnRecord:
        t = self._turn_row(turn_id)
        with self._lock:
            props = self._db.execute(
                "SELECT image, score FROM proposal WHERE turn_id=? ORDER BY idx", (turn_id,)
            ).fetchall()
        return TurnRecord(
            id=t["id"],
            kind=t["kind"],
            prompt=t["prompt"],
            state=t["state"],
            canvas_before=self.folder / t["canvas_before"],
            canvas_after=self._abs(t["canvas_after"]),
            chosen=t["chosen"],
            target=self._abs(t["target"]),
            plan=t["plan"],
            progress=StrokeProgress(
                t["strokes_done"], t["strokes_total"], self._abs(t["snapshot"])
            ),
            created=t["created"],
            finished=t["finished"],
            proposals=[(self.folder / p, s) for p, s in props],
        )

    def turns(self) -> list[TurnRecord]:
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT id FROM turn ORDER BY id")]
        return [self.turn(i) for i in ids]

    def unfinished_turn(self) -> TurnRecord | None:
        """The last turn if it was interrupted (not done, undone or cancelled)."""
        turns = self.turns()
        if turns and turns[-1].state not in ("done", "undone", "cancelled"):
            return turns[-1]
        return None

    def painted_strokes(self, turn_id: int) -> list[int]:
        with self._lock:
            return [
                r[0]
                for r in self._db.execute(
                    "SELECT idx FROM stroke WHERE turn_id=? ORDER BY idx", (turn_id,)
                )
            ]

    def events(self, turn_id: int | None = None) -> list[dict]:
        with self._lock:
            q = "SELECT turn_id, t, kind, payload FROM event"
            rows = self._db.execute(q + (" WHERE turn_id=?" if turn_id else "") + " ORDER BY id",
                                    (turn_id,) if turn_id else ()).fetchall()  # fmt: skip
        return [{"turn": r[0], "t": r[1], "event": r[2], "data": json.loads(r[3])} for r in rows]

    def current_canvas(self) -> torch.Tensor | None:
        """The canvas as the session last left it: the latest stroke snapshot of an interrupted
        turn, else the last finished turn's result (undone turns skipped), else None."""
        for t in reversed(self.turns()):
            if t.state in ("undone", "cancelled"):
                continue
            if t.state == "done" and t.canvas_after is not None:
                return read_png(t.canvas_after)
            if t.progress.snapshot is not None:
                return read_png(t.progress.snapshot)
            return read_png(t.canvas_before)
        return None

    def snapshots(self) -> list[Path]:
        """Every kept image of the canvas in time order (for time-lapses)."""
        frames: list[Path] = []
        for t in self.turns():
            if t.state == "undone":
                continue
            frames.append(t.canvas_before)
            frames += sorted((self.folder / "images" / f"turn_{t.id:04d}").glob("stroke_*.png"))
            if t.canvas_after is not None:
                frames.append(t.canvas_after)
        return [f for f in frames if f.exists()]
