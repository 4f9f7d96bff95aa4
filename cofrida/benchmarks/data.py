"""`cofrida bench data`: training-data generation speed and painting quality on one CPU core.

Example:
    cofrida bench data                         # acrylic, 256x256, 100 strokes, 8 scenes
    cofrida bench data --profile sharpie --num 4
    cofrida bench data --coarse-steps 20       # see the speed / quality trade-off move

Runs `cofrida make-data`'s generation (`generate_shard`) in one process with one torch thread
over procedural scenes into a temporary folder: plan and render each painting, make its
partials, encode PNGs, write Parquet. Reports records and paintings per minute, bytes per
record on disk, seconds per painting and the mean painting loss (mean squared sRGB error of the
full painting against what it painted towards). Target: >= 20 paintings per minute per core.
On a shared machine, `paintings_per_cpu_min` (by this process's CPU time) is the per-core rate.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from cofrida.data.generate import DataConfig, generate_shard
from cofrida.data.painting import Painter
from cofrida.data.profiles import PROFILES, get_profile
from cofrida.data.scenes import SceneGenerator
from cofrida.data.sources import ProceduralSource
from sim.palette import Palette

TARGET_PAINTINGS_PER_MIN = 20.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cofrida bench data", description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="acrylic", choices=sorted(PROFILES))
    p.add_argument("--px", type=int, default=256, help="canvas width in pixels")
    p.add_argument("--strokes", type=int, default=100)
    p.add_argument("--num", type=int, default=8, help="paintings to make")
    p.add_argument("--partials", type=int, default=4)
    p.add_argument("--coarse-steps", type=int, default=None, help="override planner steps")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_flush_denormal(True)
    torch.set_num_threads(1)

    overrides: dict = {"canvas_px": args.px, "strokes": args.strokes}
    if args.coarse_steps is not None:
        overrides["planner"] = {"coarse_steps": args.coarse_steps}
    profile = get_profile(args.profile).with_overrides(**overrides)
    painter = Painter(profile)
    gen = SceneGenerator(Palette.preset(profile.scene_palette), painter.canvas.size_px, args.seed)
    painter.paint(gen.generate(10**6).image, 0)  # warm-up (first-call allocations), not timed
    source = ProceduralSource(gen, args.num)
    config = DataConfig(partials=args.partials, chunk=args.num)
    with tempfile.TemporaryDirectory(prefix="cofrida-bench-data-") as tmp:
        start, cpu_start = time.perf_counter(), time.process_time()
        result = generate_shard(source, painter, tmp, args.num, seed=args.seed, config=config)
        seconds = time.perf_counter() - start
        cpu_seconds = time.process_time() - cpu_start
        size = sum(f.stat().st_size for f in (Path(tmp) / "data").glob("*.parquet"))
    records, paintings = result["records"], result["paintings"]
    out = {
        "profile": profile.name,
        "px": args.px,
        "strokes": args.strokes,
        "coarse_px": profile.planner.coarse_px,
        "coarse_steps": profile.planner.coarse_steps,
        "fine_steps": profile.planner.fine_steps,
        "stroke_model": painter.stroke_model_kind,
        "threads": torch.get_num_threads(),
        "paintings": paintings,
        "records": records,
        "seconds": round(seconds, 2),
        "records_per_min": round(records / seconds * 60, 2),
        "paintings_per_min": round(paintings / seconds * 60, 2),
        "seconds_per_painting": round(seconds / max(1, paintings), 3),
        "bytes_per_record": round(size / max(1, records)),
        # CPU time of this process: what the rate would be on a core of its own when the
        # machine is shared (wall-clock rates then drop by the load factor).
        "cpu_seconds": round(cpu_seconds, 2),
        "paintings_per_cpu_min": round(paintings / cpu_seconds * 60, 2),
        "mean_loss": result["mean_loss"],
        "target_paintings_per_min": TARGET_PAINTINGS_PER_MIN,
    }
    out["target_met"] = out["paintings_per_min"] >= TARGET_PAINTINGS_PER_MIN
    print(
        f"{paintings} paintings, {records} records in {seconds:.1f} s: "
        f"{out['paintings_per_min']:.1f} paintings/min, {out['records_per_min']:.1f} records/min, "
        f"{out['bytes_per_record']} B/record, loss {out['mean_loss']:.4f}",
        flush=True,
    )
    print(json.dumps(out))
    return 0
