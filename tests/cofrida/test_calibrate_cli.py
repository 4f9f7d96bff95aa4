"""`cofrida calibrate`: import a FRIDA library, fit strokes into the user data dir, evaluate."""

import json
from pathlib import Path

import numpy as np
import torch

from cofrida.cli import main
from sim import Brush, LearnedStrokeModel
from sim.calibration_store import find_calibrated_stroke_model
from sim.stroke_dataset import load_stroke_dataset, save_stroke_dataset
from tests.sim.test_stroke_dataset import write_frida_library


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_import_frida_then_eval_an_untrained_model(tmp_path, shared_data, capsys):
    real = load_stroke_dataset(shared_data / "frida_sharpie_strokes.npz")
    part = real.subset(np.flatnonzero(np.isin(real.capture_file, [10, 20])))
    width_m, height_m = write_frida_library(tmp_path / "lib", part)
    out = tmp_path / "imported.npz"
    argv = ["calibrate", "import-frida", str(tmp_path / "lib"), "--canvas-width-m",
            str(width_m), "--canvas-height-m", str(height_m), "--out", str(out),
            "--meters-per-pixel", str(part.meters_per_pixel)]  # fmt: skip
    assert main(argv) == 0
    assert _last_json(capsys) == {"out": str(out), "strokes": 20, "batches": 2}
    assert np.array_equal(load_stroke_dataset(out).intensity, part.intensity)

    LearnedStrokeModel(Brush.preset("sharpie")).save(tmp_path / "model")
    assert main(["calibrate", "eval", "--model", str(tmp_path / "model"), "--data", str(out),
                 "--picture", str(tmp_path / "gap.png")]) == 0  # fmt: skip
    figures = _last_json(capsys)
    assert figures["iou"] == figures["iou_fitted"]
    assert abs(figures["iou"] - figures["iou_analytic"]) < 0.02  # untrained = analytic
    assert figures["l1"] > 0 and figures["l1_analytic"] > 0
    assert (tmp_path / "gap.png").is_file()


def test_fit_saves_into_the_user_data_dir_and_bad_input_is_clear(tmp_path, shared_data, capsys):
    real = load_stroke_dataset(shared_data / "frida_sharpie_strokes.npz")
    part = real.subset(np.arange(0, 360, 15))  # 24 strokes
    data = save_stroke_dataset(
        tmp_path / "s.npz", part.intensity, part.params, part.meters_per_pixel,
        part.start_xy_px, part.capture_file,
    )  # fmt: skip
    torch.set_flush_denormal(True)
    argv = ["calibrate", "strokes", "--data", str(data), "--robot", "bench1", "--steps", "6",
            "--warmup-steps", "6", "--batch-size", "16"]  # fmt: skip
    assert main(argv) == 0
    summary = _last_json(capsys)
    assert "iou_fitted" in summary and "iou_analytic" in summary
    model = find_calibrated_stroke_model("sharpie", robot="bench1")
    assert isinstance(model, LearnedStrokeModel)
    saved = Path(summary["saved"])
    assert saved.parts[-3:] == ("calibrations", "bench1", "sharpie")
    assert json.loads((saved / "calibration.json").read_text())["robot"] == "bench1"
    assert (saved / "gap.png").is_file()

    assert main(["calibrate", "eval", "--model", str(tmp_path / "none"), "--data", str(data)]) == 2
    assert "config.json is missing" in capsys.readouterr().err
