"""`cofrida quantize`: W4A4-quantize an edit-model bundle's UNet (SVDQuant), calibrated on data.

Examples:
    # the shipped default bundle is made this way from the trained fp32 one
    cofrida quantize --model out/train/final --data-dir data/acrylic \\
        --out cofrida/assets/default_model

    # a smaller low-rank branch (smaller file, a little less accurate)
    cofrida quantize --model out/train/final --data-dir data/acrylic --out out/w4a4 --rank 16

    # an InstructPix2Pix-sized model on a CPU: 4 records of 2-step proposals, not 16 x 20
    cofrida quantize --model out/ip2p/final --data-dir data/acrylic --out out/ip2p-w4a4 \
        --records 4 --calibration-steps 2

Calibration runs the model's proposals on the first --records (partial canvas, caption) records
of the data, in --calibration-mode with --calibration-steps (default: the model's own). Before it
starts, stderr says how many UNet passes that is and about how long it will take (one pass is
timed). LoRA adapters are merged into the weights. Everything that is not 4-bit is stored in
16 bit (--dtype for the quantized layers' factors and scales). The last stdout line is one JSON
object (layers quantized, share of the UNet's weights in them, bundle MB, seconds, PSNR of the
W4A4 proposals against the full-precision ones on the calibration records, same settings).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from cofrida.commands import parser_from_doc
from cofrida.model.quantize import DEFAULT_GROUP_SIZE, DEFAULT_RANK


def build_parser() -> argparse.ArgumentParser:
    """The command's arguments."""
    p = parser_from_doc("cofrida quantize", __doc__)
    p.add_argument("--model", required=True, help="fp32 EditModel bundle folder")
    p.add_argument("--data-dir", required=True, help="shards for calibration (make-data layout)")
    p.add_argument("--out", required=True, help="folder for the W4A4 bundle")
    p.add_argument("--records", type=int, default=16, help="calibration records")
    p.add_argument("--rank", type=int, default=DEFAULT_RANK, help="low-rank branch rank")
    p.add_argument("--group-size", type=int, default=DEFAULT_GROUP_SIZE, help="int4 group size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--calibration-mode",
        choices=("one_step", "multi_step"),
        default=None,
        help="mode of the calibration proposals (default: the model's)",
    )
    p.add_argument(
        "--calibration-steps",
        type=int,
        default=None,
        help="sampler steps of multi-step calibration proposals (default: the model's)",
    )
    p.add_argument(
        "--dtype",
        choices=("bfloat16", "float16", "float32"),
        default="bfloat16",
        help="dtype of the low-rank factors and scales (float32 makes the bundle ~2x larger)",
    )
    p.add_argument(
        "--keep-convs",
        action="store_true",
        help="keep the k x k convolutions in full precision (quantized by default)",
    )
    return p


def folder_mb(folder: str | Path) -> float:
    """Size of every file under `folder`, in MB (10^6 bytes)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 1e6


def main(argv: list[str] | None = None) -> int:
    """Run ``cofrida quantize``; returns the exit code (2 for bad arguments or data)."""
    args = build_parser().parse_args(argv)
    if args.records < 1:
        print("cofrida quantize: --records must be >= 1", file=sys.stderr)
        return 2
    if args.calibration_steps is not None and args.calibration_steps < 1:
        print("cofrida quantize: --calibration-steps must be >= 1", file=sys.stderr)
        return 2
    import time

    import torch

    from cofrida.model import EditModel
    from cofrida.model.quantize import (
        calibration_passes,
        estimate_layer_seconds,
        quantize_edit_model,
        quantized_param_share,
        seconds_per_pass,
    )
    from cofrida.train.data import ShardDataset

    try:
        model = EditModel.from_pretrained(args.model)
        data = ShardDataset(args.data_dir, model.config.resolution)
        items = [data[i] for i in range(min(args.records, len(data)))]
        canvases = [it["partial"] for it in items]
        prompts = [it["caption"] for it in items]
        mode, steps = args.calibration_mode, args.calibration_steps
        overrides = {"mode": mode, "num_inference_steps": steps}
        if (mode or model.config.mode) == "one_step" and steps is not None:
            overrides["structure_steps"] = min(model.config.structure_steps, steps - 1)
        passes = calibration_passes(model, mode, steps)
        per_pass = seconds_per_pass(model, mode)
        layer_s = estimate_layer_seconds(model.unet, args.rank, not args.keep_convs)
        # three runs of the proposals: fp32 reference, calibration, W4A4 check
        estimate = 3 * len(items) * passes * per_pass + layer_s
        print(
            f"calibrating on {len(items)} records x {passes} UNet passes "
            f"({mode or model.config.mode}, {per_pass:.1f} s a pass), then quantizing the "
            f"layers: about {estimate / 60:.1f} min in all",
            file=sys.stderr,
            flush=True,
        )
        start = time.perf_counter()
        pairs = list(zip(canvases, prompts, strict=True))
        reference = [model.propose(c, p, n=1, seed=args.seed, **overrides) for c, p in pairs]
        layers = quantize_edit_model(
            model, canvases, prompts, args.rank, args.group_size, getattr(torch, args.dtype),
            seed=args.seed, mode=mode, steps=steps, convs=not args.keep_convs,
        )  # fmt: skip
    except (ValueError, FileNotFoundError) as e:
        print(f"cofrida quantize: {e}", file=sys.stderr)
        return 2
    quantized = [model.propose(c, p, n=1, seed=args.seed, **overrides) for c, p in pairs]
    seconds = time.perf_counter() - start
    errors = [(a - b).pow(2).mean() for a, b in zip(quantized, reference, strict=True)]
    mse = float(torch.stack(errors).mean())
    model.save_pretrained(args.out)
    result = {
        "layers": layers,
        "quantized_param_share": round(quantized_param_share(model.unet), 4),
        "rank": args.rank,
        "group_size": args.group_size,
        "bundle_mb": round(folder_mb(args.out), 3),
        "w4a4_vs_fp32_psnr_db": round(-10 * math.log10(max(mse, 1e-12)), 2),
        "seconds": round(seconds, 1),
        "estimated_seconds": round(estimate, 1),
        "out": str(args.out),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
