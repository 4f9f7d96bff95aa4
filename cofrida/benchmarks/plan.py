"""`cofrida bench plan`: plan 200 strokes to a 256x256 image on CPU, then paint the plan.

Example:
    cofrida bench plan              # both cases (~1-3 min on 2 CPU cores)
    cofrida bench plan --quick      # fewer strokes and steps, for a smoke test

Two cases, round brush and the acrylic palette on a 25 x 25 cm canvas:

1. Blank paper -> a fixed scene (sun, sky, hill; `scene` below). Reports the planning
   time, the loss (mean squared sRGB error vs the target) of the initial strokes and of the
   plan, the executed loss (the physical brush model painting the plan's paths, dips and
   cleans included), travel reduction against the optimiser's order, paint changes and the
   arm-time estimate.
2. Co-painting: a canvas with a person's strokes on it (painted by the physical brush) and a
   target that keeps them; reports the fraction of the person's pixels the plan preserves.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from PIL import Image, ImageDraw

from planner import Planner, PlannerConfig
from planner.execute import paint_plan
from planner.objectives import mse
from sim import Brush, BrushPath, Canvas, Strokes
from sim.palette import Palette
from sim.physical_brush import PhysicalBrush


def person_canvas(canvas: Canvas, brush: Brush, palette: Palette, n: int = 12, seed: int = 7):
    """White paper with `n` strokes a person painted (physical brush), (3, H, W)."""
    g = torch.Generator().manual_seed(seed)
    strokes = Strokes.random(n, brush, canvas, g, colors=palette.colors[[4, 2, 7]])
    strokes.position = strokes.position * 0.5 + torch.tensor([0.02, 0.11])  # lower left area
    strokes.pressure = torch.full((n,), 0.8)
    strokes = strokes.clamp(brush, canvas, 0.01)
    paths = BrushPath.from_strokes(strokes)
    return PhysicalBrush(brush, seed=seed).paint_many(
        torch.ones(3, *canvas.size_px), paths, canvas, dip_every=3
    )


def scene(canvas: Canvas) -> torch.Tensor:
    """The benchmark's target: a sun over a hill under a blue sky, (3, H, W) sRGB in 0..1."""
    h, w = canvas.size_px
    img = Image.new("RGB", (w, h), (250, 250, 245))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, w, int(0.55 * h)], fill=(70, 110, 190))
    sun = [int(0.62 * w), int(0.1 * h), int(0.82 * w), int(0.1 * h + 0.2 * w)]
    d.ellipse(sun, fill=(240, 200, 40))
    d.ellipse([int(-0.2 * w), int(0.45 * h), int(0.9 * w), int(1.6 * h)], fill=(40, 130, 60))
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cofrida bench plan", description=__doc__.splitlines()[0])
    parser.add_argument("--strokes", type=int, default=200)
    parser.add_argument("--px", type=int, default=256, help="canvas width and height in pixels")
    parser.add_argument("--quick", action="store_true", help="40 strokes, few steps (smoke test)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_flush_denormal(True)
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    config = PlannerConfig(seed=args.seed)
    n = args.strokes
    if args.quick:
        config = PlannerConfig(seed=args.seed, coarse_steps=30, fine_steps=10)
        n = min(n, 40)
    canvas = Canvas(0.25, 0.25, args.px, args.px)
    brush, palette = Brush.preset("round"), Palette.preset("acrylic")
    target = scene(canvas)
    planner = Planner(canvas, brush, palette, config)

    # 1. blank paper -> scene
    start = time.perf_counter()
    plan, rep = planner.plan(None, target, strokes=n)
    seconds = time.perf_counter() - start
    painted = paint_plan(plan, seed=args.seed)
    executed = mse(painted, target)
    print(
        f"plan: {n} strokes in {seconds:.1f} s, loss {rep.loss_init:.4f} -> {rep.loss_final:.4f}"
        f", executed {executed:.4f}, travel -{100 * rep.travel_reduction:.0f}%",
        flush=True,
    )

    # 2. co-painting: keep the person's strokes
    canvas_image = person_canvas(canvas, brush, palette)
    painted_px = (canvas_image < 0.9).any(0)
    copaint_target = torch.where(painted_px[None], canvas_image, target)
    start = time.perf_counter()
    _, rep2 = planner.plan(canvas_image, copaint_target, strokes=n)
    seconds2 = time.perf_counter() - start
    print(
        f"co-painting: {rep2.protected_pixels} protected px, preserved "
        f"{rep2.preserved_fraction:.4f}, loss {rep2.loss_init:.4f} -> {rep2.loss_final:.4f} "
        f"in {seconds2:.1f} s",
        flush=True,
    )
    result = {
        "strokes": n,
        "px": args.px,
        "threads": torch.get_num_threads(),
        "seconds": round(seconds, 2),
        "loss_canvas": rep.loss_canvas,
        "loss_init": rep.loss_init,
        "loss_final": rep.loss_final,
        "loss_ratio": rep.loss_final / rep.loss_init,
        "executed_loss": executed,
        "travel_unordered_m": rep.travel_unordered_m,
        "travel_ordered_m": rep.travel_ordered_m,
        "travel_reduction": rep.travel_reduction,
        "paint_changes": rep.paint_changes,
        "colours_used": rep.colours_used,
        "estimated_arm_seconds": round(rep.estimated_seconds, 1),
        "copaint_seconds": round(seconds2, 2),
        "protected_pixels": rep2.protected_pixels,
        "preserved_fraction": rep2.preserved_fraction,
        "copaint_loss_init": rep2.loss_init,
        "copaint_loss_final": rep2.loss_final,
    }
    print(json.dumps(result))
    return 0
