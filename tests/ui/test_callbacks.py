"""The app's callbacks, called as the browser would call them: messages a person sees, and a
full co-painting turn through the real session, planner and sim arm."""

from __future__ import annotations

import io
import itertools
import threading
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

from cofrida.session.images import read_png
from tests.ui.conftest import STROKES, line_drawing, small_config
from ui import callbacks as cb
from ui import execution
from ui.state import SessionOpener, TabState

PROMPT = "a sunny meadow with a red house"


def run_paint(tab: TabState) -> list[tuple]:
    """Everything the Paint button's generator yields, in order."""
    return list(execution.paint(tab))


def painted_turn(tab: TabState) -> tuple:
    """The person draws, the robot proposes, the first proposal is planned. Returns the
    outputs of `load`."""
    loaded = cb.load(tab)
    cb.submit_drawing(tab, line_drawing(loaded[0]))
    cb.propose(tab, PROMPT, None, 2)
    cb.choose(tab, 0)
    cb.plan(tab, STROKES)
    return loaded


# ---- clear messages ------------------------------------------------------------------------
@pytest.mark.parametrize("prompt", ["", "   \n\t", None])
def test_an_empty_prompt_says_what_to_type_and_opens_nothing(tab, prompt):
    with pytest.raises(gr.Error, match="the prompt is empty: type what the painting"):
        cb.propose(tab, prompt, None, 2)
    assert tab.session is None  # refused before any session was created


def test_a_too_long_prompt_is_refused_with_the_limit(tab):
    with pytest.raises(gr.Error, match="characters long; keep it under 500"):
        cb.propose(tab, "paint " * 200, None, 2)


def test_a_corrupt_upload_says_it_is_corrupt(tab, tmp_path):
    png = io.BytesIO()
    Image.new("RGB", (200, 150), "white").save(png, format="PNG")
    broken = tmp_path / "broken.png"
    broken.write_bytes(png.getvalue()[:80])  # a truncated PNG
    with pytest.raises(gr.Error, match="corrupt or truncated"):
        cb.upload_canvas(tab, str(broken))
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    with pytest.raises(gr.Error, match="not an image that can be read"):
        cb.upload_canvas(tab, str(text))


def test_a_too_large_upload_is_refused_before_it_is_read(tmp_path, opener):
    small = SessionOpener(small_config(tmp_path, max_upload_bytes=1024), opener._proposers)
    tab = TabState(small)
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (300, 300, 3), np.uint8)).save(big)
    with pytest.raises(gr.Error, match=r"the uploaded file is 0\.\d MB; the limit is 0 MB"):
        cb.upload_canvas(tab, str(big))
    assert tab.session is None
    tab.close()


