"""Painting the plan from the browser: a progress bar, live canvas updates, pause and stop.

`paint` is a generator: the arm paints in a worker thread (`Session.execute`, every stroke
recorded as it finishes) while the generator yields the canvas a few times a second, so the
robot's strokes appear one after another in the browser. Pause and Stop both ask the arm to
stop after the stroke it is painting (polled between strokes, and `Arm.stop` for an arm that
is waiting or moving):

- Pause keeps the turn open: 'Paint' again continues from the first stroke not painted.
- Stop ends the turn where it stands (`Session.end_turn`): the strokes painted stay (Undo takes
  them back), the rest are dropped.
"""

from __future__ import annotations

import threading
import time

import gradio as gr

from ui import images
from ui.callbacks import PREVIEW_PX, canvas_outputs, current_canvas, user_errors
from ui.state import TabState

FRAME_SECONDS = 0.25  # how often the live canvas is sent to the browser while painting


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
    """Execute the planned (or interrupted) robot turn.

    Yields (editor, region editor, canvas, history, status, replay GIF path or None); the
    last yield has the finished canvas in both editors and the turn's replay animation.
    """
    tab.check_held()
    turn = _paintable_turn(tab)
    if not tab.busy.acquire(blocking=False):
        raise gr.Error("wait: the tab is still busy (another step runs)")
    worker = None
    try:
        tab.stop.clear()
        tab.pause.clear()
        s = tab.session
        tab.progress = (turn.progress.done, turn.progress.total)
        result: dict = {}
        resume = tab.needs_resume

        def on_progress(done: int, total: int) -> None:
            tab.progress = (done, total)

        def should_stop() -> bool:
            return tab.stop.is_set() or tab.pause.is_set()

        def work() -> None:
            try:
                if resume:  # a reopened session's interrupted turn (returns the turn)
                    s.resume(on_progress=on_progress, should_stop=should_stop)
                else:
                    result["report"] = s.execute(on_progress=on_progress, should_stop=should_stop)
            except Exception as e:  # shown to the person below
                result["error"] = e

        worker = threading.Thread(target=work, name="cofrida-ui-paint", daemon=True)
        tab.painting = True
        worker.start()
        skip = gr.skip()
        while worker.is_alive():
            worker.join(FRAME_SECONDS)
            done, total = tab.progress
            if progress is not None and total:
                progress((done, total), desc="painting", unit="strokes")
            status = f"Painting: {done}/{total} strokes."
            if tab.pause.is_set() or tab.stop.is_set():
                status += " Stopping after this stroke..."
            yield skip, skip, _live(tab), skip, status, skip
        tab.needs_resume = False
        if "error" in result:
            raise result["error"]
        report = result.get("report")
        done, total = tab.progress
        if tab.stop.is_set() and s.store.turn(turn.id).state == "executing":
            s.end_turn()
            status = (
                f"Stopped after {done}/{total} strokes; the rest were dropped. "
                "'Undo' takes this turn back."
            )
        elif s.store.turn(turn.id).state == "executing":
            fault = getattr(report, "fault", None)
            why = f"the arm reported: {fault}" if fault else "paused"
            status = (
                f"{why.capitalize()} at {done}/{total} strokes. Press 'Paint' to "
                "continue from the next stroke."
            )
        else:
            tab.proposals = []
            status = f"The robot painted {done} strokes. Your turn!"
        replay = _replay(tab, turn.id)
        yield (*canvas_outputs(tab, status)[:4], status, replay)
    finally:
        if worker is not None and worker.is_alive():  # the browser went away mid-painting
            tab.stop.set()
            worker.join()
        tab.painting = False
        tab.busy.release()


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
    tab.pause.set()
    tab.session.arm.stop()  # interrupts a sim arm's wait at once
    return "Pausing after this stroke..."


def stop(tab: TabState) -> str:
    """Stop whatever runs (proposals, planning, painting) as soon as it can; a paused turn
    is ended where it stands."""
    if tab.busy.locked():
        tab.stop.set()
        if tab.painting:
            tab.session.arm.stop()
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
