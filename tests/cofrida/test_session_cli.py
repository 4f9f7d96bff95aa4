"""Sessions people can trust on the command line: one owner per session (a real OS lock across
real processes), the demo never deletes a session, `cofrida session list|resume|export`, and
clear messages instead of tracebacks for bad destinations and oversized inputs."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cofrida.cli import main
from cofrida.session import SessionStore
from tests.cofrida.test_session import PROMPT, horizon, open_session

QUICK = ["--quick", "--strokes", "8", "--turns", "1", "--proposals", "1"]


def run_cofrida(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cofrida", *args], capture_output=True, text=True, timeout=timeout
    )


# ---- one owner per session -------------------------------------------------------------
def test_a_second_opener_is_refused_and_told_who_holds_the_session(tmp_path):
    folder = tmp_path / "s"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, torch
            from cofrida.session import SessionStore
            s = SessionStore({str(folder)!r})
            s.begin_turn("human", torch.ones(3, 8, 8))
            print("open", flush=True)
            sys.stdin.readline()
            s.close()
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(ValueError, match=rf"already open \(held by process {holder.pid} on"):
            SessionStore(folder)
        # Looking is allowed: a reader takes no lock.
        with SessionStore(folder, readonly=True) as reader:
            assert len(reader.turns()) == 1
        # A second simulated session (the demo's, the UI's) is refused the same way.
        with pytest.raises(ValueError, match="already open"):
            open_session(folder)
        # The CLI says who holds it too.
        listed = run_cofrida("session", "list", "--dir", str(tmp_path), "--json")
        (row,) = json.loads(listed.stdout.splitlines()[-1])["sessions"]
        assert f"process {holder.pid}" in row["open_by"]
    finally:
        holder.communicate("\n", timeout=60)
    with SessionStore(folder) as store:  # the holder closed: the next owner gets it
        store.begin_turn("human", torch.ones(3, 8, 8))
        assert len(store.turns()) == 2


def test_a_killed_owner_never_blocks_the_next_one(tmp_path):
    script = f"""
