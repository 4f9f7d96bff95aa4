"""`cofrida paint` and `cofrida bench plan` end to end, on tiny settings."""

from __future__ import annotations

import json

from PIL import Image

from cofrida.benchmarks.plan import main as bench_main
from cofrida.commands.paint import main
from planner import Plan
from tests.planner.conftest import small_canvas, two_blocks


def test_paint_writes_plan_preview_and_painting(tmp_path, capsys):
    target = tmp_path / "target.png"
    arr = (two_blocks(small_canvas()).permute(1, 2, 0).numpy() * 255).astype("uint8")
    Image.fromarray(arr).save(target)
    out = tmp_path / "out"
    args = ["--target", str(target), "--strokes", "12", "--px", "48", "--out", str(out)]
    code = main([*args, "--coarse-steps", "10", "--fine-steps", "3", "--gcode"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["loss_final"] < summary["loss_canvas"] and "executed_loss" in summary
    for name in ("plan.json", "plan.svg", "plan.gcode", "preview.gif", "painted.png"):
        assert (out / name).is_file(), name
    assert len(Plan.load(out / "plan.json")) == 12


def test_paint_reports_a_corrupt_target_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    out = tmp_path / "out"
    assert main(["--target", str(bad), "--out", str(out), "--px", "48"]) == 2
    assert "not a readable image" in capsys.readouterr().err
    assert not out.exists()


def test_bench_plan_quick_prints_one_json_object_last(capsys):
    assert bench_main(["--quick", "--px", "48", "--strokes", "12"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("seconds", "loss_init", "loss_final", "executed_loss", "travel_reduction",
                "paint_changes", "preserved_fraction"):  # fmt: skip
        assert key in result
    assert result["paint_changes"] == result["colours_used"]
