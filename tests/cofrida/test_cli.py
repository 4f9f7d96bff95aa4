"""The `cofrida` command line: dispatch, errors, and the main job end to end (small)."""

import json
import subprocess
import sys

import pytest
from PIL import Image

from cofrida.cli import main


def test_help_and_benchmark_list(capsys):
    assert main(["--help"]) == 0
    assert "bench" in capsys.readouterr().out
    assert main(["bench", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "render" in listed and "kernels" in listed


def test_unknown_command_and_benchmark_are_clear_errors(capsys):
    assert main(["paint-everything"]) == 2
    assert "unknown command 'paint-everything'" in capsys.readouterr().err
    assert main(["bench", "nope"]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err


def test_demo_runs_a_copainting_session_via_python_m(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "cofrida", "demo", "--out", str(out)]
    proc = subprocess.run(
        [*cmd, "--strokes", "12", "--quick", "--turns", "2", "--proposals", "2"],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert str(out) in proc.stdout  # says where the session is
    assert (summary["turns"], summary["human_turns"], summary["robot_turns"]) == (4, 2, 2)
    assert summary["strokes"] == 24 and summary["model"] == "default-bundle"  # shipped
    for turn in summary["robot"]:
        assert turn["loss_final"] < turn["loss_canvas"]  # the robot's turn helped
        assert turn["preserved_fraction"] >= 0.95  # and kept the person's marks
    record = json.loads((out / "session.json").read_text())
    assert [t["kind"] for t in record["turns"]] == ["human", "robot"] * 2
    assert all(t["state"] == "done" for t in record["turns"])
    assert (out / "session" / "session.sqlite").exists()
    with Image.open(out / "final.png") as img:
        assert img.size == (256, 198)
    with Image.open(out / "timelapse.gif") as gif:
        assert gif.n_frames >= 6


def test_demo_paints_with_the_bundle_named_by_model(tmp_path, capsys):
    from cofrida.model import tiny

    bundle = tmp_path / "my-bundle"
    tiny.build_edit_model("tiny_clip", resolution=32, vae_blocks=(8, 8, 16, 16)).save_pretrained(
        bundle
    )
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--quick", "--turns", "1", "--strokes", "4",
            "--proposals", "1", "--model", str(bundle)]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["model"] == str(bundle) and summary["robot_turns"] == 1
    record = json.loads((out / "session.json").read_text())
    assert str(bundle) in json.dumps(record)  # the session says which model proposed

    missing = tmp_path / "no-such-bundle"
    assert main(["demo", "--out", str(tmp_path / "other"), "--model", str(missing)]) == 2
    assert f"--model {missing}" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()  # refused before anything was written


def test_demo_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--strokes", "0"])
    assert exit_info.value.code == 2
    assert "--strokes must be >= 1" in capsys.readouterr().err
