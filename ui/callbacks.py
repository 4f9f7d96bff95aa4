"""What each button of the app does: thin steps over `cofrida.Session`, one function each.

Every callback takes the tab's `TabState` first and returns plain values (images as uint8
arrays, text as Markdown); `ui.app` wires them to components. A person's mistake (an empty
prompt, a corrupt upload, a step out of order) raises `gradio.Error` with a message saying
what to do; so does any unexpected failure, so the page never dies.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import shutil
import traceback
from contextlib import contextmanager
from pathlib import Path

import gradio as gr
import numpy as np
import torch

from cofrida.session.inputs import check_prompt
from planner import Cancelled
from sim import Canvas
from ui import images
from ui.state import TabState

log = logging.getLogger("cofrida.ui")

EDITOR_PX = 512  # width of the drawing canvas in the browser (the session's canvas is smaller)
PREVIEW_PX = 384  # width of the proposal, target and plan images shown


def _as_message(fn_name: str, e: Exception) -> gr.Error:
    if isinstance(e, gr.Error):
        return e
    if isinstance(e, ValueError | PermissionError | FileNotFoundError):
        return gr.Error(str(e), print_exception=False)
    if isinstance(e, Cancelled | InterruptedError):
        return gr.Error(f"stopped: {e}", title="Stopped", print_exception=False)
    log.error("callback %s failed:\n%s", fn_name, traceback.format_exc())
    return gr.Error(f"something went wrong: {type(e).__name__}: {e}")


def user_errors(fn):
    """Turn every failure of a callback (a function or a generator) into a `gradio.Error`
    message, so the page never dies.

    ValueError, PermissionError and planner cancellations are the person's to fix: their text
    is shown as is. Anything else is logged with its traceback and shown in one line.
    """
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as e:
                raise _as_message(fn.__name__, e) from None

        return generator

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            raise _as_message(fn.__name__, e) from None

    return wrapper


@contextmanager
def one_step(tab: TabState, what: str):
    """Run one long step at a time per tab; clears the Stop/Pause requests before it."""
    if not tab.busy.acquire(blocking=False):
        raise gr.Error(f"wait: the tab is still busy ({what} asked for while another step runs)")
    try:
        tab.check_held()
        tab.stop.clear()
        tab.pause.clear()
        yield
    finally:
        tab.busy.release()


def canvas_geometry(tab: TabState) -> Canvas:
    """The tab's canvas in meters and pixels (its session's, or what a new one will have)."""
    if tab.session is not None:
        return tab.session.planner.canvas
    if tab.config.simulated:
        from robot.arms.sim import SimArmConfig

        ws = SimArmConfig().workspace
    else:
        from ui.robot_mode import device_configs

        ws = device_configs(tab.config.arm_options, tab.config.camera_options)[0].workspace
    return Canvas(ws.canvas_width_m, ws.canvas_height_m, tab.config.canvas_px)


def canvas_size(tab: TabState) -> tuple[int, int]:
    """(height, width) px of the tab's canvas."""
    return canvas_geometry(tab).size_px


def current_canvas(tab: TabState) -> torch.Tensor:
    """The canvas as the tab last saw it ((3, H, W) 0..1; blank paper before a session)."""
    s = tab.session
    if s is not None and s.canvas is not None:
        return s.canvas
    return torch.ones(3, *canvas_size(tab))


# ---- outputs shared by many steps ---------------------------------------------------------------
def history(tab: TabState) -> list[tuple[np.ndarray, str]]:
    """Gallery items of the session's turns: (thumbnail of the canvas after it, caption)."""
    if tab.session is None:
        return []
    items = []
    for t in tab.session.store.turns():
        shown = t.canvas_after or t.progress.snapshot or t.canvas_before
        if t.state == "undone":  # the canvas it started from: what the canvas is again
            shown = t.canvas_before
        state = "" if t.state == "done" else f"{t.state.upper()} "
        what = f"robot {short(t.prompt or '', 22)!r}" if t.kind == "robot" else "person"
        strokes = f" {t.progress.done}/{t.progress.total}" if t.state == "executing" else ""
        items.append((images.thumbnail(shown), f"{t.id}. {state}{what}{strokes}"))
    return items


