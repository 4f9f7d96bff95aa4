"""What the app knows: its configuration (`AppConfig`), how it opens sessions
(`SessionOpener`), and the state of one browser tab (`TabState`).

One browser tab works on one `cofrida.Session` folder at a time; the folder is opened lazily on
the tab's first action, so visitors who only look create nothing. Two tabs never write the same
folder: `SessionOpener` moves a folder to the tab that opens it last (reloading the page makes a
new tab), and refuses while the tab holding it is planning or painting.
"""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cofrida.session import Session, SessionConfig, open_sim_session
from cofrida.session.inputs import MAX_UPLOAD_BYTES
from cofrida.session.proposers import DEFAULT_MODEL_NAME as DEFAULT_MODEL
from cofrida.session.proposers import default_proposer
from cofrida.session.scene_proposer import MODEL_NAME as STAND_IN
from cofrida.session.scene_proposer import SceneProposer
from planner import PlannerConfig
from sim.palette import PALETTE_PRESETS, Palette

# A short planner schedule for tests and quick looks (the planner default is 200 + 40 steps).
QUICK_PLANNER = PlannerConfig(seed=0, coarse_px=64, coarse_steps=10, fine_steps=2)


@dataclass(frozen=True)
class AppConfig:
    """How the app runs; built once by `ui.app.main` from the command line.

    Attributes:
        session_dir: folder that holds one sub-folder per co-painting session.
        robot: "sim" (the person paints in the browser, the sim arm paints) or "real" (the
            canvas comes from the configured camera, plans go to the configured arm).
        strokes: default stroke budget per robot turn (the settings panel changes it).
        proposals: default number of proposals per prompt.
        canvas_px: canvas width in pixels for planning and the sim arm.
        palette: the robot's paints (a `sim.palette.PALETTE_PRESETS` name).
        brush: the robot's brush (a `sim.Brush` preset name).
        planner: the planner's settings (schedule, weights).
        speed_factor: sim arm speed: 0 paints as fast as the computer can, 1 at real arm speed.
        model: an edit-model bundle folder or hub id; None: the shipped default (or the stand-in
            until it is trained).
        seed: seed of the proposals and the simulated brushes.
        max_upload_bytes: larger uploads are refused.
        arm_options, camera_options: ``--arm.*`` / ``--camera.*`` options of the real mode,
            as `robot.cli_config.split_options` returns them.
    """

    session_dir: Path
    robot: str = "sim"
    strokes: int = 200
    proposals: int = 4
    canvas_px: int = 256
    palette: str = "acrylic"
    brush: str = "round"
    planner: PlannerConfig = field(default_factory=lambda: PlannerConfig(seed=0))
    speed_factor: float = 0.0
    model: str | None = None
    seed: int = 0
    max_upload_bytes: int = MAX_UPLOAD_BYTES
    arm_options: dict = field(default_factory=dict)
    camera_options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.robot not in ("sim", "real"):
            raise ValueError(f"robot must be 'sim' or 'real', got {self.robot!r}")
        if self.palette not in PALETTE_PRESETS:
            raise ValueError(f"palette must be one of {sorted(PALETTE_PRESETS)}")
        if not (1 <= self.strokes <= 2000 and 1 <= self.proposals <= 8):
            raise ValueError("strokes must be 1..2000 and proposals 1..8")

    @property
    def simulated(self) -> bool:
        """Whether the person paints in the browser (no camera, the sim arm)."""
        return self.robot == "sim"


# The servers' temporary folders not removed yet; the rest go when the interpreter exits (a
# normal exit, Ctrl-C, or SIGTERM as `ui.app.main` handles it).
_SCRATCH_ROOTS: set[Path] = set()


@atexit.register
def _remove_scratch_roots() -> None:
    for root in list(_SCRATCH_ROOTS):
        shutil.rmtree(root, ignore_errors=True)
    _SCRATCH_ROOTS.clear()


def _changed(folder: Path) -> float:
    """When the session in `folder` last changed (its database or write-ahead log)."""
    files = [folder / "session.sqlite", folder / "session.sqlite-wal"]
    return max(f.stat().st_mtime for f in files if f.exists())


def palette_preset_of(names: list[str]) -> str | None:
    """The preset whose paint names are `names` (a stored session's record), or None."""
    return next((p for p, paints in PALETTE_PRESETS.items() if list(paints) == list(names)), None)


