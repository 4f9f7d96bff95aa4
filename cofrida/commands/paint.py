"""`cofrida paint`: plan a target image into brush strokes and paint it in simulation.

Examples:
    cofrida paint --target photo.png --strokes 200 --out out/paint
    cofrida paint --target photo.png --canvas-image capture.png --out out/turn2   # co-painting
    cofrida paint --target photo.png --brush sharpie --palette sharpie --gcode --out out/plotter

The physical brush model executes the plan (dips and cleans included). Writes into --out:
``plan.json`` (resumable by stroke index), ``plan.svg``, ``target.png``, ``simulated.png`` (the
differentiable renderer's picture of the plan), ``painted.png`` (the physical brush's),
``preview.gif`` (the plan being painted), ``plan.gcode`` with --gcode, and ``report.json``.
Progress goes to stderr; Ctrl-C stops cleanly with nothing half-written. The last line on
stdout is one JSON object.

``--prompt`` needs a differentiable scorer (``--scorer module:function`` returning
``scorer(images (B, 3, H, W), prompt) -> (B,)``); without one the prompt is only recorded.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

import torch

from cofrida.commands._output import prepare_output_dir, write_error_message
from planner import GcodeConfig, Planner, PlannerConfig, load_image
from planner.animation import plan_frames, save_animation
from planner.execute import paint_plan
from planner.objectives import mse
from planner.progress import Cancelled
from sim import Brush, Canvas
from sim.brush import BRUSH_PRESETS
from sim.calibration_store import find_calibrated_stroke_model
from sim.palette import PALETTE_PRESETS, Palette

MAX_CANVAS_M = 2.0  # m, either side: larger than any arm's reach; a 1x5000 px target made 1250 m
MAX_PX = 2048  # planning width (px); the planner's memory grows with its square
MAX_IMAGE_SIDE_PX = 8192  # larger image files are refused before decoding them


def image_size(path: Path, what: str) -> tuple[int, int] | None:
    """(width, height) px of an image file from its header, without decoding it; None when it
    is missing or unreadable (`load_image` reports that with its own message).

    Raises:
        ValueError: a side is over `MAX_IMAGE_SIDE_PX` px.
    """
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        return None
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # the header only: safe
    try:
        with Image.open(path) as img:
            w, h = img.size
    except (UnidentifiedImageError, OSError, SyntaxError):
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    if max(w, h) > MAX_IMAGE_SIDE_PX:
        raise ValueError(
            f"the {what} image {path} is {w}x{h} px; the largest side allowed is "
            f"{MAX_IMAGE_SIDE_PX} px: shrink it first"
        )
    return w, h


def _scorer(spec: str):
    module, _, name = spec.partition(":")
    if not module or not name:
        raise ValueError(f"--scorer must be 'module:function', got {spec!r}")
    return getattr(importlib.import_module(module), name)


def _write_png(image: torch.Tensor, path: Path) -> None:
    from PIL import Image

    arr = (image.detach().clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8")
    tmp = path.with_name(f".{path.name}.tmp.png")
    Image.fromarray(arr).save(tmp)
    tmp.replace(path)


def _progress(info: dict) -> None:
    if info.get("phase") in ("coarse", "fine", "replan", "painting"):
        loss = f" loss {info['loss']:.4f}" if "loss" in info else ""
        print(f"  {info['phase']:8s} {info['step']:4d}/{info['total']}{loss}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cofrida paint", description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=Path, help="image to paint (PNG/JPEG)")
    parser.add_argument("--prompt", default="", help="text for the scorer (needs --scorer)")
    parser.add_argument("--scorer", default=None, help="module:function of an image-text scorer")
    parser.add_argument("--canvas-image", type=Path, default=None, help="current canvas photo")
    parser.add_argument("--strokes", type=int, default=200, help="stroke budget")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--brush", default="round", choices=sorted(BRUSH_PRESETS))
    parser.add_argument("--palette", default="acrylic", choices=sorted(PALETTE_PRESETS))
    parser.add_argument("--width-m", type=float, default=0.25, help="canvas width (m)")
    parser.add_argument("--height-m", type=float, default=None, help="default: target aspect")
    parser.add_argument("--px", type=int, default=256, help="planning width in pixels")
    parser.add_argument("--coarse-steps", type=int, default=PlannerConfig.coarse_steps)
    parser.add_argument("--fine-steps", type=int, default=PlannerConfig.fine_steps)
    parser.add_argument("--gcode", action="store_true", help="also write plan.gcode (GRBL)")
    parser.add_argument("--no-animation", action="store_true", help="skip preview.gif")
    parser.add_argument(
        "--robot", default="default", help="whose stroke calibration to use (user data dir)"
    )
    parser.add_argument(
        "--analytic", action="store_true", help="ignore any calibrated stroke model"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_flush_denormal(True)
    if args.strokes < 1:
        parser.error("--strokes must be >= 1")
    if args.target is None and not (args.prompt and args.scorer):
        parser.error("give --target, or --prompt with --scorer")
    if not 16 <= args.px <= MAX_PX:
        parser.error(f"--px must be 16..{MAX_PX}")
    if args.coarse_steps < 0 or args.fine_steps < 0:
        parser.error("--coarse-steps and --fine-steps must be >= 0")
    for option, value in (("--width-m", args.width_m), ("--height-m", args.height_m)):
        if value is not None and not 0.01 <= value <= MAX_CANVAS_M:
            parser.error(f"{option} must be 0.01..{MAX_CANVAS_M} m, got {value}")
    if args.prompt and not args.scorer:
        print("note: no --scorer given; the prompt is recorded, not optimised", file=sys.stderr)
    start = time.perf_counter()
    try:
        # Sizes, inputs and the output folder are checked before any work starts.
        target_size = image_size(args.target, "target") if args.target else None
        if args.canvas_image is not None:
            image_size(args.canvas_image, "canvas")
        height_m = args.height_m
        if height_m is None and target_size is not None:
            w, h = target_size
            height_m = args.width_m * h / w
            if not 0.01 <= height_m <= MAX_CANVAS_M:
                raise ValueError(
                    f"the target is {w}x{h} px: at --width-m {args.width_m} the canvas would be "
                    f"{height_m:.3g} m tall (0.01..{MAX_CANVAS_M} m allowed); crop the target "
                    "or give --height-m"
                )
        canvas = Canvas(args.width_m, height_m or args.width_m, args.px)
        config = PlannerConfig(
            coarse_steps=args.coarse_steps, fine_steps=args.fine_steps, seed=args.seed
        )
        scorer = _scorer(args.scorer) if args.scorer else None
        stroke_model = None
        if not args.analytic:
            stroke_model = find_calibrated_stroke_model(args.brush, args.robot)
        print(
            "stroke model: "
            + ("analytic" if stroke_model is None else f"calibrated ({args.robot}/{args.brush})"),
            file=sys.stderr,
        )
        planner = Planner(
            canvas,
            Brush.preset(args.brush),
            Palette.preset(args.palette),
            config,
            stroke_model=stroke_model,
            scorer=scorer,
        )
        target = load_image(args.target, canvas) if args.target else None
        canvas_image = (
            load_image(args.canvas_image, canvas, "canvas image") if args.canvas_image else None
        )
        prepare_output_dir(args.out)  # the inputs are good: now the destination, still early
        print(
            f"planning {args.strokes} strokes at {canvas.width_px}x{canvas.height_px} px",
            file=sys.stderr,
        )
        plan, report = planner.plan(
            canvas_image, target, strokes=args.strokes, prompt=args.prompt, on_progress=_progress
        )
        plan.meta["prompt"] = args.prompt
        background = canvas_image if canvas_image is not None else torch.ones(3, *canvas.size_px)
        painted = paint_plan(plan, background, seed=args.seed, on_progress=_progress)
        simulated = planner.render(plan, background)
        frames = None if args.no_animation else plan_frames(plan, background, frames=24)
    except (ValueError, FileNotFoundError) as e:
        print(f"cofrida paint: {e}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print("cofrida paint: stopped; nothing written", file=sys.stderr)
        return 130
    # Write everything only once planning and painting succeeded.
    try:
        _write_outputs(args, plan, target, simulated, painted, frames, report, start)
    except OSError as e:
        print(f"cofrida paint: {write_error_message(e, args.out)}", file=sys.stderr)
        return 1
    return 0


def _write_outputs(args, plan, target, simulated, painted, frames, report, start) -> None:
    plan.save(args.out / "plan.json")
    (args.out / "plan.svg").write_text(plan.to_svg())
    if args.gcode:
        (args.out / "plan.gcode").write_text(plan.to_gcode(GcodeConfig()))
    if target is not None:
        _write_png(target, args.out / "target.png")
    _write_png(simulated, args.out / "simulated.png")
    _write_png(painted, args.out / "painted.png")
    if frames is not None:
        save_animation(frames, args.out / "preview.gif")
    summary = {k: v for k, v in report.to_dict().items() if k != "history"}
    if target is not None:
        summary["executed_loss"] = mse(painted, target)
    summary["out"] = str(args.out.resolve())
    summary["total_seconds"] = round(time.perf_counter() - start, 2)
    (args.out / "report.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