def short(text: str, chars: int) -> str:
    """`text` cut to `chars` characters with an ellipsis."""
    return text if len(text) <= chars else text[: chars - 1].rstrip() + "\u2026"


def canvas_outputs(tab: TabState, status: str) -> tuple:
    """(editor value, region editor value, canvas image, history, status) after the canvas
    changed: both editors show the new canvas with no marks on it."""
    canvas = current_canvas(tab)
    return (
        images.editor_value(canvas, EDITOR_PX),
        images.editor_value(canvas, EDITOR_PX),
        images.display(canvas, PREVIEW_PX),
        history(tab),
        status,
    )


def session_banner(tab: TabState) -> str:
    """One line naming the session, the model and the mode."""
    c = tab.config
    mode = "simulation (you paint here, the sim arm paints)" if c.simulated else "real robot"
    if tab.session is None:
        return f"**Mode:** {mode}. A new session starts with your first action."
    s = tab.session
    palette = ", ".join(s.planner.palette.names)
    return (
        f"**Session** `{s.store.folder.name}` | **mode:** {mode} | **model:** `{s.model_name}` "
        f"| **paints:** {palette}"
    )


# ---- the canvas -------------------------------------------------------------------------------
@user_errors
def load(tab: TabState, remembered: str | None = None) -> tuple:
    """Page load: the session this browser worked on last (`remembered`, a session folder
    name; reopened, and followed live while the arm paints it), else a blank canvas.

    Returns (editor, region editor, canvas, history, status, session choices, proposals).
    """
    status = "Paint on the canvas, then press 'Done: save my turn' (or type a prompt)."
    if remembered and tab.session is None:
        try:
            s = tab.open(remembered)
        except ValueError as e:
            status = f"Could not reopen your last session: {e}"
        else:
            turns = len(s.store.turns())
            status = f"Welcome back: your session is open again ({turns} turns)."
            if tab.painting:
                status = "Welcome back: the robot is still painting your session."
            elif tab.needs_resume:
                t = s.store.unfinished_turn()
                status = (
                    f"Welcome back. Turn {t.id} was interrupted after {t.progress.done}/"
                    f"{t.progress.total} strokes: press 'Paint' to finish it."
                )
    return (*canvas_outputs(tab, status), tab.opener.session_choices(), _gallery(tab))


def session_gallery(tab: TabState) -> list[tuple[np.ndarray, str]]:
    """The sessions as gallery items (thumbnail of the canvas, label), newest first; the
    folder names, in that order, are kept in ``tab.listed`` for a click to open one."""
    cards = tab.opener.session_cards()
    tab.listed = [name for _, name, _ in cards]
    blank = torch.ones(3, 3, 4)
    return [
        (images.thumbnail(image if image is not None and image.exists() else blank), label)
        for label, _, image in cards
    ]


def open_listed(tab: TabState, index: int, palette=None) -> tuple:
    """Open the session the person clicked in the sessions gallery (`open_session`)."""
    listed = getattr(tab, "listed", [])
    if not 0 <= index < len(listed):
        raise gr.Error("that session is no longer listed: reload the page")
    return open_session(tab, listed[index], palette)


def session_name(tab: TabState) -> str | None:
    """The tab's session folder name (the browser remembers it for a reload), or None."""
    return None if tab.session is None else tab.session.store.folder.name


@user_errors
def submit_drawing(tab: TabState, editor_value) -> tuple:
    """The person's turn in simulation: what they drew in the editor becomes the canvas."""
    if not tab.config.simulated:
        raise gr.Error("with the real robot, paint on the paper and press 'Capture the canvas'")
    drawing = images.drawing_from_editor(editor_value, canvas_size(tab))
    if drawing is None:
        raise gr.Error("nothing drawn yet: paint on the canvas with the brush, then press this")
    with one_step(tab, "your turn"):
        s = tab.ensure_session()
        turn = s.human_turn(image=drawing)
    return canvas_outputs(tab, f"Your turn {turn} is saved. Now type a prompt for the robot.")


@user_errors
def capture_turn(tab: TabState) -> tuple:
    """The person's turn with the real robot: capture what they painted on the paper."""
    with one_step(tab, "capture"):
        s = tab.ensure_session()
        turn = s.human_turn()
    return canvas_outputs(tab, f"Captured the canvas as turn {turn}.")


