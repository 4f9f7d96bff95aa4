"""The co-painting session: a real sim arm, a real planner, real SQLite, and a real `kill -9`."""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from cofrida.session import SceneProposer, SessionConfig, SessionStore, open_sim_session
from cofrida.session.images import read_png
from planner import PlannerConfig
from sim import BrushPath
from sim.palette import Palette

STROKES = 24
PROMPT = "a sunny meadow with a red house"


def open_session(folder, speed_factor=0.0, scorer=None):
    """A small, fast simulated session (128 px canvas, a short planner schedule)."""
    return open_sim_session(
        folder,
        SessionConfig(strokes=STROKES, proposals=2, keep_every=5),
        PlannerConfig(seed=0, coarse_px=64, coarse_steps=10, fine_steps=2),
        canvas_px=128,
        speed_factor=speed_factor,
        proposer=SceneProposer(Palette.preset("acrylic")),
        scorer=scorer,
    )


def horizon(session) -> list[BrushPath]:
    w, h = session.planner.canvas.width_m, session.planner.canvas.height_m
    t = torch.linspace(0, 1, 24)
    xy = torch.stack([0.1 * w + 0.8 * w * t, torch.full_like(t, 0.75 * h)], -1)
    return [BrushPath(torch.cat([xy, torch.full((24, 1), 0.8)], -1), torch.zeros(3))]


def planned_session(folder):
    """A session whose robot turn is planned, not yet painted; returns (session, turn id)."""
    s = open_session(folder)
    s.human_turn(paths=horizon(s))
    s.propose(PROMPT)
    s.choose(0)
    s.plan()
    return s, s.store.turns()[-1].id


def test_a_full_turn_is_recorded_and_keeps_the_persons_marks(tmp_path):
    s, tid = planned_session(tmp_path / "s")
    report = s.execute()
    assert report.completed
    t = s.store.turn(tid)
    assert (t.kind, t.prompt, t.state, t.chosen) == ("robot", PROMPT, "done", 0)
    assert s.store.painted_strokes(tid) == list(range(STROKES))
    assert len(t.proposals) == 2 and all(p.exists() for p, _ in t.proposals)
    events = [e["event"] for e in s.store.events(tid)]
    assert events[:2] == ["begin", "propose"] and {"plan", "executed", "finish"} <= set(events)
    plan_event = next(e for e in s.store.events(tid) if e["event"] == "plan")
    assert plan_event["data"]["preserved_fraction"] >= 0.9
    assert torch.equal(read_png(t.canvas_after), s.store.current_canvas())
    assert s.store.config["model"] == "scene-stand-in"


WORKER = textwrap.dedent(
    """
    import sys, torch
    sys.path.insert(0, {tests!r})
    torch.set_num_threads(1)
    from test_session import open_session

    session = open_session({folder!r}, speed_factor={speed})
    print("ready", flush=True)
    session.resume(on_progress=lambda done, total: print(done, flush=True))
    print("finished", flush=True)
    """
)


