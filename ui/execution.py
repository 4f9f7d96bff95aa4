"""Painting the plan from the browser: a progress bar, live canvas updates, pause and stop.

`paint` is a generator: the arm paints in a worker thread (`Session.execute`, every stroke
recorded as it finishes) while the generator yields the canvas a few times a second, so the
robot's strokes appear one after another in the browser. Pause and Stop both ask the arm to
stop after the stroke it is painting (polled between strokes, and `Arm.stop` for an arm that
is waiting or moving):

- Pause keeps the turn open: 'Paint' again continues from the first stroke not painted.
- Stop ends the turn where it stands (`Session.end_turn`): the strokes painted stay (Undo takes
  them back), the rest are dropped.

The painting belongs to the session, not to the browser tab (`PaintJob`): a tab that reloads or
closes leaves the arm painting; the reloaded page reattaches to the session (`ui.state`) and
follows the painting live (`follow`). A job no tab follows closes its session when it ends.
"""

from __future__ import annotations

import threading
import time

import gradio as gr

from ui import images
from ui.callbacks import PREVIEW_PX, canvas_outputs, current_canvas, user_errors
from ui.state import TabState

FRAME_SECONDS = 0.25  # how often the live canvas is sent to the browser while painting


class PaintJob:
    """One execution of a robot turn in a worker thread (`Session.execute`, or `resume` for a
    turn interrupted before the session was opened).

    Args:
        tab: the tab that starts it (it holds ``tab.busy`` already; the job releases it).
        turn_id: the robot turn to paint.
        resume: paint an interrupted turn of a reopened session.
    Attributes:
        owner: the tab following it (changes when a reloaded tab reattaches).
        progress: (strokes done, strokes total).
        stop, pause: set by Stop / Pause, polled after every stroke.
        status: the message for the person once the job ended.
        error: what went wrong, if anything.
    """

    def __init__(self, tab: TabState, turn_id: int, resume: bool) -> None:
        self.owner, self.session, self.turn_id, self.resume = tab, tab.session, turn_id, resume
        turn = self.session.store.turn(turn_id)
        self.progress = (turn.progress.done, turn.progress.total)
        self.stop, self.pause = threading.Event(), threading.Event()
        self.status: str | None = None
        self.error: Exception | None = None
        self.lock = threading.Lock()  # guards `owner` against a reattaching tab
        self._busy = tab.busy
        self.thread = threading.Thread(target=self._run, name="cofrida-ui-paint", daemon=True)

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def start(self) -> None:
        self.thread.start()

    def halt(self) -> None:
        """Stop the arm after its current stroke (and interrupt a sim arm's wait)."""
        self.stop.set()
        self.session.arm.stop()

    def _run(self) -> None:
        s = self.session

        def on_progress(done: int, total: int) -> None:
            self.progress = (done, total)

        def should_stop() -> bool:
            return self.stop.is_set() or self.pause.is_set()

        try:
            if self.resume:  # a reopened session's interrupted turn
                s.resume(on_progress=on_progress, should_stop=should_stop)
                report = None
            else:
                report = s.execute(on_progress=on_progress, should_stop=should_stop)
            done, total = self.progress
            if self.stop.is_set() and s.store.turn(self.turn_id).state == "executing":
                s.end_turn()
                self.status = (
                    f"Stopped after {done}/{total} strokes; the rest were dropped. "
                    "'Undo' takes this turn back."
                )
            elif s.store.turn(self.turn_id).state == "executing":
                fault = getattr(report, "fault", None)
                why = f"the arm reported: {fault}" if fault else "paused"
                self.status = (
                    f"{why.capitalize()} at {done}/{total} strokes. Press 'Paint' to "
                    "continue from the next stroke."
                )
            else:
                self.status = f"The robot painted {done} strokes. Your turn!"
        except Exception as e:  # shown to whoever follows the job
            self.error = e
        finally:
            with self.lock:
                owner = self.owner
                if self.status and "Your turn" in self.status:
                    owner.proposals = []
                self._busy.release()
                if owner.closed and owner.session is s:  # nobody reattached: close it
                    owner.close()


