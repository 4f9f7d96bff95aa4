"""The differentiable renderer: gradients, geometry, and agreement with the reference."""

import math

import pytest
import torch

from sim import (
    AnalyticStrokeModel,
    Brush,
    Canvas,
    LearnedStrokeModel,
    ReferenceRenderer,
    Renderer,
    Strokes,
)
from sim.compositing import composite

PARAMS = ("position", "angle", "length", "bend", "pressure", "color")


def _one_stroke(x, y, angle, length=0.02, bend=0.0, pressure=1.0):
    return Strokes(
        position=torch.tensor([[x, y]]),
        angle=torch.tensor([angle]),
        length=torch.tensor([length]),
        bend=torch.tensor([bend]),
        pressure=torch.tensor([pressure]),
        color=torch.zeros(1, 3),
    )


def test_gradients_reach_every_stroke_parameter():
    canvas = Canvas(0.1, 0.1, 64)
    brush = Brush.preset("round")
    s = Strokes.random(12, brush, canvas, torch.Generator().manual_seed(3))
    for name in PARAMS:
        getattr(s, name).requires_grad_(True)
    target = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    image = Renderer(canvas, AnalyticStrokeModel(brush)).render(s)
    ((image - target) ** 2).mean().backward()
    for name in PARAMS:
        grad = getattr(s, name).grad
        assert grad is not None and bool(torch.isfinite(grad).all()), name
        assert float(grad.abs().sum()) > 0, f"no gradient reaches {name}"


@pytest.mark.parametrize("preset", ["sharpie", "round"])
def test_gradients_match_finite_differences(preset):
    canvas = Canvas(0.05, 0.05, 32)
    brush = Brush.preset(preset)
    s = Strokes.random(4, brush, canvas, torch.Generator().manual_seed(5)).to(dtype=torch.float64)
    renderer = Renderer(canvas, AnalyticStrokeModel(brush), tile=16)
    weights = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def loss(strokes):
        return (renderer.render(strokes, torch.full_like(weights, 0.5)) * weights).sum()

    for name in PARAMS:
        value = getattr(s, name).detach().clone().requires_grad_(True)
        setattr(s, name, value)
        loss(s).backward()
        for i in range(value.numel()):
            plus, minus = s.detach().clone(), s.detach().clone()
            getattr(plus, name).view(-1)[i] += 1e-7
            getattr(minus, name).view(-1)[i] -= 1e-7
            numeric = (loss(plus) - loss(minus)) / 2e-7
            assert torch.allclose(value.grad.view(-1)[i], numeric, rtol=0.01, atol=1e-3), (name, i)
        setattr(s, name, value.detach())


def test_compositing_backward_is_exact():
    g = torch.Generator().manual_seed(0)
    alpha = (torch.rand(6, 3, 4, 4, generator=g, dtype=torch.float64) * 0.95).requires_grad_()
    rgb = torch.rand(6, 3, 3, generator=g, dtype=torch.float64).requires_grad_()
    bg = torch.rand(3, 3, 4, 4, generator=g, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(composite, (alpha, rgb, bg))


@pytest.mark.parametrize("width_px", [128, 512])
@pytest.mark.parametrize("angle", [0.0, math.pi / 2, -2.5])
def test_stroke_lands_where_geometry_says(width_px, angle):
    canvas = Canvas(0.2, 0.15, width_px)
    brush = Brush.preset("sharpie")
    x, y, length = 0.1, 0.07, 0.03
    s = _one_stroke(x, y, angle, length)
    image = Renderer(canvas, AnalyticStrokeModel(brush)).render(s)
    ink = 1 - image.mean(0)  # (H, W)
    rows, cols = torch.meshgrid(
        torch.arange(ink.shape[0]) + 0.5, torch.arange(ink.shape[1]) + 0.5, indexing="ij"
    )
    centroid = torch.stack([(ink * cols).sum(), (ink * rows).sum()]) / ink.sum()
    mid = torch.tensor([x + length / 2 * math.cos(angle), y + length / 2 * math.sin(angle)])
    expected = canvas.m_to_px(mid)
    assert torch.allclose(centroid, expected, atol=1.0), (centroid, expected)
    # The ends: the painted extent along the stroke spans length + one width (round caps).
    direction = torch.tensor([math.cos(angle), math.sin(angle)])
    along = (torch.stack([cols, rows], -1) - expected) @ direction  # px along the chord
    painted = along[ink > 0.5]
    px_per_m = canvas.px_per_m[0]
    half = (length + brush.max_width_m) / 2 * px_per_m
    assert float(painted.max()) == pytest.approx(half, abs=1.0)
    assert float(painted.min()) == pytest.approx(-half, abs=1.0)


@pytest.mark.parametrize(
    "preset, model_cls, width_px, n",
    [
        ("sharpie", AnalyticStrokeModel, 128, 60),
        ("round", AnalyticStrokeModel, 200, 80),
        ("round", LearnedStrokeModel, 96, 40),
    ],
)
def test_fast_renderer_matches_per_stroke_reference(preset, model_cls, width_px, n):
    canvas = Canvas(0.2, 0.15, width_px)
    brush = Brush.preset(preset)
    model = model_cls(brush)
    if model_cls is LearnedStrokeModel:
        torch.manual_seed(0)
        with torch.no_grad():
            for p in model.mlp.parameters():
                p.add_(0.1 * torch.randn_like(p))
    g = torch.Generator().manual_seed(11)
    s = Strokes.random(n, brush, canvas, g)
    s.position = s.position * 1.2 - 0.01  # some strokes hang over the edges
    background = torch.rand(3, *canvas.size_px, generator=g)
    ours = Renderer(canvas, model, tile=16).render(s, background)
    ref = ReferenceRenderer(canvas, model).render(s, background)
    assert float((ours - ref).abs().max().detach()) <= 1e-3


def test_subsets_render_only_those_strokes():
    canvas = Canvas(0.1, 0.1, 64)
    brush = Brush.preset("round")
    s = Strokes.random(20, brush, canvas, torch.Generator().manual_seed(2))
    renderer = Renderer(canvas, AnalyticStrokeModel(brush))
    keep = torch.tensor([0, 3, 7, 19])
    assert torch.equal(renderer.render(s, subset=keep), renderer.render(s[keep]))
    mask = torch.zeros(20, dtype=torch.bool)
    mask[keep] = True
    assert torch.equal(renderer.render(s, subset=mask), renderer.render(s[keep]))
    empty = renderer.render(s, subset=torch.tensor([], dtype=torch.long))
    assert torch.equal(empty, torch.ones(3, 64, 64))


def test_coverage_marks_painted_pixels_only():
    canvas = Canvas(0.1, 0.1, 256)
    image, coverage = Renderer(canvas, AnalyticStrokeModel(Brush())).render(
        _one_stroke(0.02, 0.05, 0.0), return_coverage=True
    )
    assert coverage.shape == (256, 256)
    assert float(coverage[:, 115:].max()) == 0.0  # beyond the end: 0.04 m + 3.8 mm = 112 px
    assert float(coverage.max()) == pytest.approx(1.0, abs=5e-3)
    assert torch.allclose(1 - image.mean(0), coverage, atol=1e-5)  # black ink on white


def test_bad_background_is_refused():
    canvas = Canvas(0.1, 0.1, 64)
    renderer = Renderer(canvas, AnalyticStrokeModel(Brush()))
    with pytest.raises(ValueError, match=r"background must have shape \(3, 64, 64\)"):
        renderer.render(_one_stroke(0.02, 0.05, 0.0), torch.ones(3, 32, 32))
