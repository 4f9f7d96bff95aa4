"""`cofrida paint` plans with the robot's calibrated stroke model when one is saved."""

import torch
from PIL import Image

from cofrida.commands.paint import main
from sim import Brush, LearnedStrokeModel
from sim.calibration_store import calibration_dir


def _target(path):
    img = torch.ones(64, 64, 3)
    img[20:44, 10:54] = torch.tensor([0.1, 0.2, 0.8])
    Image.fromarray((img.numpy() * 255).astype("uint8")).save(path)


def _paint(tmp_path, capsys, *extra):
    _target(tmp_path / "t.png")
    args = ["--target", str(tmp_path / "t.png"), "--strokes", "6", "--px", "64"]
    args += ["--coarse-steps", "2", "--fine-steps", "1", "--no-animation"]
    rc = main([*args, "--out", str(tmp_path / "out"), *extra])
    assert rc == 0
    return capsys.readouterr().err


def test_paint_uses_the_saved_calibration(tmp_path, capsys):
    assert "stroke model: analytic" in _paint(tmp_path, capsys)
    model = LearnedStrokeModel(Brush.preset("round"))
    model.save(calibration_dir("round", "default") / "stroke_model")
    assert "stroke model: calibrated (default/round)" in _paint(tmp_path, capsys)
    assert "stroke model: analytic" in _paint(tmp_path, capsys, "--analytic")
