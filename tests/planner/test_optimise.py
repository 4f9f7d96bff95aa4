"""Planning: the optimised plan beats its initialisation, within the robot's limits."""

from __future__ import annotations

import math

import pytest
import torch

from planner import Cancelled, Planner, PlannerConfig
from tests.planner.conftest import fast_config, two_blocks


def test_plan_gets_closer_to_target_than_its_initialisation(planned):
    _, _target, plan, report = planned
    assert report.loss_final < 0.5 * report.loss_init
    assert report.loss_final < 0.5 * report.loss_canvas
    assert len(plan) == 40 and report.steps == 55
    assert report.seconds > 0 and report.estimated_seconds > 0


def test_every_stroke_is_a_palette_paint_within_the_brush_and_margin(planned):
    _planner, _, plan, _ = planned
    s, brush, canvas = plan.strokes, plan.brush, plan.canvas
    assert torch.equal(s.color, plan.palette.colors[s.palette_index])
    for path in plan.paths():
        assert any(torch.equal(path.color, c) for c in plan.palette.colors)
    tol = 1e-6
    assert bool((s.length >= brush.min_length_m - tol).all())
    assert bool((s.length <= brush.max_length_m + tol).all())
    assert bool((s.bend.abs() <= brush.max_bend_m + tol).all())
    assert bool(((s.pressure >= 0) & (s.pressure <= 1)).all())
    m = plan.margin_m
    assert bool((s.position >= m - tol).all())
    assert bool((s.position[:, 0] <= canvas.width_m - m + tol).all())
    assert bool((s.position[:, 1] <= canvas.height_m - m + tol).all())
    for path in plan.paths():  # waypoints too, not just the starts
        xy = path.points[:, :2]
        assert float(xy.min()) >= m - tol and float(xy[:, 0].max()) <= canvas.width_m - m + tol


def test_the_plan_uses_the_paints_the_target_needs(planned):
    _, _, plan, report = planned
    names = {plan.palette.names[int(i)] for i in plan.strokes.palette_index.unique()}
    assert {"red", "blue"} <= names
    assert report.paint_changes == report.colours_used == len(names)


def test_same_seed_same_plan_other_seed_other_plan(setup):
    canvas, brush, palette = setup
    target = two_blocks(canvas)
    cfg = fast_config(coarse_steps=8, fine_steps=3)
    a, _ = Planner(canvas, brush, palette, cfg).plan(None, target, strokes=12)
    b, _ = Planner(canvas, brush, palette, cfg).plan(None, target, strokes=12)
    c, _ = Planner(canvas, brush, palette, fast_config(coarse_steps=8, fine_steps=3, seed=1)).plan(
        None, target, strokes=12
    )
    assert a.strokes.to_json() == b.strokes.to_json()
    assert a.order == b.order and a.steps == b.steps
    assert not torch.equal(a.strokes.position, c.strokes.position)


def test_progress_is_reported_and_cancellation_stops(setup):
    canvas, brush, palette = setup
    planner = Planner(canvas, brush, palette, fast_config(coarse_steps=30, fine_steps=5))
    seen = []
    with pytest.raises(Cancelled):
        planner.plan(
            None,
            two_blocks(canvas),
            strokes=8,
            on_progress=seen.append,
            should_stop=lambda: len(seen) >= 2,
        )
    assert [i["phase"] for i in seen] == ["coarse", "coarse"]
    assert all(math.isfinite(i["loss"]) and i["total"] == 30 for i in seen)


def test_a_differentiable_scorer_steers_a_text_only_plan(setup):
    canvas, brush, palette = setup
    prompts = []

    def redness(images: torch.Tensor, prompt: str) -> torch.Tensor:
        prompts.append(prompt)
        assert images.dim() == 4 and images.shape[1] == 3
        r, g, b = images.unbind(1)
        return (r - 0.5 * (g + b)).mean((1, 2))  # (B,)

    cfg = fast_config(scorer_weight=1.0, coarse_steps=25, fine_steps=5)
    plan, _report = Planner(canvas, brush, palette, cfg, scorer=redness).plan(
        None, None, strokes=20, prompt="a red square"
    )
    assert prompts and set(prompts) == {"a red square"}
    names = [plan.palette.names[int(i)] for i in plan.strokes.palette_index]
    assert names.count("red") > len(names) / 2
    with pytest.raises(ValueError, match="target image, or a scorer and a prompt"):
        Planner(canvas, brush, palette, cfg).plan(None, None, strokes=5)


def test_bad_arguments_are_named(setup):
    canvas, brush, palette = setup
    planner = Planner(canvas, brush, palette, fast_config())
    with pytest.raises(ValueError, match="strokes must be a positive integer"):
        planner.plan(None, two_blocks(canvas), strokes=0)
    with pytest.raises(ValueError, match="keep_mask must have shape"):
        planner.plan(None, two_blocks(canvas), strokes=3, keep_mask=torch.zeros(10, 10))
    with pytest.raises(ValueError, match="temperature_end"):
        PlannerConfig(temperature_end=2.0)
    with pytest.raises(ValueError, match="coarse_px"):
        PlannerConfig(coarse_px=0)
