"""The stroke planner: from (canvas, target, robot limits) to an ordered, paintable `Plan`.

    planner = Planner(Canvas(0.25, 0.25, 256, 256), Brush.preset("round"),
                      Palette.preset("acrylic"), PlannerConfig(seed=0))
    plan, report = planner.plan(canvas_image, target, strokes=200, on_progress=print)
    paths = plan.paths()                 # sim.BrushPath list, painting order, dip/clean flags
    plan.save("plan.json"); plan.to_svg(); plan.to_gcode(GcodeConfig())
    plan, report = planner.replan(plan, done=100, canvas_image=photo, target=target)

Owns the objectives (pixel RGB/Lab multi-scale, gradient structure, any differentiable scorer,
keep-what-is-there), stroke optimisation through `sim.Renderer` (coarse-to-fine, palette soft
assignment then snapping), ordering (colour groups, nearest neighbour + 2-opt), paint and clean
steps, the time estimate, and export (JSON, SVG, G-code, GIF).
"""

from planner.config import ArmSpeeds, PlannerConfig
from planner.copaint import keep_mask, preserved_fraction
from planner.gcode import GcodeConfig, plan_to_gcode
from planner.images import load_image
from planner.objectives import Objective
from planner.optimise import Planner, PlanReport
from planner.plan import Plan
from planner.progress import Cancelled
from planner.svg import plan_to_svg

__all__ = [
    "ArmSpeeds",
    "Cancelled",
    "GcodeConfig",
    "Objective",
    "Plan",
    "PlanReport",
    "Planner",
    "PlannerConfig",
    "keep_mask",
    "load_image",
    "plan_to_gcode",
    "plan_to_svg",
    "preserved_fraction",
]