def test_kill_9_during_a_robot_turn_resumes_with_no_stroke_lost_or_repeated(tmp_path):
    s, tid = planned_session(tmp_path / "killed")
    s.close()
    shutil.copytree(tmp_path / "killed", tmp_path / "reference")
    script = WORKER.format(
        tests=os.path.dirname(__file__), folder=str(tmp_path / "killed"), speed=8.0
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        while int(proc.stdout.readline()) < 5:  # strokes recorded so far
            pass
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # mid-turn: no chance to clean up
        proc.wait()

    store = SessionStore(tmp_path / "killed")
    turn = store.unfinished_turn()
    assert turn is not None and turn.state == "executing", "the worker finished before the kill"
    done = turn.progress.done
    assert 5 <= done < STROKES
    assert store.painted_strokes(tid) == list(range(done))
    assert torch.equal(store.current_canvas(), read_png(turn.progress.snapshot))
    store.close()

    resumed = open_session(tmp_path / "killed")
    # The sim arm starts from the last snapshot: the strokes already painted are on it.
    assert torch.equal(resumed.arm.canvas_image(), read_png(turn.progress.snapshot))
    assert resumed.resume().state == "done"
    assert resumed.store.painted_strokes(tid) == list(range(STROKES))
    assert [e["data"]["from"] for e in resumed.store.events(tid) if e["event"] == "execute"] == [
        0,
        done,
    ]
    assert not list((tmp_path / "killed").rglob("*.tmp"))

    reference = open_session(tmp_path / "reference")
    reference.resume()
    # The physical brush's random state and paint load are not part of a snapshot, and a
    # resumed plan starts with a clean and a dip, so the resumed painting is not bit-equal to
    # an uninterrupted one: the same strokes, the same ink, slightly different bristle marks.
    a, b = resumed.store.current_canvas(), reference.store.current_canvas()
    before = read_png(resumed.store.turn(tid).canvas_before)
    ink_a = float((a - before).abs().sum(0).gt(0.1).float().mean())
    ink_b = float((b - before).abs().sum(0).gt(0.1).float().mean())
    assert abs(ink_a - ink_b) < 0.15 * ink_b
    assert float((a - b).abs().mean()) < 0.05


def test_stop_then_execute_again_paints_each_stroke_once(tmp_path):
    s, tid = planned_session(tmp_path / "s")
    report = s.execute(should_stop=lambda: s.store.turn(tid).progress.done >= 7)
    assert report.stopped and s.store.turn(tid).state == "executing"
    with pytest.raises(ValueError, match="is being painted"):
        s.propose("a cat")
    assert s.execute().completed
    assert s.store.painted_strokes(tid) == list(range(STROKES))


def png_bytes(size=(96, 80)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_bad_uploads_and_prompts_get_clear_messages(tmp_path):
    s = open_session(tmp_path / "s")
    good = png_bytes()
    for data, message in [
        (b"", "the uploaded file is empty"),
        (b"GIF89a nonsense", "not an image that can be read"),
        (good[: len(good) // 2], "corrupt or truncated"),
        (png_bytes((20, 20)), "needs at least 64 px"),
        (np.zeros((80, 80), np.float32) + 2, "float with finite values in 0..1"),
    ]:
        with pytest.raises(ValueError, match=message):
            s.set_canvas_from_upload(data)
    for prompt, message in [
        ("", "the prompt is empty"),
        (" \n\t", "the prompt is empty"),
        ("x" * 501, "501 characters long"),
        (None, "must be text"),
    ]:
        with pytest.raises(ValueError, match=message):
            s.propose(prompt)
    assert s.store.turns() == []  # nothing was recorded for refused input

    turn = s.set_canvas_from_upload(good)
    red = s.arm.canvas_image()
    assert s.store.turn(turn).kind == "human" and abs(float(red[0].mean()) - 200 / 255) < 0.01
    proposals = s.propose("  un soleil ☀️ au-dessus d'une maison rouge 🏠  ", n=2)
    assert len(proposals) == 2
    assert s.store.turns()[-1].prompt == "un soleil ☀️ au-dessus d'une maison rouge 🏠"


def test_proposals_are_ranked_by_the_scorer(tmp_path):
    def redness(images, prompt):
        return images[:, 0].mean((1, 2)) - images[:, 1:].mean((1, 2, 3))

    s = open_session(tmp_path / "s", scorer=redness)
    ranked = s.propose(PROMPT, n=3, seed=4)
    scores = [score for _, score in ranked]
    assert scores == sorted(scores, reverse=True)
    assert [sc for _, sc in s.store.turns()[-1].proposals] == pytest.approx(scores)


def test_undo_restores_the_canvas_and_export_writes_everything(tmp_path):
    s, tid = planned_session(tmp_path / "s")
    s.execute()
    before = read_png(s.store.turn(tid).canvas_before)
    assert not torch.equal(s.arm.canvas_image(), before)
    frames = len(s.store.snapshots())  # canvases before / after each turn, kept strokes
    out = s.export(tmp_path / "export")
    assert torch.equal(s.undo(), before)
    assert torch.equal(s.arm.canvas_image(), before)
    assert s.store.turn(tid).state == "undone"
    with pytest.raises(ValueError, match="nothing to undo: the last turn is a human turn"):
        s.undo()

    record = json.loads((out / "session.json").read_text())
    assert record["model"] == "scene-stand-in"
    assert [t["kind"] for t in record["turns"]] == ["human", "robot"]
    robot = record["turns"][1]
    assert robot["prompt"] == PROMPT and robot["strokes_painted"] == list(range(STROKES))
    assert len(robot["plan"]["order"]) == STROKES
    for name in ("canvas_before", "canvas_after", "target"):
        assert (out / robot[name]).exists()
    with Image.open(out / "timelapse.gif") as gif:
        assert 6 <= gif.n_frames <= frames  # identical neighbours (turn ends) merge
    assert (out / "final.png").exists()


def test_the_persons_region_limits_the_robots_strokes_too(tmp_path):
    """A region limits the proposals and the plan: with the same all-over target, the robot
    paints the right part without a region and leaves it alone with the left part marked."""
    changed = {}
    for name in ("free", "left"):
        s = open_session(tmp_path / name)
        (h, w), left, right = s.size_px, slice(0, 56), slice(72, None)
        region = None
        if name == "left":
            region = torch.zeros(h, w, dtype=torch.bool)
            region[:, left] = True
        s.propose(PROMPT, region=region)
        s.choose(torch.tensor([0.15, 0.3, 0.7]).view(3, 1, 1).expand(3, h, w))  # paint all over
        s.plan()
        before = s.capture()
        s.execute()
        diff = (s.capture() - before).abs().amax(0) > 0.1
        changed[name] = (float(diff[:, left].float().mean()), float(diff[:, right].float().mean()))
        if region is not None:  # kept with the turn, read back by a reopened session
            tid = s.store.turns()[-1].id
            s.close()
            assert torch.equal(SessionStore(tmp_path / name, readonly=True).region(tid), region)
    assert changed["free"][1] > 0.08, changed
    assert changed["left"][1] < 0.02 and changed["left"][0] > 0.2, changed