class SessionOpener:
    """Opens sessions as the app is configured, sharing proposers between tabs and keeping
    track of which session folders are open (one tab per folder).

    Args:
        config: the app's configuration.
        proposers: proposers to use by palette name (e.g. a stand-in in tests); any other
            palette's proposer is loaded on first use.
    """

    def __init__(self, config: AppConfig, proposers: dict[str, object] | None = None) -> None:
        self.config = config
        self._proposers: dict[str, object] = dict(proposers or {})
        self._holders: dict[Path, TabState | None] = {}  # open folder -> the tab holding it
        self._lock = threading.Lock()
        self._scratch_root: Path | None = None

    def temp_root(self) -> Path:
        """The server's one temporary folder (``cofrida-ui-*`` in the system's temporary
        folder, made on first use): every tab's downloads, and Gradio's cache of what the
        browser uploads and downloads when `ui.app.main` puts it there.

        It goes when the server stops (`close`, and at interpreter exit as a backstop), and
        with it the folder of every tab the browser dropped without closing. It holds only
        copies made for the browser: sessions live in `AppConfig.session_dir`.
        """
        with self._lock:
            if self._scratch_root is None or not self._scratch_root.is_dir():
                self._scratch_root = Path(tempfile.mkdtemp(prefix="cofrida-ui-"))
                _SCRATCH_ROOTS.add(self._scratch_root)
            return self._scratch_root

    def scratch_dir(self) -> Path:
        """A new temporary folder for one tab's downloads, inside `temp_root`."""
        return Path(tempfile.mkdtemp(prefix="tab-", dir=self.temp_root()))

    def close(self) -> None:
        """Remove the server's temporary folder (every tab's downloads): the server stops."""
        with self._lock:
            root, self._scratch_root = self._scratch_root, None
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
            _SCRATCH_ROOTS.discard(root)

    @property
    def default_model(self) -> str:
        """The app's model: ``--model``, else the shipped bundle."""
        return self.config.model or DEFAULT_MODEL

    def model_choices(self) -> list[str]:
        """The models a new session may use: the app's first, then the shipped bundle and the
        scene stand-in."""
        return list(dict.fromkeys([self.default_model, DEFAULT_MODEL, STAND_IN]))

    def proposer(self, palette: str, model: str | None = None):
        """The proposer for a palette and a model (loaded once each).

        Args:
            model: one of `model_choices`; None: the app's model. ``default-bundle`` is the
                shipped bundle (the stand-in until it is built), ``scene-stand-in`` the stand-in.
        """
        model = model or self.default_model
        if model not in self.model_choices():
            raise ValueError(f"unknown model {model!r}: choose one of {self.model_choices()}")
        key = palette if model == self.default_model else f"{palette}|{model}"
        with self._lock:
            if key not in self._proposers:
                paints = Palette.preset(palette)
                if model == STAND_IN:
                    self._proposers[key] = SceneProposer(paints)
                else:
                    self._proposers[key] = default_proposer(
                        paints, None if model == DEFAULT_MODEL else model
                    )
            return self._proposers[key]

    def sessions(self) -> list[str]:
        """Names of the session folders in `session_dir`, newest first."""
        root = self.config.session_dir
        if not root.is_dir():
            return []
        found = [p for p in root.iterdir() if (p / "session.sqlite").is_file()]
        return [p.name for p in sorted(found, key=_changed, reverse=True)]

    def session_choices(self) -> list[tuple[str, str]]:
        """(label, folder name) of each session, newest first; the label says when it was last
        changed, its first prompt and its number of turns."""
        return [(label, name) for label, name, _canvas in self.session_cards()]

    def session_cards(self, limit: int = 60) -> list[tuple[str, str, Path | None]]:
        """(label, folder name, image of its canvas now or None) of the newest `limit`
        sessions (read-only: safe while they are open elsewhere)."""
        from cofrida.session import SessionStore

        cards = []
        for name in self.sessions()[:limit]:
            folder = self.config.session_dir / name
            try:
                with SessionStore(folder, readonly=True) as store:
                    turns = store.turns()
            except (OSError, ValueError, sqlite3.Error):
                cards.append((f"{name} (cannot be read)", name, None))
                continue
            when = time.strftime("%d %b %H:%M", time.localtime(_changed(folder)))
            prompt = next((t.prompt for t in turns if t.prompt), None)
            what = f"'{prompt[:40]}'" if prompt else "no prompt yet"
            shown = [t for t in turns if t.state not in ("undone", "cancelled")]
            last = shown[-1] if shown else None
            image = None if last is None else (
                last.canvas_after or last.progress.snapshot or last.canvas_before
            )  # fmt: skip
            cards.append((f"{when} \u00b7 {what} \u00b7 {len(turns)} turns", name, image))
        return cards

    def new_folder(self) -> Path:
        """A fresh, unique session folder path (not created yet)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return self.config.session_dir / f"{stamp}-{uuid.uuid4().hex[:6]}"

    def open(
        self,
        folder: Path,
        palette: str | None = None,
        tab: TabState | None = None,
        model: str | None = None,
    ):
        """Open (or create) the session in `folder` for `tab`.

        A folder is open in one tab at a time. When another tab holds it and is idle (say, the
        person reloaded the page), that tab hands it over; when it is busy, this is refused.

        Args:
            palette: the robot's paints for a new session; a reopened session keeps its own.
            tab: the tab that will hold it.
            model: the model of a new session (`model_choices`; None: the app's); a reopened
                session keeps the one it was recorded with when that is a choice.
        Returns:
            the `Session`.
        Raises:
            ValueError: the folder is busy in another tab, or its session cannot be opened in
                this mode (message says why).
        """
        folder = Path(folder).resolve()
        if not folder.is_relative_to(self.config.session_dir.resolve()):
            raise ValueError("sessions can only be opened from the app's session folder")
        with self._lock:
            holder = self._holders.get(folder)
        if holder is not None and holder is not tab and tab is not None:
            adopted = tab.adopt(holder)  # the arm is painting: follow it here (a reload)
            if adopted is not None:
                with self._lock:
                    self._holders[folder] = tab
                return adopted
        if holder is not None and holder is not tab:
            if not holder.busy.acquire(blocking=False):
                raise ValueError(
                    f"session {folder.name} is busy in another browser tab (planning or "
                    "painting): stop it there first"
                )
            try:
                holder.hand_over()
            finally:
                holder.busy.release()
        with self._lock:
            if folder in self._holders:
                raise ValueError(f"session {folder.name} is being opened in another browser tab")
            self._holders[folder] = tab
        try:
            return self._open_session(folder, palette or self.config.palette, model)
        except BaseException:
            self.release(folder)
            raise

    def release(self, folder: Path) -> None:
        """Mark `folder` as no longer open in any tab."""
        with self._lock:
            self._holders.pop(Path(folder).resolve(), None)

    def _open_session(self, folder: Path, palette: str, model: str | None) -> Session:
        c = self.config
        canvas_px = c.canvas_px
        record_file = folder / "session.sqlite"
        if record_file.is_file():  # a reopened session keeps its palette and canvas size
            from cofrida.session import SessionStore

            with SessionStore(folder, readonly=True) as store:
                record = store.config
            palette = palette_preset_of(record.get("palette", [])) or palette
            canvas_px = int(record.get("canvas", {}).get("width_px", canvas_px))
            recorded = record.get("model")
            model = recorded if recorded in self.model_choices() else None
        session_config = SessionConfig(
            strokes=c.strokes,
            proposals=c.proposals,
            seed=c.seed,
            max_upload_bytes=c.max_upload_bytes,
        )
        if c.simulated:
            return open_sim_session(
                folder,
                session_config,
                c.planner,
                canvas_px=canvas_px,
                speed_factor=c.speed_factor,
                brush=c.brush,
                palette=palette,
                proposer=self.proposer(palette, model),
            )
        from ui.robot_mode import open_robot_session

        return open_robot_session(folder, c, session_config, self.proposer(palette, model))


class TabState:
    """One browser tab: its session, its proposals, and the controls of a running execution.

    Args:
        opener: the app's `SessionOpener`.
    Attributes:
        session: the open `Session`, or None before the tab's first action.
        proposals: the current robot turn's proposals, [(image (3, H, W) 0..1, score), ...].
        needs_resume: the reopened session has a turn that was interrupted while painting.
        stop, pause: set by the Stop / Pause buttons, polled after every stroke.
        busy: held while a step (propose, plan, execute) runs; a second step is refused.
        painting: True while the arm paints (Pause and Stop then also stop the arm).
        handed_over: name of the session another tab took over (reloading the page makes a
            new tab), else None.
        progress: (strokes done, strokes total) of the running execution.
        scratch: a temporary folder for files the browser downloads (GIFs, exports), inside
            the server's temporary folder.
    """

    def __init__(self, opener: SessionOpener) -> None:
        self.opener = opener
        self.session: Session | None = None
        self.proposals: list = []
        self.needs_resume = False
        self.stop = threading.Event()
        self.pause = threading.Event()
        self.busy = threading.Lock()
        self.job = None  # the `ui.execution.PaintJob` painting this tab's session, if any
        self.closed = False  # the browser tab went away
        self.handed_over: str | None = None
        self._scratch: Path | None = None

    @property
    def painting(self) -> bool:
        """Whether the arm paints this tab's session now."""
        return self.job is not None and self.job.alive

    @property
    def progress(self) -> tuple[int, int]:
        """(strokes done, strokes total) of the painting, (0, 0) when none runs."""
        return (0, 0) if self.job is None else self.job.progress

    def adopt(self, holder: TabState) -> Session | None:
        """Take over `holder`'s session while its arm paints, and follow the painting here;
        None (nothing taken) when it is not painting."""
        job = holder.job
        if job is None or holder is self:
            return None
        with job.lock:
            if not job.alive:
                return None
            self.close_session()
            self.session, self.job, job.owner = holder.session, job, self
            self.busy, holder.busy = holder.busy, threading.Lock()  # the job releases it
            self.proposals, self.needs_resume, self.handed_over = holder.proposals, False, None
            name = holder.session.store.folder.name
            holder.session, holder.job, holder.proposals = None, None, []
            holder.handed_over = name
            return self.session

    @property
    def scratch(self) -> Path:
        """The tab's temporary folder, made on first use (most tabs never download anything),
        inside the server's (`SessionOpener.scratch_dir`): removed by `close`, or with the
        server's folder when the server stops (a tab the browser dropped without closing)."""
        if self._scratch is None or not self._scratch.is_dir():
            self._scratch = self.opener.scratch_dir()
        return self._scratch

    def __deepcopy__(self, memo) -> TabState:
        # Gradio deep-copies a State's value when a tab first reads it; the app's factory
        # already made a fresh TabState for that tab, and its locks and session cannot be
        # copied, so the "copy" is the object itself.
        return self

    @property
    def config(self) -> AppConfig:
        return self.opener.config

    def ensure_session(self) -> Session:
        """The tab's session, creating a new one on first use."""
        self.check_held()
        if self.session is None:
            self.open(None)
        return self.session

    def check_held(self) -> None:
        """Raise ValueError if another tab took this tab's session over."""
        if self.handed_over is not None:
            raise ValueError(
                f"session {self.handed_over} was opened in another browser tab: reopen it "
                "here under 'Sessions', or start a new session"
            )

    def hand_over(self) -> None:
        """Give the session up to another tab (the caller holds `busy`)."""
        if self.session is not None:
            name = self.session.store.folder.name
            self.close_session()
            self.proposals, self.handed_over = [], name

    def open(
        self, name: str | None, palette: str | None = None, model: str | None = None
    ) -> Session:
        """Switch to the session folder `name` in `session_dir` (None: a new session).

        A reopened session continues where it stood: a turn interrupted before painting
        becomes current again; one interrupted while painting is left for `needs_resume`.
        """
        folder = self.opener.new_folder() if name is None else self.config.session_dir / name
        if name is not None:
            if Path(name).name != name or not (folder / "session.sqlite").is_file():
                raise ValueError(f"no session named {name!r} in {self.config.session_dir}")
            if self.session is not None and self.session.store.folder.resolve() == folder.resolve():
                return self.session  # already open here
        session = self.opener.open(folder, palette, self, model)
        if self.painting and session is self.session:  # adopted: the arm paints it now
            return session
        self.close_session()
        self.session, self.proposals, self.needs_resume = session, [], False
        self.handed_over = None
        unfinished = session.store.unfinished_turn()
        if unfinished is not None:
            if unfinished.state in ("planned", "executing"):
                self.needs_resume = True
            else:
                session.resume()  # proposed / chosen: current again; human: cancelled
            turn = session.store.turn(unfinished.id)
            if turn.kind == "robot" and turn.state != "cancelled":  # shown again on the page
                from cofrida.session.images import read_png

                self.proposals = [(read_png(p), s) for p, s in turn.proposals]
        return session

    def close_session(self) -> None:
        """Close the tab's session (its folder can then be opened by another tab)."""
        if self.session is not None:
            folder = self.session.store.folder
            self.session.close()
            self.opener.release(folder)
            self.session = None

    def close(self) -> None:
        """Everything the tab held: called when the browser tab goes away. A painting goes on
        (a reloaded tab reattaches to it); its job closes the session when it ends."""
        self.closed = True
        if self.painting and threading.current_thread() is not self.job.thread:
            return
        if self.session is not None and self.busy.locked() and not self.painting:
            self.stop.set()  # proposals or planning stop as soon as they can
            return
        self.close_session()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
