"""Stroke models: shapes that look like the brush, compact support, save/load."""

import json

import pytest
import torch

from sim import AnalyticStrokeModel, Brush, LearnedStrokeModel, load_stroke_model
from sim.stroke_model import EDGE_CUTOFF, StrokeFrame


def _mark_width_m(model, pressure: float) -> float:
    """Width (m) of the painted band across the middle of a straight stroke."""
    frame = model.frame
    maps = model(torch.tensor([0.02]), torch.tensor([0.0]), torch.tensor([pressure]))
    x = frame.grid()[0, :, 0]
    col = int(torch.argmin((x - 0.01).abs()))
    return float((maps[0, :, col] > 0.5 * maps.max()).sum()) * frame.m_per_px


@pytest.mark.parametrize("preset", ["sharpie", "round"])
def test_width_follows_pressure(preset):
    brush = Brush.preset(preset)
    model = AnalyticStrokeModel(brush)
    light, hard = _mark_width_m(model, 0.0), _mark_width_m(model, 1.0)
    px = model.frame.m_per_px
    assert light == pytest.approx(brush.min_width_m, abs=2 * px)
    assert hard == pytest.approx(brush.max_width_m, abs=2 * px)


def test_ink_follows_the_bezier_path_and_stops_beyond_the_edge():
    brush = Brush.preset("sharpie")
    model = AnalyticStrokeModel(brush)
    frame = model.frame
    xy = frame.grid()
    length, bend = 0.02, 0.006
    m = model(torch.tensor([length]), torch.tensor([bend]), torch.tensor([1.0]))[0]
    # Apex of the arch: x = L/2, y = -3/4 bend (positive bend arches towards -y).
    col = int(torch.argmin((xy[0, :, 0] - length / 2).abs()))
    row = int(torch.argmax(m[:, col]))
    assert float(xy[row, col, 1]) == pytest.approx(-0.75 * bend, abs=frame.m_per_px)
    assert float(m[row, col]) == pytest.approx(brush.max_opacity, abs=0.02)
    # Compact support: nothing beyond width/2 + EDGE_CUTOFF * softness of the path.
    reach = brush.max_width_m / 2 + EDGE_CUTOFF * brush.softness_m
    box = model.support(torch.tensor([length]), torch.tensor([bend]), torch.tensor([1.0]))[0]
    assert box.tolist() == pytest.approx([-reach, length + reach, -0.75 * bend - reach, reach])
    outside = (xy[..., 0] < box[0]) | (xy[..., 0] > box[1]) | (xy[..., 1] > box[3])
    assert float(m[outside].max()) == 0.0


def test_any_resolution_is_the_same_stroke():
    model = AnalyticStrokeModel(Brush.preset("round"))
    shape = (torch.tensor([0.04]), torch.tensor([-0.01]), torch.tensor([0.7]))
    fine = model(*shape, model.frame.at(0.0001))
    coarse = model(*shape, model.frame.at(0.0004))
    ink_fine = float(fine.sum()) * 0.0001**2
    ink_coarse = float(coarse.sum()) * 0.0004**2
    assert ink_coarse == pytest.approx(ink_fine, rel=0.03)


def test_untrained_learned_model_equals_analytic_and_is_trainable():
    brush = Brush.preset("sharpie")
    analytic, learned = AnalyticStrokeModel(brush), LearnedStrokeModel(brush)
    shape = (torch.tensor([0.01, 0.03]), torch.tensor([0.002, -0.008]), torch.tensor([0.2, 0.9]))
    assert torch.allclose(analytic(*shape), learned(*shape), atol=0.02)
    learned(*shape).sum().backward()
    assert all(p.grad is not None for p in learned.parameters())


@pytest.mark.parametrize("cls", [AnalyticStrokeModel, LearnedStrokeModel])
def test_save_load_round_trip(tmp_path, cls):
    model = cls(Brush.preset("round"))
    if cls is LearnedStrokeModel:
        with torch.no_grad():
            for p in model.mlp.parameters():
                p.add_(0.05 * torch.randn_like(p))
    model.save(tmp_path / "m")
    back = load_stroke_model(tmp_path / "m")
    assert type(back) is cls and back.brush == model.brush and back.frame == model.frame
    shape = (torch.tensor([0.03]), torch.tensor([0.004]), torch.tensor([0.5]))
    assert torch.equal(model(*shape), back(*shape))


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.json is missing"):
        load_stroke_model(tmp_path)
    (tmp_path / "config.json").write_text("{oops")
    with pytest.raises(ValueError, match="invalid JSON"):
        load_stroke_model(tmp_path)
    frame = StrokeFrame(0, 1, 0, 1, 2, 2).__dict__
    cfg = {"type": "gan", "brush": Brush().to_dict(), "frame": frame}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="unknown stroke model type 'gan'"):
        load_stroke_model(tmp_path)