def test_a_tab_makes_its_temporary_folder_only_when_it_needs_one(opener, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    idle = TabState(opener)  # a page opened and left: nothing on disk
    idle.close()
    assert not list(tmp_path.glob("cofrida-ui-*"))
    tab, dropped = TabState(opener), TabState(opener)
    (tab.scratch / "replay.gif").write_bytes(b"GIF89a")  # what a download writes
    (dropped.scratch / "plan.gif").write_bytes(b"GIF89a")
    server_folders = list(tmp_path.glob("cofrida-ui-*"))  # one for the server, tabs inside
    assert len(server_folders) == 1
    assert sorted(p.name for p in server_folders[0].glob("*/*.gif")) == ["plan.gif", "replay.gif"]
    tab.close()
    assert [p.name for p in server_folders[0].glob("*/*.gif")] == ["plan.gif"]
    opener.close()  # the server stops; the browser never closed the other tab
    assert not list(tmp_path.glob("cofrida-ui-*"))


def test_a_good_upload_becomes_the_canvas(tab, tmp_path):
    photo = tmp_path / "canvas.jpg"
    Image.new("RGB", (400, 300), (200, 40, 40)).save(photo, quality=95)
    _editor, _region, canvas, history, status = cb.upload_canvas(tab, str(photo))
    assert "uploaded photo is the canvas" in status
    assert canvas.shape[2] == 3 and abs(int(canvas[50, 50, 0]) - 200) <= 3
    assert len(history) == 1 and "person" in history[0][1]


def test_steps_out_of_order_say_what_comes_first(tab):
    with pytest.raises(gr.Error, match="nothing drawn yet"):
        cb.submit_drawing(tab, cb.load(tab)[0])  # the editor as it came, no marks
    with pytest.raises(gr.Error, match="no proposals yet"):
        cb.choose(tab, 0)
    with pytest.raises(gr.Error, match="choose a proposal"):
        cb.plan(tab, 10)
    with pytest.raises(gr.Error, match="nothing to paint: propose, choose and plan first"):
        run_paint(tab)
    with pytest.raises(gr.Error, match="choose an image file"):
        cb.upload_canvas(tab, None)


def test_an_unexpected_failure_is_a_message_not_a_dead_page():
    @cb.user_errors
    def broken():
        raise KeyError("lost")

    with pytest.raises(gr.Error, match="something went wrong: KeyError"):
        broken()


# ---- a whole turn -------------------------------------------------------------------------
def test_a_full_turn_through_the_callbacks_changes_the_canvas(tab):
    loaded = cb.load(tab)
    blank = loaded[2]
    assert (blank == 255).all()  # paper before anything
    editor, _region, canvas, history, status = cb.submit_drawing(tab, line_drawing(loaded[0]))
    assert "saved" in status and len(history) == 1
    person = canvas.astype(int)
    assert (person.sum(-1) < 150).any(), "the person's dark line is on the canvas"

    gallery, montage, status, *stale = cb.propose(tab, PROMPT, None, 2)
    assert [caption for _, caption in gallery] == ["1 best match (red)", "2 (green)"]
    assert stale == [None, None, None, "", None]  # no target or plan of older proposals
    assert montage["background"].shape == editor["background"].shape
    _target, status = cb.choose(tab, 1)
    assert "Proposal 2 is the target" in status

    bar = []  # the progress bar: one bar over both planning stages, never restarting
    overlay, gif, summary, status, files = cb.plan(
        tab, STROKES, lambda value, desc=None: bar.append(value)
    )
    assert bar and all(a[0] <= b[0] for a, b in itertools.pairwise(bar))
    assert bar[-1][0] == bar[-1][1]
    assert f"**{STROKES} strokes**" in summary and "min" in summary
    assert "% closer** to the target" in summary
    svg, gcode = (Path(f).read_text() for f in files)  # the plan, to download
    assert svg.startswith("<svg") or "<svg" in svg[:200]
    assert "G1" in gcode or "G0" in gcode
    assert overlay.shape[1] == cb.PREVIEW_PX
    with Image.open(gif) as anim:
        assert anim.n_frames > 2  # the plan, animated

    frames = run_paint(tab)
    assert len(frames) >= 2  # live updates, then the finished turn
    _editor, _region, canvas, history, status, replay = frames[-1]
    assert f"painted {STROKES} strokes" in status
    diff = np.abs(canvas.astype(int) - person).sum(-1)
    assert (diff > 30).mean() > 0.01, "the robot's strokes changed the canvas"
    assert [h[1].split(".")[0] for h in history] == ["1", "2"]
    assert replay is not None
    turn = tab.session.store.turn(2)
    assert (turn.state, turn.chosen, turn.progress.done) == ("done", 1, STROKES)


def read_png_turn(tab: TabState, turn_id: int) -> torch.Tensor:
    return read_png(tab.session.store.turn(turn_id).canvas_after)


def test_the_region_limits_where_proposals_change_the_canvas(tab):
    loaded = cb.load(tab)
    cb.submit_drawing(tab, line_drawing(loaded[0]))
    region = loaded[1]
    h, w = region["background"].shape[:2]
    marks = np.zeros((h, w, 4), np.uint8)
    marks[: h // 2, w // 2 :] = (255, 0, 255, 255)  # top right quarter only
    cb.propose(tab, PROMPT, {**region, "layers": [marks]}, 2)
    canvas = tab.session.canvas
    ch, cw = canvas.shape[1:]
    for image, _score in tab.proposals:
        outside = torch.ones(ch, cw, dtype=torch.bool)
        outside[: ch // 2 + 1, cw // 2 - 1 :] = False  # the region, with a margin
        assert torch.equal(image[:, outside], canvas[:, outside])


def test_photomontage_takes_the_brushed_parts_from_another_proposal(tab):
    cb.load(tab)
    cb.propose(tab, PROMPT, None, 2)
    montage = cb.montage_editor(tab, 1)
    h, w = montage["background"].shape[:2]
    marks = np.zeros((h, w, 4), np.uint8)
    marks[:, : w // 2] = (*cb.images.MONTAGE_COLOURS[1], 255)  # left half from proposal 2
    with pytest.raises(gr.Error, match="nothing to combine"):
        cb.combine(tab, 1, {**montage, "layers": []})
    _target, status = cb.combine(tab, 1, {**montage, "layers": [marks]})
    assert "proposal 1 with parts of 2" in status
    stored = read_png(tab.session.store.unfinished_turn().target)
    (p1, _), (p2, _) = tab.proposals
    half = stored.shape[2] // 2
    assert torch.allclose(stored[:, :, : half - 1], p2[:, :, : half - 1], atol=1 / 255)
    assert torch.allclose(stored[:, :, half + 1 :], p1[:, :, half + 1 :], atol=1 / 255)
    wrong = marks.copy()
    wrong[..., :3] = cb.images.MONTAGE_COLOURS[5]  # proposal 6 does not exist
    with pytest.raises(gr.Error, match="only 2 proposals"):
        cb.combine(tab, 1, {**montage, "layers": [wrong]})


# ---- pause, stop, undo, sessions, export --------------------------------------------------
def test_pause_then_paint_again_finishes_and_stop_ends_the_turn(tmp_path, opener):
    slow = SessionOpener(small_config(tmp_path, speed_factor=20.0), opener._proposers)
    tab = TabState(slow)
    painted_turn(tab)
    frames = execution.paint(tab)
    next(frames)  # painting has started
    while tab.progress[0] < 2:
        next(frames)
    assert execution.pause(tab) == "Pausing after this stroke..."
    last = list(frames)[-1]
    assert "Paused at" in last[4]
    turn = tab.session.store.unfinished_turn()
    assert turn.state == "executing" and 2 <= turn.progress.done < STROKES

    frames = execution.paint(tab)  # continue from the next stroke
    next(frames)
    done_before = turn.progress.done
    while tab.progress[0] < done_before + 2:
        next(frames)
    threading.Thread(target=execution.stop, args=(tab,)).start()
    last = list(frames)[-1]
    assert "Stopped after" in last[4]
    turn = tab.session.store.turn(turn.id)
    assert turn.state == "done" and done_before + 2 <= turn.progress.done < STROKES
    painted = tab.session.store.painted_strokes(turn.id)
    assert painted == list(range(turn.progress.done))  # none twice, none lost
    assert execution.stop(tab) == "Nothing is running."

    *_, status = cb.undo(tab)
    assert "undone" in status
    assert torch.equal(tab.session.canvas, read_png(turn.canvas_before))
    tab.close()


def test_a_session_reopens_in_a_new_tab_which_takes_it_over(tab, opener):
    painted_turn(tab)
    run_paint(tab)
    name = tab.session.store.folder.name
    other = TabState(opener)  # the same person after reloading the page
    # while the first tab plans or paints, it keeps its session
    with tab.busy, pytest.raises(gr.Error, match="busy in another browser tab"):
        cb.open_session(other, name)
    outs = cb.open_session(other, name)
    *_, history, status, _gallery, sessions, brush = outs
    assert status == "Reopened the session." and name in [value for _, value in sessions]
    (label, _), *_ = sessions  # listed by when, its first prompt and its turns
    assert f"'{PROMPT}' \u00b7 2 turns" in label
    assert len(history) == 2 and torch.equal(other.session.canvas, read_png_turn(other, 2))
    assert isinstance(brush, gr.Brush) and len(brush.colors) == 8
    assert tab.session is None
    with pytest.raises(gr.Error, match="was opened in another browser tab: reopen it here"):
        cb.propose(tab, PROMPT, None, 2)
    with pytest.raises(gr.Error, match="no session named"):
        cb.open_session(other, "../elsewhere")
    ((thumb, caption),) = cb.session_gallery(other)  # a thumbnail, the time, the first prompt
    assert thumb.shape[1] == 160 and f"'{PROMPT}'" in caption
    assert cb.open_listed(other, 0)[4] == "Reopened the session."
    other.close()


def test_export_gives_a_zip_with_the_record_and_the_timelapse(tab):
    painted_turn(tab)
    run_paint(tab)
    archive, status = cb.export(tab)
    assert "Exported" in status
    names = zipfile.ZipFile(archive).namelist()
    assert "session.json" in names and "timelapse.gif" in names


def test_the_model_is_chosen_per_new_session_and_kept_on_reopening(tmp_path):
    """Settings > Model: a new session proposes with the chosen model (the shipped bundle or
    the stand-in), records it, and a reopened session keeps it."""
    opener = SessionOpener(small_config(tmp_path))  # nothing injected: the real default
    assert opener.model_choices() == ["default-bundle", "scene-stand-in"]
    names = {}
    for model in opener.model_choices():
        tab = TabState(opener)
        cb.open_session(tab, None, "acrylic", model)
        images = tab.session.propose(PROMPT, n=1)
        assert images[0][0].shape[0] == 3
        names[model] = tab.session.store.folder.name
        assert tab.session.store.config["model"] == model
        tab.close()
    tab = TabState(opener)
    cb.open_session(tab, names["scene-stand-in"])  # the app's default is the bundle
    assert tab.session.model_name == "scene-stand-in"
    with pytest.raises(gr.Error, match="unknown model 'nope': choose one of"):
        cb.open_session(tab, None, "acrylic", "nope")
    tab.close()


def test_a_reload_while_painting_reattaches_and_the_arm_keeps_painting(tmp_path, opener):
    slow = SessionOpener(small_config(tmp_path, speed_factor=20.0), opener._proposers)
    tab = TabState(slow)
    painted_turn(tab)
    name = cb.session_name(tab)
    frames = execution.paint(tab)
    while tab.progress[0] < 2:
        next(frames)
    frames.close()  # the browser reloads: its stream ends...
    tab.close()  # ...and Gradio drops the tab's state
    assert tab.painting, "the arm keeps painting"

    reloaded = TabState(slow)  # the reloaded page, with the name the browser remembered
    *_canvas, status, _choices, _proposals = cb.load(reloaded, name)
    assert status == "Welcome back: the robot is still painting your session."
    assert reloaded.session is not None and cb.session_name(reloaded) == name
    target, overlay, *_, summary, _files = cb.turn_view(reloaded)  # shown while it paints
    assert target is not None and overlay is not None and f"**{STROKES} strokes**" in summary
    streamed = list(execution.follow(reloaded))  # live frames, then the finished turn
    assert len(streamed) >= 2 and f"painted {STROKES} strokes" in streamed[-1][4]
    store = reloaded.session.store
    assert store.painted_strokes(2) == list(range(STROKES))  # none lost, none twice
    reloaded.close()


def test_a_painting_nobody_follows_closes_its_session_when_done(tmp_path, opener):
    from cofrida.session import SessionStore

    tab = TabState(SessionOpener(small_config(tmp_path, speed_factor=5.0), opener._proposers))
    painted_turn(tab)
    folder = tab.session.store.folder
    frames = execution.paint(tab)
    next(frames)
    job = tab.job
    frames.close()
    tab.close()
    job.thread.join(120)
    with SessionStore(folder) as store:  # the lock is free again: the session was closed
        assert store.turns()[-1].state == "done"


def test_a_reload_shows_the_chosen_target_and_the_plan_again(tab, opener):
    """What the page showed of the current turn comes back after a reload: the proposals, the
    target once chosen, and the plan (its map, animation, summary and files) once planned."""
    loaded = cb.load(tab)
    cb.submit_drawing(tab, line_drawing(loaded[0]))
    cb.propose(tab, PROMPT, None, 2)
    target, _ = cb.choose(tab, 1)
    name = cb.session_name(tab)

    chosen = TabState(opener)  # reloaded after the choice
    *_, proposals = cb.load(chosen, name)
    assert len(proposals) == 2
    shown_target, overlay, animation, summary, files = cb.turn_view(chosen)
    assert np.abs(shown_target.astype(int) - target.astype(int)).max() <= 1
    assert overlay is None and animation is None and summary == "" and files is None

    overlay, animation, summary, _status, files = cb.plan(chosen, STROKES)
    planned = TabState(opener)  # reloaded after planning
    *_, status, _choices, proposals = cb.load(planned, name)
    assert "Welcome back" in status and len(proposals) == 2
    again = cb.turn_view(planned)
    assert np.abs(again[0].astype(int) - target.astype(int)).max() <= 1
    assert again[1].shape == overlay.shape
    assert np.abs(again[1].astype(int) - overlay.astype(int)).mean() < 1  # the same stroke map
    assert Path(again[2]).is_file() and again[2].endswith(".gif")
    assert again[3] == summary  # strokes, paints, time, how much closer, marks kept
    assert [Path(f).name for f in again[4]] == [Path(f).name for f in files]
    for restored, planned_file in zip(again[4], files, strict=True):
        assert Path(restored).read_text() == Path(planned_file).read_text()
    # the planned turn is painted by 'Paint' (a new choice would not be)
    with pytest.raises(gr.Error, match=r"is planned .*press 'Paint' to paint it"):
        cb.choose(planned, 0)
    assert f"painted {STROKES} strokes" in run_paint(planned)[-1][4]
    assert cb.turn_view(planned) == cb.CLEARED_PLAN  # the turn is over: nothing to show again
    chosen.close()
    planned.close()
