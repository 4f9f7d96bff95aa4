"""`cofrida demo`: the main job, offline, on a fresh machine.

Example:
    cofrida demo --out out/demo

Until the co-painting session exists (issue 9), this runs the best end-to-end thing the project
can do today: it draws a small procedural scene, fits a batch of brush strokes to it through the
differentiable renderer (a bare-bones stand-in for the stroke planner), snaps their colours to
the robot's paints, and has the physical brush model paint the strokes as the robot would. It
writes the target, the simulated and the "real" painting, a side-by-side sheet and the strokes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from sim import AnalyticStrokeModel, Brush, BrushPath, Canvas, Renderer, Strokes
from sim.palette import Palette
from sim.physical_brush import PhysicalBrush


def scene(canvas: Canvas) -> torch.Tensor:
    """A sun over a hill under a blue sky, (3, H, W) sRGB in 0..1."""
    h, w = canvas.size_px
    img = Image.new("RGB", (w, h), (250, 250, 245))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, w, int(0.55 * h)], fill=(70, 110, 190))
    d.ellipse(
        [int(0.62 * w), int(0.1 * h), int(0.82 * w), int(0.1 * h + 0.2 * w)], fill=(240, 200, 40)
    )
    d.ellipse([int(-0.2 * w), int(0.45 * h), int(0.9 * w), int(1.6 * h)], fill=(40, 130, 60))
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).float() / 255


def save_png(image: torch.Tensor, path: Path) -> None:
    arr = (image.detach().clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    tmp = path.with_suffix(".tmp.png")
    Image.fromarray(arr).save(tmp)
    tmp.replace(path)  # atomic: a stopped run never leaves half a file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cofrida demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    parser.add_argument("--strokes", type=int, default=300, help="stroke budget")
    parser.add_argument("--steps", type=int, default=150, help="optimisation steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.strokes < 1 or args.steps < 0:
        parser.error("--strokes must be >= 1 and --steps >= 0")
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    torch.manual_seed(args.seed)
    brush, palette = Brush.preset("round"), Palette.preset("acrylic")
    canvas = Canvas(0.2794, 0.2159, 128)
    target = scene(canvas)
    renderer = Renderer(canvas, AnalyticStrokeModel(brush))
    strokes = Strokes.random(args.strokes, brush, canvas, torch.Generator().manual_seed(args.seed))
    col, row = canvas.m_to_px(strokes.position).long().T  # start colours from the target
    strokes.color = target[
        :, row.clamp(max=canvas.size_px[0] - 1), col.clamp(max=canvas.width_px - 1)
    ].T
    params = [strokes.position, strokes.angle, strokes.length, strokes.bend, strokes.pressure]
    logits = palette.logits_from_colors(strokes.color).requires_grad_(True)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam([{"params": params, "lr": 0.002}, {"params": [logits], "lr": 0.1}])
    print(f"fitting {args.strokes} strokes to the scene ({args.steps} steps)...", flush=True)
    losses = []
    for step in range(args.steps):
        temperature = max(0.05, 1.0 - step / max(1, args.steps))
        strokes.color = palette.soft_assign(logits, temperature)
        loss = ((renderer.render(strokes) - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if step % 25 == 0 or step == args.steps - 1:
            print(f"  step {step:4d}  loss {losses[-1]:.4f}", flush=True)

    with torch.no_grad():
        index, _ = palette.snap(palette.soft_assign(logits, 0.05))
        final = Strokes(
            *(p.detach() for p in params), color=palette.colors[index], palette_index=index
        ).clamp(brush, canvas)
        big = canvas.at(256)
        simulated = Renderer(big, AnalyticStrokeModel(brush)).render(final)
        painted = PhysicalBrush(brush, seed=args.seed).paint_many(
            torch.ones(3, *big.size_px), BrushPath.from_strokes(final), big, dip_every=5
        )
        target_big = scene(big)
    sheet = torch.cat([target_big, simulated, painted], dim=2)
    for name, image in [
        ("target", target_big), ("simulated", simulated), ("painted", painted), ("sheet", sheet)
    ]:  # fmt: skip
        save_png(image, args.out / f"{name}.png")
    (args.out / "strokes.json").write_text(final.to_json())
    summary = {
        "out": str(args.out.resolve()),
        "strokes": len(final),
        "paints_used": int(index.unique().numel()),
        "loss_init": losses[0] if losses else None,
        "loss_final": losses[-1] if losses else None,
        "sim_vs_target_mse": float(((simulated - target_big) ** 2).mean()),
        "painted_vs_target_mse": float(((painted - target_big) ** 2).mean()),
        "sim_to_real_gap_mae": float((painted - simulated).abs().mean()),
        "seconds": round(time.perf_counter() - start, 1),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out}/: target.png simulated.png painted.png sheet.png strokes.json")
    print(json.dumps(summary))
    return 0
