"""Co-painting: the plan adds to the canvas and keeps the person's work the target keeps."""

from __future__ import annotations

import torch

from planner import Planner, keep_mask, preserved_fraction
from planner.execute import paint_plan
from tests.planner.conftest import fast_config, person_canvas, two_blocks


def _copaint_case(setup):
    canvas, brush, _palette = setup
    canvas_image = person_canvas(canvas, brush)
    painted = (canvas_image < 0.9).any(0)
    target = torch.where(painted[None], canvas_image, two_blocks(canvas))
    return canvas_image, target, painted


def test_keep_mask_protects_painted_pixels_the_target_keeps(setup):
    canvas_image, target, painted = _copaint_case(setup)
    mask = keep_mask(canvas_image, target)
    assert int(mask.sum()) > 50
    assert bool(painted[mask].all())  # only painted pixels are protected
    changed = target.clone()
    changed[:, mask] = torch.tensor([0.84, 0.12, 0.15])[:, None]  # the target repaints them red
    assert not bool(keep_mask(canvas_image, changed).any())


def test_plan_leaves_protected_pixels_untouched_and_still_paints(setup):
    canvas, brush, palette = setup
    canvas_image, target, _ = _copaint_case(setup)
    planner = Planner(canvas, brush, palette, fast_config())
    plan, report = planner.plan(canvas_image, target, strokes=40)
    mask = keep_mask(canvas_image, target)
    assert report.protected_pixels == int(mask.sum())
    assert report.preserved_fraction >= 0.98
    simulated = planner.render(plan, canvas_image)
    assert preserved_fraction(canvas_image, simulated, mask) == report.preserved_fraction
    assert float((simulated - canvas_image)[:, mask].abs().max()) < 0.1
    assert report.loss_final < 0.6 * report.loss_canvas  # it did paint the rest
    painted = paint_plan(plan, canvas_image)  # executed by the physical brush, too
    assert preserved_fraction(canvas_image, painted, mask) >= 0.95


def test_without_a_keep_mask_strokes_may_cover_the_persons_work(setup):
    canvas, brush, palette = setup
    canvas_image, target, _ = _copaint_case(setup)
    mask = keep_mask(canvas_image, target)
    # A target that wants the person's strokes gone (paper there): the plan must cover them.
    wiped = target.clone()
    wiped[:, mask] = 1.0
    red = wiped.clone()
    red[:, mask] = torch.tensor([0.84, 0.12, 0.15])[:, None]
    planner = Planner(canvas, brush, palette, fast_config())
    plan, report = planner.plan(canvas_image, red, strokes=40)
    assert report.protected_pixels == 0
    simulated = planner.render(plan, canvas_image)
    assert preserved_fraction(canvas_image, simulated, mask) < 0.5
