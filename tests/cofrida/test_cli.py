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


def test_demo_runs_a_copainting_turn_via_python_m(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "cofrida", "demo", "--out", str(out)]
    proc = subprocess.run(
        [*cmd, "--strokes", "30", "--quick"], capture_output=True, text=True, check=True
    )
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["strokes"] == 30
    assert summary["loss_final"] < summary["loss_canvas"]  # the robot's turn helped
    assert summary["preserved_fraction"] >= 0.95  # and kept the person's marks
    for name in ("person", "target", "simulated", "painted"):
        with Image.open(out / f"{name}.png") as img:
            assert img.size == (256, 198)
    with Image.open(out / "sheet.png") as sheet:
        assert sheet.size == (1024, 198)
    plan = json.loads((out / "plan.json").read_text())
    assert len(plan["order"]) == 30


def test_demo_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--strokes", "0"])
    assert exit_info.value.code == 2
    assert "--strokes must be >= 1" in capsys.readouterr().err