@user_errors
def upload_canvas(tab: TabState, file_path) -> tuple:
    """Start from an uploaded photo of a canvas (PNG/JPEG, already cropped to the canvas)."""
    if not file_path:
        raise gr.Error("choose an image file to upload first")
    if not tab.config.simulated:
        raise gr.Error("with the real robot the canvas comes from the camera, not an upload")
    path = Path(file_path)
    size, limit = path.stat().st_size, tab.config.max_upload_bytes
    if size > limit:  # refused before reading it
        raise gr.Error(
            f"the uploaded file is {size / 2**20:.1f} MB; the limit is {limit / 2**20:.0f} MB"
        )
    with one_step(tab, "upload"):
        s = tab.ensure_session()
        turn = s.set_canvas_from_upload(path.read_bytes())
    return canvas_outputs(tab, f"The uploaded photo is the canvas now (turn {turn}).")


# ---- proposals, choice, composite ---------------------------------------------------------------
def _gallery(tab: TabState) -> list[tuple[np.ndarray, str]]:
    items = []
    scored = any(score is not None for _, score in tab.proposals)
    for k, (img, _score) in enumerate(tab.proposals):
        colour = images.MONTAGE_NAMES[k] if k < len(images.MONTAGE_NAMES) else "-"
        rank = " best match" if k == 0 and scored else ""
        items.append((images.display(img, PREVIEW_PX), f"{k + 1}{rank} ({colour})"))
    return items


@user_errors
def propose(tab: TabState, prompt, region_value, n, progress=None) -> tuple:
    """Proposals for the prompt, ranked by the scorer when there is one.

    Returns (gallery items, montage editor value, status, target, plan overlay, plan
    animation, plan summary, plan files): the last five are cleared, they belonged to the
    previous proposals.
    """
    prompt = check_prompt(prompt or "")  # before anything else: an empty prompt costs nothing
    with one_step(tab, "proposals"):
        s = tab.ensure_session()
        region = images.marks_mask(region_value, s.size_px)

        def callback(done: int, total: int) -> None:
            if progress is not None:
                progress((done, total), desc="proposing")

        tab.proposals = s.propose(
            prompt,
            n=int(n or s.config.proposals),
            region=region,
            callback=callback,
            should_stop=tab.stop.is_set,
        )
        tab.needs_resume = False  # the new turn is the session's current one
    where = "inside the region you marked" if region is not None else "anywhere"
    status = (
        f"{len(tab.proposals)} proposals for {prompt!r} (the robot may paint {where}). "
        "Click one to choose it, or combine several below."
    )
    return (_gallery(tab), montage_editor(tab, 1), status, *CLEARED_PLAN)


CLEARED_PLAN = (None, None, None, "", None)  # target, overlay, animation, summary, plan files


def montage_editor(tab: TabState, base) -> dict | None:
    """The photomontage editor's value: proposal `base` (1-based) with no marks."""
    if not tab.proposals:
        return None
    k = min(max(int(base or 1), 1), len(tab.proposals)) - 1
    return images.editor_value(tab.proposals[k][0], EDITOR_PX)


def check_not_waiting_to_paint(tab: TabState) -> None:
    """Refuse a new choice or plan for a reopened turn that was planned or half painted: its
    plan is what 'Paint' paints (new proposals start a new turn)."""
    if tab.needs_resume and tab.session is not None:
        t = tab.session.store.unfinished_turn()
        if t is not None and t.state in ("planned", "executing"):
            raise gr.Error(
                f"turn {t.id} is planned ({t.progress.done}/{t.progress.total} strokes "
                "painted): press 'Paint' to paint it, or 'Propose' for new proposals"
            )


@user_errors
def choose(tab: TabState, index: int) -> tuple:
    """The person picks proposal `index` (0-based, best first). Returns (target, status)."""
    with one_step(tab, "choice"):
        check_not_waiting_to_paint(tab)
        if not tab.proposals:
            raise gr.Error("no proposals yet: type a prompt and press 'Propose'")
        target = tab.session.choose(int(index))
    return images.display(target, PREVIEW_PX), f"Proposal {int(index) + 1} is the target. Plan it."


