"""`cofrida bench sim2real`: fit the stroke model to the shared real strokes, measure the gap.

Example:
    cofrida bench sim2real                      # full fit (~2-4 min on 2 CPU cores)
    cofrida bench sim2real --quick              # few steps, for a smoke test
    cofrida bench sim2real --picture gap.png    # also write real | analytic | fitted

Reads ``frida_sharpie_strokes.npz`` (360 real Sharpie strokes; ``--data`` or ../shared/data
beside the checkout), splits it with a fixed seed (70% train, 15% validation for early stopping,
15% held out), fits a `LearnedStrokeModel` (see `sim.stroke_fit`) and compares the analytic
default and the fitted model with the held-out real captures (see `sim.gap_report`: IoU of the
ink masks at darkness > 0.25, mean absolute darkness error, centroid and extent errors in mm).
Saves nothing in the user data directory. The last line is one JSON object.
Targets: ``iou_fitted`` >= 0.75 and ``fit_seconds`` < 600. ``iou_aligned_*`` is the IoU after
re-registering each capture by up to 2 px (see `sim.gap_report`); ``iou_*`` is strict.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from sim import AnalyticStrokeModel, Brush
from sim.gap_report import predict_darkness, save_comparison
from sim.stroke_dataset import load_stroke_dataset
from sim.stroke_fit import FitConfig, fit_stroke_model, held_out_gap

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cofrida bench sim2real", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA / "frida_sharpie_strokes.npz")
    parser.add_argument("--quick", action="store_true", help="few steps (smoke test)")
    parser.add_argument("--picture", type=Path, default=None, help="write real|analytic|fitted")
    args = parser.parse_args(argv)
    torch.set_flush_denormal(True)
    if not args.data.is_file():
        print(f"cofrida bench sim2real: no data at {args.data}", file=sys.stderr)
        return 2
    data = load_stroke_dataset(args.data)
    brush = Brush.preset("sharpie")
    cfg = FitConfig(steps=40, warmup_steps=20) if args.quick else FitConfig()

    def progress(info: dict) -> None:
        print(f"[{info['stage']}] {info['step']}/{info['steps']} val {info['val_loss']:.5f}",
              file=sys.stderr, flush=True)  # fmt: skip

    result = fit_stroke_model(data, brush, cfg, on_progress=progress)
    gap = held_out_gap(result, data, brush)
    report = result.report
    for index, why in report["rejected"].items():
        print(f"rejected stroke {index}: {why}")
    summary = {k: round(v, 4) if isinstance(v, float) else v for k, v in gap.items()
               if k != "per_stroke"}  # fmt: skip
    print("held-out gap (analytic -> fitted):")
    for key in ("iou", "iou_aligned", "l1", "centroid_mm", "extent_x_mm", "extent_y_mm"):
        print(f"  {key:12s} {summary[f'{key}_analytic']:.4f} -> {summary[f'{key}_fitted']:.4f}")
    if args.picture:
        test = result.split["test"][:: max(1, len(result.split["test"]) // 12)][:12]
        real = result.cleaned[torch.as_tensor(test)]
        ink = report["ink_darkness"]
        save_comparison(args.picture, [
            real, predict_darkness(AnalyticStrokeModel(brush), data, test, ink),
            predict_darkness(result.model, data, test, ink),
        ])  # fmt: skip
    out = {
        "strokes": len(data),
        "split": report["split"],
        "rejected": sorted(int(i) for i in report["rejected"]),
        "fit_steps": report["warmup"]["steps_run"] + report["fit"]["steps_run"],
        "fit_seconds": round(report["fit_seconds"], 1),
        **{k: v for k, v in summary.items() if k != "strokes"},
        "held_out_strokes": summary["strokes"],
    }
    print(json.dumps(out))
    return 0
