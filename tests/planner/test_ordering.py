"""Ordering: colour groups, short travel, dips and cleans, resuming by stroke index."""

from __future__ import annotations

import math

import pytest
import torch

from planner import ArmSpeeds, Plan
from planner.ordering import endpoints, painting_order, travel_m, two_opt
from sim import Brush, Canvas, Strokes
from sim.palette import Palette


def grid_plan(dip_every: int = 3, seed: int = 0) -> Plan:
    """36 short strokes on a 6x6 grid in a shuffled order, three paints mixed at random."""
    canvas = Canvas(0.3, 0.3, 64, 64)
    g = torch.Generator().manual_seed(seed)
    xs = torch.linspace(0.03, 0.25, 6)
    pos = torch.cartesian_prod(xs, xs)[torch.randperm(36, generator=g)]
    n = pos.shape[0]
    idx = torch.randint(0, 3, (n,), generator=g)
    palette = Palette.preset("markers")
    s = Strokes(
        pos, torch.zeros(n), torch.full((n,), 0.01), torch.zeros(n), torch.full((n,), 0.5),
        palette.colors[idx], idx,
    )  # fmt: skip
    order = painting_order(s)
    return Plan(canvas, Brush.preset("round"), palette, s, order, dip_every, 0.0)


def test_ordering_cuts_travel_against_plan_order():
    plan = grid_plan()
    unordered = plan.travel_m(list(range(len(plan))))
    assert plan.travel_m() <= 0.6 * unordered  # >= 40 % less lifted travel


def test_two_opt_never_lengthens_a_route_and_untangles_a_crossing():
    pts = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    starts = ends = pts.numpy()  # dots: start == end
    crossed = [0, 1, 2, 3]  # diagonal, then back across: crosses itself
    better = two_opt(crossed, starts, ends, None)
    assert travel_m(better, starts, ends) < travel_m(crossed, starts, ends) - 0.5
    assert sorted(better) == crossed


def test_colours_are_contiguous_and_paint_changes_equal_colours_used():
    plan = grid_plan()
    paints = [int(plan.strokes.palette_index[i]) for i in plan.order]
    runs = [p for k, p in enumerate(paints) if k == 0 or p != paints[k - 1]]
    assert len(runs) == len(set(paints)) == plan.colours_used == plan.paint_changes


def test_paths_carry_clean_and_dip_flags_every_k_strokes():
    plan = grid_plan(dip_every=3)
    paths = plan.paths()
    assert [p.meta["stroke_index"] for p in paths] == plan.order
    since = 0
    for k, p in enumerate(paths):
        new_colour = k == 0 or p.palette_index != paths[k - 1].palette_index
        assert p.meta.get("clean_before", False) == new_colour
        if new_colour:
            since = 0
        assert p.meta.get("dip_before", False) == (since % 3 == 0)
        since += 1
        assert p.meta["paint"] == plan.palette.names[p.palette_index]


def test_resuming_mid_plan_starts_with_clean_and_dip():
    plan = grid_plan()
    rest = plan.paths(start=10)
    assert len(rest) == len(plan) - 10
    assert rest[0].meta["position"] == 10 and rest[0].meta["clean_before"]
    assert rest[0].meta["dip_before"]
    with pytest.raises(ValueError, match=r"start must be in 0\.\.36"):
        plan.paths(start=37)


def test_time_estimate_counts_strokes_travel_dips_and_cleans():
    plan = grid_plan(dip_every=3)
    slow = ArmSpeeds(travel_m_s=0.01, paint_m_s=0.01, lift_s=0, dip_s=0, clean_s=0)
    expected = (plan.travel_m() + 36 * 0.01) / 0.01
    assert math.isclose(plan.estimate_seconds(slow), expected, rel_tol=1e-3)
    dips = sum(s["op"] == "dip" for s in plan.steps)
    only_dips = ArmSpeeds(travel_m_s=1e9, paint_m_s=1e9, lift_s=0, dip_s=2.0, clean_s=0)
    assert math.isclose(plan.estimate_seconds(only_dips), 2.0 * dips, rel_tol=1e-6)
    starts, ends = endpoints(plan.strokes)
    assert math.isclose(plan.travel_m(), travel_m(plan.order, starts, ends))


def test_plan_rejects_unsnapped_strokes_and_bad_orders():
    plan = grid_plan()
    loose = plan.strokes.clone()
    loose.palette_index = None
    with pytest.raises(ValueError, match="snapped"):
        Plan(plan.canvas, plan.brush, plan.palette, loose, plan.order)
    with pytest.raises(ValueError, match="permutation"):
        Plan(plan.canvas, plan.brush, plan.palette, plan.strokes, [0] * len(plan))