@user_errors
def combine(tab: TabState, base, montage_value) -> tuple:
    """The photomontage: the marks over proposal `base` (1-based) pick other proposals by
    colour; the composite becomes the target. Returns (target, status)."""
    with one_step(tab, "composite"):
        check_not_waiting_to_paint(tab)
        if not tab.proposals:
            raise gr.Error("no proposals yet: type a prompt and press 'Propose'")
        composite, used = images.montage(
            [img for img, _ in tab.proposals], int(base or 1) - 1, montage_value
        )
        if not used:
            raise gr.Error(
                "nothing to combine: brush over the base proposal with the colour of another "
                "proposal (shown in its caption) where you want that proposal's content"
            )
        target = tab.session.choose(composite)
    parts = ", ".join(str(k + 1) for k in used)
    return images.display(target, PREVIEW_PX), (
        f"The composite (proposal {int(base or 1)} with parts of {parts}) is the target. Plan it."
    )


# ---- plan ---------------------------------------------------------------------------------------
@user_errors
def plan(tab: TabState, strokes, progress=None) -> tuple:
    """Plan the robot's strokes towards the target.

    Returns (stroke map image, animation GIF path, plan summary Markdown, status, the plan's
    SVG and G-code files).
    """
    with one_step(tab, "planning"):
        check_not_waiting_to_paint(tab)
        if tab.session is None or not tab.proposals:
            raise gr.Error("choose a proposal (or a composite) before planning")
        s = tab.session

        stages = {"coarse": 0, "fine": s.planner.config.coarse_steps}
        steps = s.planner.config.coarse_steps + s.planner.config.fine_steps

        def on_progress(info: dict) -> None:  # one bar over both stages
            if progress is not None and info.get("phase") in stages and steps:
                done = min(steps, stages[info["phase"]] + info["step"])
                progress((done, steps), desc="planning the strokes")

        the_plan, report = s.plan(
            strokes=int(strokes or s.config.strokes),
            on_progress=on_progress,
            should_stop=tab.stop.is_set,
        )
        turn = s.store.unfinished_turn()
        overlay, gif, files = plan_view(tab, the_plan, s.canvas, turn.id if turn else 0)
    status = "Planned. Press 'Paint' to let the robot paint it."
    return overlay, gif, plan_summary(len(the_plan), report.to_dict()), status, files


def plan_view(tab: TabState, the_plan, canvas: torch.Tensor, turn_id: int) -> tuple:
    """(stroke map image, animation GIF path, [SVG path, G-code path]) of a plan over `canvas`
    ((3, H, W) 0..1, the canvas the plan starts from)."""
    gif = tab.scratch / f"plan_turn_{turn_id}_{len(the_plan)}.gif"
    _final, gif = images.plan_preview(the_plan, canvas, gif, width_px=PREVIEW_PX)
    overlay = images.stroke_overlay(canvas, the_plan, PREVIEW_PX)
    return overlay, str(gif), plan_files(tab, the_plan, turn_id)


def plan_summary(n_strokes: int, report: dict) -> str:
    """The plan's summary in Markdown from its report (`planner.PlanReport.to_dict()`)."""
    minutes = report["estimated_seconds"] / 60
    loss_canvas, loss_final = report["loss_canvas"], report["loss_final"]
    closer = 100 * (1 - loss_final / loss_canvas) if loss_canvas else 0.0
    return (
        f"**{n_strokes} strokes**, {report['colours_used']} paints, {report['paint_changes']} "
        f"paint changes; the arm needs about **{minutes:.1f} min** "
        f"(planned in {report['seconds']:.1f} s). The painting gets **{closer:.0f}% closer** to "
        f"the target; your marks kept: {100 * report['preserved_fraction']:.0f}%. "
        "Download the plan as SVG or G-code below."
    )


def turn_view(tab: TabState) -> tuple:
    """What the page showed of the session's current robot turn, rebuilt from its record (a
    reload, a reopened session): (target, plan overlay, plan animation, plan summary, plan
    files); empty parts where the turn has no target or plan yet, all empty when there is no
    unfinished robot turn."""
    from cofrida.session.images import read_png
    from planner import Plan

    s = tab.session
    t = None if s is None else s.store.unfinished_turn()
    if t is None or t.kind != "robot" or t.target is None:
        return CLEARED_PLAN
    try:
        target = images.display(read_png(t.target), PREVIEW_PX)
        if t.plan is None:
            return (target, None, None, "", None)
        the_plan = Plan.from_json(t.plan)
        overlay, gif, files = plan_view(tab, the_plan, read_png(t.canvas_before), t.id)
    except (OSError, ValueError) as e:  # a record that cannot be read: the page goes on
        log.warning("cannot show turn %s of %s again: %s", t.id, s.store.folder, e)
        return CLEARED_PLAN
    reports = [e["data"] for e in s.store.events(t.id) if e["event"] == "plan"]
    summary = plan_summary(len(the_plan), reports[-1]) if reports else ""
    return (target, overlay, gif, summary or f"**{len(the_plan)} strokes** planned.", files)


