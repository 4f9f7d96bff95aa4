"""Closed loop: paint part of a plan, capture, re-optimise the rest against the real canvas."""

from __future__ import annotations

import pytest

from planner.execute import paint_plan
from planner.objectives import mse


def test_replanning_the_rest_against_the_painted_canvas(planned):
    planner, target, plan, _ = planned
    done = len(plan) // 2
    captured = paint_plan(plan, stop_after=done)  # the physical brush painted the first half
    as_planned = planner.render(plan, captured, start=done)
    new_plan, report = planner.replan(plan, done, captured, target, steps=15)
    assert len(new_plan) == len(plan) - done
    assert new_plan.meta["replanned_after"] == done
    replanned = planner.render(new_plan, captured)
    assert mse(replanned, target) <= mse(as_planned, target)
    assert report.loss_final == pytest.approx(mse(replanned, target), rel=1e-5)
    # the remaining strokes keep their paints
    old = sorted(int(plan.strokes.palette_index[i]) for i in plan.order[done:])
    assert sorted(new_plan.strokes.palette_index.tolist()) == old


def test_replan_rejects_a_finished_or_unknown_position(planned):
    planner, target, plan, _ = planned
    with pytest.raises(ValueError, match="nothing to replan"):
        planner.replan(plan, len(plan), target, target)
    with pytest.raises(ValueError, match="done must be an integer"):
        planner.replan(plan, -1, target, target)
