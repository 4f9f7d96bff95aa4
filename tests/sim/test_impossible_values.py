"""Impossible values never reach the wire: plans, stroke datasets and stroke models are checked
against the brush's and the machine's physical ranges where they are built or loaded."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from planner import Plan
from planner.gcode import GcodeConfig, plan_to_gcode
from sim import Brush, Canvas, Strokes
from sim.palette import Palette
from sim.stroke_dataset import StrokeDataset, load_stroke_dataset, save_stroke_dataset
from sim.stroke_fit import FitConfig, fit_stroke_model
from sim.stroke_model import AnalyticStrokeModel, LearnedStrokeModel, load_stroke_model


def plan(pressure: float = 0.5, length: float = 0.01) -> Plan:
    palette = Palette.preset("markers")
    n = 3
    s = Strokes(
        torch.tensor([[0.05, 0.05], [0.1, 0.1], [0.15, 0.12]]), torch.zeros(n),
        torch.full((n,), length), torch.zeros(n), torch.tensor([0.5, pressure, 0.5]),
        palette.colors[torch.zeros(n, dtype=torch.long)], torch.zeros(n, dtype=torch.long),
    )  # fmt: skip
    return Plan(Canvas(0.28, 0.21, 64), Brush.preset("round"), palette, s, [0, 1, 2])


def test_a_plan_with_pressure_50_is_refused_when_built_loaded_or_exported():
    with pytest.raises(ValueError, match=r"stroke 1 has pressure=50.0 .*0\.\.1"):
        plan(pressure=50.0)
    with pytest.raises(ValueError, match=r"stroke 0 has length=-0.01"):
        plan(length=-0.01)
    data = json.loads(plan().to_json())
    data["strokes"]["pressure"][2] = 50.0
    with pytest.raises(ValueError, match=r"stroke 2 has pressure=50\.0"):
        Plan.from_json(json.dumps(data))
    good = plan()
    cfg = GcodeConfig()
    zs = [float(w[1:]) for line in plan_to_gcode(good, cfg).splitlines()
          for w in line.split(";")[0].split() if w.startswith("Z")]  # fmt: skip
    assert min(zs) >= cfg.z_touch_mm - cfg.press_mm  # never deeper than full pressure
    good.strokes.pressure[1] = 50.0  # changed after it was built: refused at export
    with pytest.raises(ValueError, match=r"plan_to_gcode: stroke 1 has pressure=50\.0"):
        plan_to_gcode(good, cfg)


def dataset(lengths) -> tuple[np.ndarray, np.ndarray]:
    n = len(lengths)
    params = np.stack([lengths, np.zeros(n), np.full(n, 0.5), np.zeros(n)], 1)
    return np.zeros((n, 8, 8), np.uint8), params.astype(np.float32)


@pytest.mark.parametrize("length", [-0.01, 1e6])  # negative, 1,000 km
def test_stroke_data_with_impossible_lengths_is_refused_on_save_load_and_fit(tmp_path, length):
    intensity, params = dataset([0.01, length, 0.02])
    with pytest.raises(ValueError, match=r"stroke 1 has length=.*not a stroke a brush can paint"):
        save_stroke_dataset(tmp_path / "d.npz", intensity, params, 1e-4, (1, 4))
    raw = tmp_path / "raw.npz"  # written by another tool, bypassing the checks
    np.savez(raw, intensity=intensity, params=params, meters_per_pixel=1e-4,
             start_xy_px=np.array([1.0, 4.0]))  # fmt: skip
    with pytest.raises(ValueError, match="stroke 1 has length"):
        load_stroke_dataset(raw)
    data = StrokeDataset(intensity, params, 1e-4, (1.0, 4.0), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="fit_stroke_model data: stroke 1 has length"):
        fit_stroke_model(data, Brush.preset("sharpie"), FitConfig(steps=1))


def test_a_stroke_model_folder_without_its_weights_does_not_load_untrained(tmp_path):
    LearnedStrokeModel(Brush.preset("round")).save(tmp_path / "learned")
    (tmp_path / "learned" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"no model\.safetensors.*weights are missing"):
        load_stroke_model(tmp_path / "learned")
    AnalyticStrokeModel(Brush.preset("round")).save(tmp_path / "analytic")
    (tmp_path / "analytic" / "model.safetensors").unlink()  # it has no weights to miss
    assert isinstance(load_stroke_model(tmp_path / "analytic"), AnalyticStrokeModel)
