"""`cofrida quantize`: W4A4-quantize an edit-model bundle's UNet (SVDQuant), calibrated on data.

Examples:
    # the shipped default bundle is made this way from the trained fp32 one
    cofrida quantize --model out/train/final --data-dir data/acrylic \\
        --out cofrida/assets/default_model

    # a smaller low-rank branch (smaller file, a little less accurate)
    cofrida quantize --model out/train/final --data-dir data/acrylic --out out/w4a4 --rank 16

Calibration runs the model's proposals on the first --records (partial canvas, caption) records
of the data. The last stdout line is one JSON object (layers quantized, bundle MB, PSNR of the
W4A4 proposals against the fp32 ones on the calibration records).
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
    import torch

    from cofrida.model import EditModel
    from cofrida.model.quantize import quantize_edit_model
    from cofrida.train.data import ShardDataset

    try:
        model = EditModel.from_pretrained(args.model)
        data = ShardDataset(args.data_dir, model.config.resolution)
        items = [data[i] for i in range(min(args.records, len(data)))]
        canvases = [it["partial"] for it in items]
        prompts = [it["caption"] for it in items]
        print(f"calibrating on {len(items)} records ...", file=sys.stderr, flush=True)
        pairs = list(zip(canvases, prompts, strict=True))
        reference = [model.propose(c, p, n=1, seed=args.seed) for c, p in pairs]
        layers = quantize_edit_model(
            model, canvases, prompts, args.rank, args.group_size, seed=args.seed
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"cofrida quantize: {e}", file=sys.stderr)
        return 2
    quantized = [model.propose(c, p, n=1, seed=args.seed) for c, p in pairs]
    errors = [(a - b).pow(2).mean() for a, b in zip(quantized, reference, strict=True)]
    mse = float(torch.stack(errors).mean())
    model.save_pretrained(args.out)
    result = {
        "layers": layers,
        "rank": args.rank,
        "group_size": args.group_size,
        "bundle_mb": round(folder_mb(args.out), 3),
        "w4a4_vs_fp32_psnr_db": round(-10 * math.log10(max(mse, 1e-12)), 2),
        "out": str(args.out),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