import os, torch
from cofrida.session import SessionStore
SessionStore({str(tmp_path)!r}).begin_turn("human", torch.ones(3, 8, 8))
os.kill(os.getpid(), 9)
"""
    subprocess.run([sys.executable, "-c", script])
    with SessionStore(tmp_path) as store:
        assert len(store.turns()) == 1


# ---- the demo never deletes a session ----------------------------------------------------
def test_the_demo_keeps_an_existing_session_and_checks_arguments_first(tmp_path, capsys):
    out = tmp_path / "demo"
    with SessionStore(out / "session") as store:
        store.begin_turn("human", torch.ones(3, 8, 8))
    with pytest.raises(SystemExit):
        main(["demo", "--out", str(out), "--seed", "-1"])
    assert "--seed must be" in capsys.readouterr().err
    assert main(["demo", "--out", str(out), *QUICK]) == 2
    err = capsys.readouterr().err
    assert "already holds a session; it is kept" in err
    assert f"cofrida session resume {out / 'session'}" in err
    with SessionStore(out / "session", readonly=True) as store:
        assert len(store.turns()) == 1  # nothing deleted


# ---- cofrida session list | resume | export -------------------------------------------------
def test_an_interrupted_session_is_listed_resumed_and_exported(tmp_path, capsys):
    root = tmp_path / "sessions"
    s = open_session(root / "garden")
    s.human_turn(paths=horizon(s))
    s.propose(PROMPT)
    s.choose(0)
    s.plan()
    stopped = {"n": 0}

    def stop_after_five():
        stopped["n"] += 1
        return stopped["n"] >= 5

    s.execute(should_stop=stop_after_five)  # the person stopped it (or the power went)
    s.close()

    assert main(["session", "list", "--dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert "'a sunny meadow with a red house', 2 turns, interrupted (executing, 5/" in out
    (row,) = json.loads(out.splitlines()[-1])["sessions"]
    assert row["open_by"] is None and row["folder"] == str(root / "garden")

    assert main(["session", "resume", str(root / "garden")]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["state"] == "done"
    with SessionStore(root / "garden", readonly=True) as store:
        turn = store.turns()[-1]
        assert turn.state == "done"
        assert store.painted_strokes(turn.id) == list(range(turn.progress.total))

    export = tmp_path / "export"
    assert main(["session", "export", str(root / "garden"), "--out", str(export)]) == 0
    capsys.readouterr()
    record = json.loads((export / "session.json").read_text())
    assert [t["state"] for t in record["turns"]] == ["done", "done"]
    assert (export / "final.png").is_file() and (export / "timelapse.gif").is_file()
    assert main(["session", "resume", str(tmp_path / "nothing")]) == 2
    assert "no session in" in capsys.readouterr().err


# ---- destinations checked before the work, messages instead of tracebacks ----------------------
@contextlib.contextmanager
def tmpfs(folder: Path, options: str):
    """A real small or read-only file system at `folder` (needs root to mount)."""
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)])


def test_bad_destinations_are_clear_errors_before_any_work(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    target = tmp_path / "target.png"
    Image.new("RGB", (80, 60), "red").save(target)

    demo = run_cofrida("demo", "--out", str(a_file), *QUICK)
    assert demo.returncode == 2 and "Traceback" not in demo.stderr
    assert f"--out {a_file} is a file, not a folder" in demo.stderr

    t0 = time.monotonic()
    paint = run_cofrida("paint", "--target", str(target), "--out", str(a_file / "x"))
    assert paint.returncode == 2 and "Traceback" not in paint.stderr
    assert f"is inside {a_file}, which is a file" in paint.stderr
    assert "planning" not in paint.stderr  # refused before planning
    assert time.monotonic() - t0 < 120

    with tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
        paint = run_cofrida("paint", "--target", str(target), "--out", str(ro / "out"))
        assert paint.returncode == 2 and "Traceback" not in paint.stderr
        assert "cannot create --out folder" in paint.stderr and "Read-only" in paint.stderr
        demo = run_cofrida("demo", "--out", str(ro), *QUICK)
        assert demo.returncode == 2 and "cannot write into --out folder" in demo.stderr

    with tmpfs(tmp_path / "full", "size=2m") as full:
        demo = run_cofrida("demo", "--out", str(full / "demo"), *QUICK)
        assert demo.returncode == 2 and "Traceback" not in demo.stderr
        assert "is full" in demo.stderr
        assert not (full / "demo" / "session").exists()


def test_oversized_images_are_refused_before_work_starts(tmp_path):
    thin = tmp_path / "thin.png"
    Image.new("RGB", (1, 5000), "blue").save(thin)
    paint = run_cofrida("paint", "--target", str(thin), "--out", str(tmp_path / "o1"))
    assert paint.returncode == 2 and "Traceback" not in paint.stderr
    assert "the canvas would be 1.25e+03 m tall" in paint.stderr

    huge = tmp_path / "images" / "huge.png"
    huge.parent.mkdir()
    Image.new("1", (20000, 20000)).save(huge)  # 400 megapixels, a few kB on disk
    paint = run_cofrida("paint", "--target", str(huge), "--out", str(tmp_path / "o2"))
    assert paint.returncode == 2 and "Traceback" not in paint.stderr
    assert "is 20000x20000 px; the largest side allowed is 8192 px" in paint.stderr
    assert not (tmp_path / "o2" / "plan.json").exists()

    Image.new("RGB", (96, 96), "green").save(huge.parent / "fine.png")
    (huge.parent / "captions.jsonl").write_text(
        '{"file": "huge.png", "caption": "huge"}\n{"file": "fine.png", "caption": "a lawn"}\n'
    )
    data = run_cofrida(
        "make-data", "--source", f"folder:{huge.parent}", "--out", str(tmp_path / "data"),
        "--px", "64", "--strokes", "4", "--coarse-steps", "2", "--partials", "1", "--quiet",
    )  # fmt: skip
    assert data.returncode == 0 and "Traceback" not in data.stderr, data.stderr
    summary = json.loads(data.stdout.splitlines()[-1])
    assert summary["skipped"].get("too large") == 1 or summary["skipped_before_painting"]


def test_truncated_inputs_are_clear_errors(tmp_path, capsys):
    npz = tmp_path / "strokes.npz"
    np.savez(npz, intensity=np.zeros((4, 8, 8)), params=np.zeros((4, 3)),
             meters_per_pixel=1e-3, start_xy_px=np.zeros(2))  # fmt: skip
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    assert main(["calibrate", "strokes", "--data", str(npz), "--out", str(tmp_path / "c")]) == 2
    assert "truncated or not a stroke dataset" in capsys.readouterr().err
    assert not (tmp_path / "c").exists() or not any((tmp_path / "c").iterdir())

    # A model folder with a cut-off weights file, and a mistyped local model path.
    from ui.app import main as ui_main

    bundle = tmp_path / "bundle" / "unet"
    bundle.mkdir(parents=True)
    header = json.dumps({"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}})
    blob = len(header).to_bytes(8, "little") + header.encode() + bytes(4000)
    (bundle / "diffusion_pytorch_model.safetensors").write_bytes(blob[:1500])
    assert ui_main(["--model", str(bundle.parent), "--session-dir", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "diffusion_pytorch_model.safetensors is truncated or corrupt" in err
    t0 = time.monotonic()
    typo = str(tmp_path / "bundel")
    assert ui_main(["--model", typo, "--session-dir", str(tmp_path / "s")]) == 2
    assert f"no model folder at {typo}" in capsys.readouterr().err
    assert time.monotonic() - t0 < 20  # no hub look-up with retries
