"""Sim-to-real fitting on the shared real strokes: a small fit beats the analytic model."""

import numpy as np
import pytest
import torch

from sim import AnalyticStrokeModel, Brush, LearnedStrokeModel
from sim.calibration_store import find_calibrated_stroke_model, save_calibration
from sim.gap_report import gap_report, stroke_metrics
from sim.stroke_dataset import load_stroke_dataset
from sim.stroke_fit import FitConfig, clean_captures, fit_stroke_model, held_out_gap


@pytest.fixture(scope="module")
def small_fit():
    from tests.conftest import SHARED_DATA

    path = SHARED_DATA / "frida_sharpie_strokes.npz"
    if not path.is_file():
        pytest.skip(f"shared data not found at {path}")
    data = load_stroke_dataset(path).subset(np.arange(0, 360, 6))  # 60 strokes
    torch.set_flush_denormal(True)
    split = {"train": np.arange(0, 60, 2), "val": np.arange(1, 20, 2), "test": np.arange(21, 60, 2)}
    cfg = FitConfig(steps=10, warmup_steps=25, batch_size=20, eval_every=5)
    brush = Brush.preset("sharpie")
    return data, brush, fit_stroke_model(data, brush, cfg, split=split)


def test_small_fit_beats_the_analytic_model_on_held_out_strokes(small_fit):
    data, brush, result = small_fit
    gap = held_out_gap(result, data, brush)
    assert gap["strokes"] == 20
    assert gap["iou_fitted"] > gap["iou_analytic"] + 0.05
    assert gap["l1_fitted"] < gap["l1_analytic"]
    assert gap["centroid_mm_fitted"] < 1.0 and gap["extent_x_mm_fitted"] < 1.0
    report = result.report
    assert 0.6 < report["ink_darkness"] < 0.95  # a photographed Sharpie is not 255-dark
    assert result.model.brush.name == "sharpie"
    assert all(isinstance(why, str) for why in report["rejected"].values())


def test_calibration_is_saved_per_robot_and_brush_and_found(small_fit):
    _, _, result = small_fit
    assert find_calibrated_stroke_model("sharpie", robot="arm1") is None
    folder = save_calibration(result.model, {"note": "test"}, robot="arm1")
    assert (folder / "calibration.json").is_file()
    found = find_calibrated_stroke_model("sharpie", robot="arm1")
    assert isinstance(found, LearnedStrokeModel)
    shape = (torch.tensor([0.02]), torch.tensor([0.004]), torch.tensor([0.6]))
    assert torch.equal(found(*shape), result.model(*shape))
    assert find_calibrated_stroke_model("sharpie") is None  # other robot: nothing
    with pytest.raises(ValueError, match="invalid robot"):
        find_calibrated_stroke_model("sharpie", robot="../x")


def test_cleaning_erases_stray_marks_but_keeps_the_stroke(shared_data):
    data = load_stroke_dataset(shared_data / "frida_sharpie_strokes.npz").subset([137, 154, 55])
    brush = Brush.preset("sharpie")
    dirty = data.darkness().clone()
    dirty[:, 2:12, 200:240] = 0.8  # a smudge far from every stroke
    data.intensity = (dirty * 255).round().to(torch.uint8).numpy()
    cleaned, erased = clean_captures(data, brush)
    assert float(cleaned[:, 2:12, 200:240].max()) == 0.0
    assert np.all(erased > 0)
    analytic = {"analytic": AnalyticStrokeModel(brush)}
    report = gap_report(analytic, data, cleaned, np.arange(3), 0.83)
    assert report["iou_analytic"] > 0.3  # the stroke itself is still there


def test_metrics_are_exact_on_simple_masks():
    real = torch.zeros(1, 20, 40)
    real[0, 8:12, 5:25] = 0.8
    pred = torch.roll(real, 2, 1)  # 2 px lower
    m = stroke_metrics(pred, real, 0.001)
    assert m["iou"][0] == pytest.approx(2 / 6)
    assert m["iou_aligned"][0] == pytest.approx(1.0)
    assert m["centroid_mm"][0] == pytest.approx(2.0)
    assert m["extent_x_mm"][0] == 0 and m["extent_y_mm"][0] == 0
