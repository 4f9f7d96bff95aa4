"""`cofrida demo`: the main job, offline, on a fresh machine.

Example:
    cofrida demo --out out/demo

Until the co-painting session with the edit model exists (issues 8 and 9), this runs one
simulated co-painting turn with everything else the project has: a scripted person draws a few
marker strokes on blank paper (the physical brush model), a procedural scene that keeps the
person's marks stands in for the model's proposal, the stroke planner plans additions only
(the person's marks are protected), and the physical brush paints the plan the way the robot
would. It writes the images, the plan and a summary, and prints the summary as JSON last.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from cofrida.data import SceneGenerator
from cofrida.session.images import write_png_atomic
from planner import Planner, PlannerConfig
from planner.execute import paint_plan
from sim import Brush, BrushPath, Canvas
from sim.palette import Palette
from sim.physical_brush import PhysicalBrush


def person_strokes(canvas: Canvas) -> list[BrushPath]:
    """The scripted person's turn: a wavy ground line and a small sun, in black marker."""
    w, h = canvas.width_m, canvas.height_m
    t = torch.linspace(0, 1, 40)
    wave = torch.stack([0.08 * w + 0.84 * w * t, 0.9 * h + 0.015 * torch.sin(12 * t)], -1)
    ring = torch.stack(
        [
            0.15 * w + 0.03 * torch.cos(2 * math.pi * t),
            0.18 * h + 0.03 * torch.sin(2 * math.pi * t),
        ],
        -1,
    )
    black = torch.zeros(3)
    return [BrushPath(torch.cat([xy, torch.full((40, 1), 0.8)], -1), black) for xy in (wave, ring)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cofrida demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    parser.add_argument("--strokes", type=int, default=200, help="the robot's stroke budget")
    parser.add_argument("--scene", type=int, default=3, help="procedural scene index")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="fewer optimisation steps (tests)")
    args = parser.parse_args(argv)
    if args.strokes < 1:
        parser.error("--strokes must be >= 1")
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    torch.manual_seed(args.seed)

    canvas = Canvas(0.2794, 0.2159, 256)
    brush, palette = Brush.preset("round"), Palette.preset("acrylic")

    # 1. The person's turn: marker strokes on blank paper.
    marker = PhysicalBrush(Brush.preset("sharpie"), seed=args.seed)
    person = marker.paint_many(torch.ones(3, *canvas.size_px), person_strokes(canvas), canvas)

    # 2. What the painting should become: a scene that keeps the person's marks (the edit model
    #    will propose this; today a procedural scene stands in for it).
    scene = SceneGenerator(palette, size=canvas.size_px, seed=args.seed).generate(args.scene)
    target = torch.from_numpy(scene.image).permute(2, 0, 1).float() / 255
    marked = (person < 0.6).any(0)
    target = torch.where(marked, person, target)

    # 3. The robot's turn: plan additions only, then paint them with the physical brush.
    config = PlannerConfig(seed=args.seed)
    if args.quick:
        config = PlannerConfig(seed=args.seed, coarse_steps=20, fine_steps=5)
    planner = Planner(canvas, brush, palette, config)

    def progress(info: dict) -> None:
        if info.get("step", 0) % 50 == 0 or info.get("step") == info.get("total"):
            print(f"  {info['phase']}: {info['step']}/{info['total']}", file=sys.stderr, flush=True)

    print(f"caption: {scene.caption}", flush=True)
    plan, report = planner.plan(person, target, strokes=args.strokes, on_progress=progress)
    painted = paint_plan(plan, person, seed=args.seed)
    simulated = planner.render(plan, person)

    images = {"person": person, "target": target, "simulated": simulated, "painted": painted}
    for name, image in images.items():
        write_png_atomic(image, args.out / f"{name}.png")
    write_png_atomic(torch.cat(list(images.values()), dim=2), args.out / "sheet.png")
    plan.save(args.out / "plan.json")
    summary = {
        "out": str(args.out.resolve()),
        "caption": scene.caption,
        "strokes": len(plan),
        "paint_changes": report.paint_changes,
        "loss_canvas": report.loss_canvas,
        "loss_final": report.loss_final,
        "painted_loss": float(((painted - target) ** 2).mean()),
        "preserved_fraction": report.preserved_fraction,
        "estimated_arm_minutes": round(report.estimated_seconds / 60, 1),
        "seconds": round(time.perf_counter() - start, 1),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out}/: person.png target.png simulated.png painted.png sheet.png plan.json")
    print(json.dumps(summary))
    return 0