def plan_files(tab: TabState, the_plan, turn_id: int) -> list[str]:
    """The plan as ``plan_turn_N.svg`` and ``plan_turn_N.gcode`` (GRBL) to download."""
    from planner import GcodeConfig

    folder = tab.scratch / f"plan_turn_{turn_id}"
    folder.mkdir(exist_ok=True)
    svg, gcode = folder / f"plan_turn_{turn_id}.svg", folder / f"plan_turn_{turn_id}.gcode"
    svg.write_text(the_plan.to_svg())
    gcode.write_text(the_plan.to_gcode(GcodeConfig()))
    return [str(svg), str(gcode)]


# ---- undo, export, sessions ---------------------------------------------------------------------
@user_errors
def undo(tab: TabState) -> tuple:
    """Take back the robot's last turn (simulation only)."""
    tab.check_held()
    if tab.session is None:
        raise gr.Error("nothing to undo yet")
    with one_step(tab, "undo"):
        tab.session.undo()
        tab.proposals = []
    return canvas_outputs(tab, "The robot's last turn is undone.")


def cleared_after_undo() -> tuple:
    """(replay, proposals, target, overlay, animation, plan summary, plan files) emptied:
    they showed the turn that was undone."""
    return (None, [], *CLEARED_PLAN)


@user_errors
def export(tab: TabState) -> tuple:
    """Export the session (images, time-lapse GIF, session.json) as a zip to download."""
    tab.check_held()
    if tab.session is None:
        raise gr.Error("nothing to export yet: paint something first")
    folder = tab.scratch / "export" / tab.session.store.folder.name
    if folder.exists():
        shutil.rmtree(folder)
    tab.session.export(folder)
    archive = shutil.make_archive(str(folder), "zip", root_dir=folder)
    size_mb = os.path.getsize(archive) / 2**20
    return archive, f"Exported the session ({size_mb:.1f} MB zip)."


@user_errors
def open_session(tab: TabState, name, palette=None, model=None) -> tuple:
    """Switch the tab to session `name` (None or "": a new one with `palette` and `model`).

    Returns (editor, region editor, canvas, history, status, proposals gallery, session list,
    brush of the editor).
    """
    if tab.busy.locked():
        raise gr.Error("wait: the robot is busy; stop it before switching sessions")
    s = tab.open(name or None, palette, model or None)
    if tab.needs_resume:
        t = s.store.unfinished_turn()
        status = (
            f"Reopened. Turn {t.id} was interrupted after {t.progress.done}/"
            f"{t.progress.total} strokes: press 'Paint' to finish it."
        )
    else:
        status = "Reopened the session." if name else "A new session."
    return (
        *canvas_outputs(tab, status),
        _gallery(tab),
        tab.opener.session_choices(),
        person_brush(tab),
    )


def person_brush(tab: TabState) -> gr.Brush:
    """The editor's brush: only the robot's paints (darkest first chosen), sized like the
    robot's brush at mid pressure on the `EDITOR_PX` wide canvas (radius in px)."""
    from sim.brush import Brush
    from sim.palette import Palette

    s = tab.session
    palette = s.planner.palette if s is not None else Palette.preset(tab.config.palette)
    brush = s.planner.brush if s is not None else Brush.preset(tab.config.brush)
    mid_width_m = 0.5 * (brush.min_width_m + brush.max_width_m)
    radius_px = max(1, round(0.5 * mid_width_m / canvas_geometry(tab).width_m * EDITOR_PX))
    colours = [images.hex_colour(c) for c in palette.colors.tolist()]
    darkest = colours[int(palette.colors.sum(1).argmin())]
    return gr.Brush(
        colors=colours, default_color=darkest, default_size=radius_px, color_mode="fixed"
    )