def _paintable_turn(tab: TabState):
    s = tab.session
    turn = None if s is None else s.store.unfinished_turn()
    if turn is None or turn.kind != "robot" or turn.state not in ("planned", "executing"):
        raise gr.Error("nothing to paint: propose, choose and plan first")
    return turn


def _live(tab: TabState):
    """The canvas as the arm leaves it, for the browser (the sim arm's image; a real arm's
    canvas is only known from the camera, captured when the turn ends)."""
    s = tab.session
    image = s.arm.canvas_image() if s.simulated else current_canvas(tab)
    return images.display(image, PREVIEW_PX)


@user_errors
def paint(tab: TabState, progress=None):
    """Execute the planned (or interrupted) robot turn, or follow the one already painting.

    Yields (editor, region editor, canvas, history, status, replay GIF path or None); the
    last yield has the finished canvas in both editors and the turn's replay animation.
    """
    tab.check_held()
    if tab.job is None or not tab.job.alive:
        turn = _paintable_turn(tab)
        if not tab.busy.acquire(blocking=False):
            raise gr.Error("wait: the tab is still busy (another step runs)")
        try:
            tab.stop.clear()
            tab.pause.clear()
            tab.job = PaintJob(tab, turn.id, resume=tab.needs_resume)
            tab.needs_resume = False
            tab.job.start()
        except BaseException:
            tab.job = None
            tab.busy.release()
            raise
    yield from follow(tab, progress)


def follow(tab: TabState, progress=None):
    """Stream the tab's painting job to the browser until it ends; yields as `paint` does.
    A browser that goes away stops the stream, not the arm.

    With no job, one frame that changes nothing: Gradio empties every output of a generator
    that yields nothing, which wiped the canvas and status a page load had just shown (a new
    tab or a reload while the arm is idle, e.g. after Undo).
    """
    job = tab.job
    skip = gr.skip()
    if job is None:
        yield skip, skip, skip, skip, skip, skip
        return
    while job.alive:
        job.thread.join(FRAME_SECONDS)
        if job.owner is not tab:  # another tab reattached to this session
            yield skip, skip, skip, skip, "This session is now followed in another tab.", skip
            return
        done, total = job.progress
        if progress is not None and total:
            progress((done, total), desc="painting", unit="strokes")
        status = f"Painting: {done}/{total} strokes."
        if job.pause.is_set() or job.stop.is_set():
            status += " Stopping after this stroke..."
        yield skip, skip, _live(tab), skip, status, skip
    tab.job = None
    if job.error is not None:
        raise job.error
    replay = _replay(tab, job.turn_id)
    yield (*canvas_outputs(tab, job.status)[:4], job.status, replay)


def _replay(tab: TabState, turn_id: int) -> str | None:
    """A GIF of the turn's saved stroke snapshots (canvas before, strokes, canvas after)."""
    store = tab.session.store
    t = store.turn(turn_id)
    folder = t.canvas_before.parent
    frames = [p for p in store.snapshots() if p.parent == folder]
    gif = tab.scratch / f"replay_turn_{turn_id}_{time.time_ns()}.gif"
    gif = images.replay_gif(frames, gif, width_px=PREVIEW_PX)
    return None if gif is None else str(gif)


def pause(tab: TabState) -> str:
    """Ask the painting arm to pause after its current stroke."""
    if not tab.painting:
        return "Nothing is being painted."
    tab.job.pause.set()
    tab.session.arm.stop()  # interrupts a sim arm's wait at once
    return "Pausing after this stroke..."


def stop(tab: TabState) -> str:
    """Stop whatever runs (proposals, planning, painting) as soon as it can; a paused turn
    is ended where it stands."""
    if tab.painting:
        tab.job.halt()
        return "Stopping..."
    if tab.busy.locked():
        tab.stop.set()
        return "Stopping..."
    s = tab.session
    turn = None if s is None else s.store.unfinished_turn()
    if turn is None or turn.state != "executing":
        return "Nothing is running."
    if tab.needs_resume:
        return "This turn was interrupted before this session was opened: press 'Paint' first."
    s.end_turn()
    done, total = turn.progress.done, turn.progress.total
    return f"Ended the paused turn at {done}/{total} strokes. 'Undo' takes it back."
