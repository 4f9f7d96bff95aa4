"""`cofrida calibrate`: sim-to-real calibration of the stroke model against real strokes.

Examples:
    # fit the learned stroke model to captured strokes; saved for (robot, brush) in the user
    # data directory, where the planner and data generation find it
    cofrida calibrate strokes --data ../shared/data/frida_sharpie_strokes.npz --brush sharpie
    cofrida calibrate strokes --data strokes.npz --out calib/ --steps 300   # into a folder

    # the gap report of a saved model (and the analytic default) on any stroke dataset
    cofrida calibrate eval --model calib/ --data ../shared/data/frida_sharpie_strokes.npz

    # bring a FRIDA stroke library (stroke_intensities*.npy + stroke_parameters*.npy)
    cofrida calibrate import-frida caches/sharpie/stroke_library \\
        --canvas-width-m 0.2159 --canvas-height-m 0.2794 --out strokes.npz

Every sub-command prints one JSON object as its last line. A fit reports progress on stderr;
Ctrl-C stops it and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch

from cofrida.commands._output import prepare_output_dir, write_error_message
from sim import AnalyticStrokeModel, Brush, load_stroke_model
from sim.brush import BRUSH_PRESETS
from sim.calibration_store import calibration_dir, save_calibration
from sim.gap_report import gap_report, ink_darkness, predict_darkness, save_comparison
from sim.stroke_dataset import import_frida_library, load_stroke_dataset, save_stroke_dataset
from sim.stroke_fit import FitConfig, clean_captures, fit_stroke_model, held_out_gap

PICTURE_STROKES = 12  # strokes in the real | analytic | fitted picture


def _progress(info: dict) -> None:
    print(
        f"[{info['stage']}] step {info['step']}/{info['steps']} loss {info['loss']:.5f} "
        f"val {info['val_loss']:.5f}",
        file=sys.stderr,
        flush=True,
    )


def _picture(data, index, real, models: dict, ink: float, path: Path) -> None:
    """real | analytic | fitted for up to PICTURE_STROKES strokes spread over `index`."""
    pick = np.linspace(0, len(index) - 1, min(PICTURE_STROKES, len(index))).round().astype(int)
    sel = np.asarray(index)[pick]
    panels = [real[torch.as_tensor(pick)]]
    panels += [predict_darkness(m, data, sel, ink) for m in models.values()]
    save_comparison(path, panels)


def _summary(gap: dict) -> dict:
    return {k: v for k, v in gap.items() if k != "per_stroke"}


def _load_data(path: Path):
    """The stroke dataset at `path`; a truncated or corrupt file is a ValueError."""
    try:
        return load_stroke_dataset(path)
    except (zipfile.BadZipFile, EOFError, KeyError) as e:
        raise ValueError(
            f"cannot read {path}: the file is truncated or not a stroke dataset .npz ({e})"
        ) from None
    except OSError as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"cannot read {path}: {e.strerror or e}") from None


def _strokes(args) -> int:
    data = _load_data(args.data)
    brush = Brush.preset(args.brush)
    # Where the fit goes is checked now, not after minutes of fitting.
    if args.out is not None:
        prepare_output_dir(args.out)
    else:
        prepare_output_dir(calibration_dir(brush.name, args.robot, False).parent, "calibration")
    cfg = FitConfig(
        steps=args.steps, warmup_steps=args.warmup_steps, batch_size=args.batch_size,
        val_fraction=args.val_fraction, test_fraction=args.test_fraction, seed=args.seed,
    )  # fmt: skip
    print(f"fitting {len(data)} strokes from {args.data} (brush {brush.name})", file=sys.stderr)
    try:
        result = fit_stroke_model(data, brush, cfg, on_progress=_progress)
    except KeyboardInterrupt:
        print("stopped: nothing was saved", file=sys.stderr)
        return 130
    report = result.report
    for index, why in report["rejected"].items():
        print(f"rejected stroke {index}: {why}", file=sys.stderr)
    gap = held_out_gap(result, data, brush) if len(result.split["test"]) else {}
    info = {"data": str(args.data), "robot": args.robot, **report, "gap": _summary(gap)}

    def write_picture(folder: Path) -> None:
        if gap:
            test = result.split["test"]
            models = {"analytic": AnalyticStrokeModel(brush), "fitted": result.model}
            real = result.cleaned[torch.as_tensor(test)]
            _picture(data, test, real, models, report["ink_darkness"], folder / "gap.png")

    folder = save_calibration(result.model, info, args.robot, args.out, write_picture)
    print(f"saved the calibration to {folder}", file=sys.stderr)
    rejected = sorted(map(int, report["rejected"]))
    fit_seconds = round(report["fit_seconds"], 1)
    print(json.dumps({"saved": str(folder), "rejected": rejected, "fit_seconds": fit_seconds,
                      **_summary(gap)}))  # fmt: skip
    return 0


def _eval(args) -> int:
    folder = Path(args.model)
    if not (folder / "config.json").is_file() and (folder / "stroke_model").is_dir():
        folder = folder / "stroke_model"
    model = load_stroke_model(folder)
    name = model.brush.name
    brush = Brush.preset(name) if name in BRUSH_PRESETS else model.brush
    data = _load_data(args.data)
    cleaned, _ = clean_captures(data, brush)
    index = np.arange(len(data))
    ink = ink_darkness(cleaned)
    models = {"analytic": AnalyticStrokeModel(brush), "fitted": model}
    gap = gap_report(models, data, cleaned, index, ink)
    if args.picture:
        _picture(data, index, cleaned, models, ink, args.picture)
    summary = _summary(gap)
    out = {"iou": summary["iou_fitted"], "l1": summary["l1_fitted"], **summary}
    print(json.dumps(out))
    return 0


def _import_frida(args) -> int:
    prepare_output_dir(Path(args.out).parent, "--out's")
    start = None if args.start_x_m is None else (args.start_x_m, args.start_y_m)
    data = import_frida_library(
        args.directory, args.canvas_width_m, args.canvas_height_m,
        meters_per_pixel=args.meters_per_pixel, start_m=start,
    )  # fmt: skip
    save_stroke_dataset(
        args.out, data.intensity, data.params, data.meters_per_pixel, data.start_xy_px,
        data.capture_file,
    )  # fmt: skip
    print(json.dumps({"out": str(args.out), "strokes": len(data),
                      "batches": len(np.unique(data.capture_file))}))  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cofrida calibrate", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="action", required=True)

    p = sub.add_parser("strokes", help="fit the stroke model to captured strokes")
    p.add_argument("--data", type=Path, required=True, help="stroke dataset .npz")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder to save into (default: the user data directory, per robot/brush)",
    )
    p.add_argument("--robot", default="default", help="robot name the calibration is saved for")
    p.add_argument(
        "--brush",
        default="sharpie",
        choices=sorted(BRUSH_PRESETS),
        help="brush preset the strokes were painted with",
    )
    defaults = FitConfig()
    p.add_argument("--steps", type=int, default=defaults.steps, help="full-fit steps at most")
    p.add_argument("--warmup-steps", type=int, default=defaults.warmup_steps)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--val-fraction", type=float, default=defaults.val_fraction)
    p.add_argument("--test-fraction", type=float, default=defaults.test_fraction)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("eval", help="gap report of a saved stroke model on a stroke dataset")
    p.add_argument("--model", type=Path, required=True, help="stroke model or calibration folder")
    p.add_argument("--data", type=Path, required=True, help="stroke dataset .npz")
    p.add_argument("--picture", type=Path, default=None, help="write real|analytic|fitted PNG")

    p = sub.add_parser("import-frida", help="convert a FRIDA stroke library folder")
    p.add_argument("directory", type=Path, help="folder with stroke_intensities*.npy")
    p.add_argument("--canvas-width-m", type=float, required=True)
    p.add_argument("--canvas-height-m", type=float, required=True)
    p.add_argument("--out", type=Path, required=True, help="stroke dataset .npz to write")
    p.add_argument("--meters-per-pixel", type=float, default=0.000216, help="output resolution")
    p.add_argument(
        "--start-x-m",
        type=float,
        default=None,
        help="stroke start on the library canvas (default: its centre)",
    )
    p.add_argument("--start-y-m", type=float, default=None)

    args = parser.parse_args(argv)
    if args.action == "strokes":
        if args.steps < 0 or args.warmup_steps < 0 or args.batch_size < 1:
            parser.error("--steps and --warmup-steps must be >= 0, --batch-size >= 1")
        if not 0 <= args.val_fraction + args.test_fraction < 1:
            parser.error("--val-fraction + --test-fraction must be in [0, 1)")
    if args.action == "import-frida" and (args.start_x_m is None) != (args.start_y_m is None):
        parser.error("give both --start-x-m and --start-y-m, or neither")
    try:
        return {"strokes": _strokes, "eval": _eval, "import-frida": _import_frida}[args.action](
            args
        )
    except (FileNotFoundError, ValueError) as e:
        print(f"cofrida calibrate {args.action}: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        message = write_error_message(e, getattr(args, "out", None) or ".")
        print(f"cofrida calibrate {args.action}: {message}", file=sys.stderr)
        return 1
