"""Session persistence: real SQLite, real files, and a real `kill -9` in the middle of a turn."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from cofrida.session import SessionStore
from cofrida.session.images import read_png


def canvas_after(stroke: int) -> torch.Tensor:
    """A canvas that encodes how many strokes were painted (pixel [0,0,0] = stroke / 255)."""
    img = torch.ones(3, 16, 16)
    img[0, 0, 0] = (stroke % 256) / 255
    img[1, 0, 0] = (stroke // 256) / 255
    return img


def strokes_in(image: torch.Tensor) -> int:
    return round(float(image[0, 0, 0]) * 255) + 256 * round(float(image[1, 0, 0]) * 255)


def test_a_turn_is_recorded_step_by_step(tmp_path):
    store = SessionStore(tmp_path / "s", config={"brush": "round"})
    blank = torch.ones(3, 16, 16)
    tid = store.begin_turn("robot", blank, prompt="a red boat")
    store.add_proposals(tid, [torch.zeros(3, 16, 16), torch.rand(3, 16, 16)], scores=[0.2, 0.7])
    store.choose(tid, torch.zeros(3, 16, 16), chosen=0)
    store.set_plan(tid, '{"strokes": 3}', strokes_total=3)
    for i in range(3):
        store.stroke_done(tid, i, canvas_after(i))
    store.finish_turn(tid, canvas_after(2))
    store.close()

    again = SessionStore(tmp_path / "s")
    t = again.turn(tid)
    assert (t.kind, t.prompt, t.state, t.chosen) == ("robot", "a red boat", "done", 0)
    assert [s for _, s in t.proposals] == [0.2, 0.7]
    assert all(p.exists() for p, _ in t.proposals)
    assert (t.progress.done, t.progress.total) == (3, 3)
    assert again.painted_strokes(tid) == [0, 1, 2]
    assert again.config == {"brush": "round"}
    assert strokes_in(again.current_canvas()) == 2
    assert [e["event"] for e in again.events(tid)] == ["begin", "choose", "finish"]
    assert again.unfinished_turn() is None


def test_strokes_are_recorded_once_and_in_order(tmp_path):
    store = SessionStore(tmp_path)
    tid = store.begin_turn("robot", torch.ones(3, 8, 8))
    store.set_plan(tid, "{}", strokes_total=5)
    store.stroke_done(tid, 0)
    with pytest.raises(
        ValueError, match="stroke 0 reported done, but the next stroke to paint is 1"
    ):
        store.stroke_done(tid, 0)
    with pytest.raises(ValueError, match="next stroke to paint is 1"):
        store.stroke_done(tid, 3)


def test_undo_returns_the_canvas_before_and_skips_the_turn(tmp_path):
    store = SessionStore(tmp_path)
    first = store.begin_turn("human", canvas_after(0))
    store.finish_turn(first, canvas_after(1))
    robot = store.begin_turn("robot", canvas_after(1), prompt="sun")
    with pytest.raises(ValueError, match="only a finished turn can be undone"):
        store.undo_turn(robot)
    store.finish_turn(robot, canvas_after(7))
    assert strokes_in(store.undo_turn(robot)) == 1
    assert strokes_in(store.current_canvas()) == 1
    assert store.turn(robot).state == "undone"


def test_bad_input_is_refused_clearly(tmp_path):
    store = SessionStore(tmp_path)
    with pytest.raises(ValueError, match="turn kind must be 'human' or 'robot'"):
        store.begin_turn("cat", torch.ones(3, 8, 8))
    with pytest.raises(ValueError, match=r"shape \(3, H, W\)"):
        store.begin_turn("human", torch.ones(8, 8))
    tid = store.begin_turn("robot", torch.ones(3, 8, 8))
    with pytest.raises(ValueError, match="2 proposals but 1 scores"):
        store.add_proposals(tid, [torch.ones(3, 8, 8)] * 2, scores=[1.0])
    with pytest.raises(KeyError, match="no turn 99"):
        store.turn(99)


WORKER = textwrap.dedent(
    """
    import sys, time, torch
    sys.path.insert(0, {tests!r})
    from test_session_store import canvas_after
    from cofrida.session import SessionStore

    store = SessionStore({folder!r}, keep_every=50)
    turn = store.unfinished_turn()
    if turn is None:
        tid = store.begin_turn("robot", torch.ones(3, 16, 16), prompt="grass")
        store.set_plan(tid, "{{}}", strokes_total={total})
        start = 0
    else:
        tid, start = turn.id, turn.progress.done
    print("ready", flush=True)
    for i in range(start, {total}):
        store.stroke_done(tid, i, canvas_after(i))
        print(i, flush=True)
    store.finish_turn(tid, canvas_after({total} - 1))
    print("finished", flush=True)
    """
)


def test_kill_9_mid_turn_resumes_with_no_stroke_lost_or_repeated(tmp_path):
    folder, total = tmp_path / "session", 250
    script = WORKER.format(tests=os.path.dirname(__file__), folder=str(folder), total=total)
    interrupted = 0
    # Killed after the worker reports strokes 30, 110 and 200 (it keeps painting meanwhile, so
    # the kill lands mid-stroke somewhere after), then left to finish. Counting strokes, not
    # seconds: a fast disk finished all 250 within a fixed delay.
    for kill_after in (30, 110, 200, None):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        if kill_after is None:
            proc.stdout.read()
            assert proc.wait(timeout=120) == 0
            break
        for line in proc.stdout:
            if line.strip() == "finished" or int(line) >= kill_after:
                break
        os.kill(proc.pid, signal.SIGKILL)  # mid-stroke: no chance to clean up
        proc.wait()
        proc.stdout.close()
        store = SessionStore(folder)
        turn = store.unfinished_turn()
        if turn is None:  # killed just after the last stroke: nothing left to resume
            break
        interrupted += 1
        assert turn.state == "executing"
        done = turn.progress.done
        assert store.painted_strokes(turn.id) == list(range(done))
        # The snapshot is complete and shows exactly the strokes marked done.
        assert strokes_in(read_png(turn.progress.snapshot)) == done - 1
        store.close()
    assert interrupted >= 1, "the worker finished before any kill: make the job longer"
    store = SessionStore(folder)
    (turn,) = store.turns()
    assert turn.state == "done"
    assert store.painted_strokes(turn.id) == list(range(total))
    assert strokes_in(store.current_canvas()) == total - 1
    assert not list(folder.rglob("*.tmp")), "a half-written image was left behind"
    kept = sorted(p.name for p in (folder / "images" / "turn_0001").glob("stroke_*.png"))
    assert "stroke_0050.png" in kept and f"stroke_{total - 1:04d}.png" in kept
    assert "stroke_0051.png" not in kept


def test_wal_rows_survive_without_close(tmp_path):
    script = textwrap.dedent(
        f"""
        import os, torch
        from cofrida.session import SessionStore
        s = SessionStore({str(tmp_path)!r})
        t = s.begin_turn("human", torch.ones(3, 8, 8), prompt="kept")
        os._exit(0)  # no close, no atexit
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    time.sleep(0.05)
    assert SessionStore(tmp_path).turn(1).prompt == "kept"


def test_a_reader_never_touches_a_live_writers_files(tmp_path):
    writer = SessionStore(tmp_path)
    tid = writer.begin_turn("robot", torch.ones(3, 8, 8), prompt="sea")
    in_flight = tmp_path / "images" / "turn_0001" / ".stroke_0000.abcd.tmp"
    in_flight.write_bytes(b"half a png")  # the writer is mid-write
    reader = SessionStore(tmp_path, readonly=True)
    assert reader.turn(tid).prompt == "sea"
    assert in_flight.exists()
    with pytest.raises(PermissionError, match="read-only"):
        reader.begin_turn("human", torch.ones(3, 8, 8))
    with pytest.raises(FileNotFoundError, match="no session"):
        SessionStore(tmp_path / "nowhere", readonly=True)
    writer.close()  # (a crash releases the lock too)
    SessionStore(tmp_path).close()  # the writer reopening after a crash does clean up
    assert not in_flight.exists()
