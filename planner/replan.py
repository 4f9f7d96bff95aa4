"""Closed-loop replanning: after part of a plan is painted, re-optimise the rest against the
canvas as it really is (captured), so later strokes fix what earlier ones missed.

The remaining strokes keep their paints (and so their colour groups); their geometry is
optimised at full size over the captured canvas, then they are re-ordered for travel.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from planner import copaint
from planner.images import load_image
from planner.objectives import Objective, mse
from planner.ordering import colour_groups, painting_order
from planner.plan import Plan
from sim import Strokes

if TYPE_CHECKING:
    from planner.optimise import Planner, PlanReport


def replan_remaining(
    planner: Planner, plan: Plan, done: int, canvas_image, target, keep_mask, steps, prompt,
    on_progress, should_stop,
) -> tuple[Plan, PlanReport]:  # fmt: skip
    """See `Planner.replan`."""
    start_time = time.perf_counter()
    if not (isinstance(done, int) and 0 <= done <= len(plan)):
        raise ValueError(f"replan: done must be an integer in 0..{len(plan)}, got {done!r}")
    if plan.canvas != planner.canvas:
        raise ValueError(f"replan: the plan is for {plan.canvas}, the planner for {planner.canvas}")
    c = planner.config
    canvas_image = load_image(canvas_image, planner.canvas, "canvas image")
    target = load_image(target, planner.canvas, "target")
    if keep_mask is None:
        # The person's work stays protected, the robot's own strokes (painted so far) do not:
        # remaining strokes may overlap them to close gaps, as they were planned to.
        keep_mask = copaint.keep_mask(canvas_image, target, c.paper_delta_e, c.agree_delta_e)
        with torch.no_grad():
            _, own = planner.renderer.render(
                plan.ordered_strokes()[:done], canvas_image, return_coverage=True
            )
        keep_mask = keep_mask & (own < 0.05)
    keep = planner._keep(keep_mask, canvas_image, target)
    rest = plan.ordered_strokes(done)  # grouped by colour already
    if len(rest) == 0:
        raise ValueError("replan: every stroke of the plan is painted; nothing to replan")
    index = rest.palette_index
    colors = planner.palette.colors[index]
    loss_init = mse(planner._render_fixed(rest, colors, canvas_image), target)
    keep_w = None if keep is None else copaint.soften(keep, planner.canvas.size_px)
    objective = Objective(target, c, planner.scorer, prompt, keep_w)
    params = {
        k: getattr(rest, k).detach().clone().requires_grad_(True)
        for k in ("position", "angle", "length", "bend", "pressure")
    }
    history: list[float] = []
    planner._run(
        "replan", c.fine_steps if steps is None else steps,
        lambda step: Strokes(**params, color=colors), params, None, planner.renderer,
        canvas_image, objective, history, on_progress, should_stop,
    )  # fmt: skip
    with torch.no_grad():
        final = Strokes(
            **{k: v.detach() for k, v in params.items()}, color=colors, palette_index=index
        ).clamp(planner.brush, planner.canvas, c.margin_m)
        order = painting_order(final, colour_groups(index))
        painting, coverage = planner.renderer.render(
            final[torch.tensor(order)], canvas_image, return_coverage=True
        )
        objective_final, _ = objective(painting, coverage)
    new_plan = Plan(
        plan.canvas, plan.brush, plan.palette, final, order, plan.dip_every, plan.margin_m,
        meta={**plan.meta, "replanned_after": done},
    )  # fmt: skip
    return new_plan, planner._report(
        new_plan, canvas_image, target, painting, keep, loss_init, float(objective_final),
        history, start_time,
    )  # fmt: skip
