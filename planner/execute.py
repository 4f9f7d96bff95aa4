"""Executing a plan in simulation: the physical brush paints the plan's paths, acting on their
``clean_before`` / ``dip_before`` flags the way an arm does. Used for previews, the CLI and
benchmarks (the executed painting's error is the plan's real-world quality).
"""

from __future__ import annotations

import torch

from planner.plan import Plan
from planner.progress import ProgressFn, StopFn, check_stop, report
from sim.physical_brush import PhysicalBrush


def paint_plan(
    plan: Plan,
    canvas_image: torch.Tensor | None = None,
    brush: PhysicalBrush | None = None,
    start: int = 0,
    stop_after: int | None = None,
    seed: int = 0,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> torch.Tensor:
    """Paint the plan from painting position `start` with a physical brush model.

    Args:
        canvas_image: (3, H, W) in 0..1 at the plan's canvas size; white if None.
        brush: the physical brush (keeps its paint state between calls); default a new one
            for the plan's brush with `seed`.
        start: first painting position to paint.
        stop_after: paint at most this many strokes (for closed-loop replanning).
    Returns:
        The painted (3, H, W) image (the input is not modified).
    """
    h, w = plan.canvas.size_px
    image = torch.ones(3, h, w) if canvas_image is None else canvas_image.detach().clone()
    brush = brush or PhysicalBrush(plan.brush, seed=seed)
    paths = plan.paths(start)
    if stop_after is not None:
        paths = paths[:stop_after]
    for k, path in enumerate(paths):
        check_stop(should_stop, "painting")
        if path.meta.get("clean_before"):
            brush.clean()
        if path.meta.get("dip_before") or brush.color is None:
            brush.dip(path.color)
        image = brush.paint(image, path, plan.canvas)
        if k % 20 == 0 or k == len(paths) - 1:
            report(on_progress, phase="painting", step=k + 1, total=len(paths))
    return image
