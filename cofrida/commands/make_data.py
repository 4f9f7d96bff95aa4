"""`cofrida make-data`: paint training data in simulation, sharded and resumable.

Examples:
    cofrida make-data --profile acrylic --num 1000 --out data/acrylic           # procedural
    cofrida make-data --source folder:my_paintings --profile sharpie --out data/mine
    cofrida make-data --source hf:user/dataset --text-column caption --num 5000 --out data/hf
    cofrida make-data --profile acrylic --num 10000 --shard 3/16 --out data/big   # one of 16
    accelerate launch --num_processes 16 -m cofrida make-data --num 10000 --out data/big
    sbatch --array=0-15 --wrap 'cofrida make-data --num 10000 \\
        --shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT --out data/big'

Each source image is painted by the planner within the robot profile's limits; strokes are then
removed to make `--partials` partial paintings per painting, and every (partial, full, caption)
pair is one record (`cofrida.data.shards` documents the columns). Records go into
``OUT/data/shard-*-part-*.parquet`` (`datasets.load_dataset("parquet", data_files=...)` reads
them) and ``OUT/manifest.json`` counts them, with skipped images by reason.

Sharding: ``--shard i/n`` takes the source indices with ``index % n == i``. Without it, under
``accelerate launch`` or ``torchrun`` (``RANK`` / ``WORLD_SIZE`` set) each process takes its
rank's share; otherwise one process does everything. Rerunning the same command skips finished
part files; Ctrl-C (or SIGTERM) stops after the current source with nothing half-written.
Progress goes to stderr; the last line on stdout is one JSON object with the counts.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

import torch

from cofrida.commands._output import prepare_output_dir, write_error_message
from cofrida.data.generate import DataConfig, generate_shard
from cofrida.data.painting import Painter
from cofrida.data.partials import KINDS
from cofrida.data.profiles import PROFILES, get_profile
from cofrida.data.sources import FolderSource, HFDatasetSource, ProceduralSource
from sim.palette import Palette


def parse_shard(spec: str | None, env: dict | None = None) -> tuple[int, int]:
    """(shard, num_shards) from ``i/n``, else from RANK / WORLD_SIZE, else (0, 1)."""
    env = os.environ if env is None else env
    if spec:
        try:
            i, n = (int(v) for v in spec.split("/"))
        except ValueError:
            raise ValueError(f"--shard must look like i/n (e.g. 3/16), got {spec!r}") from None
    elif "RANK" in env and "WORLD_SIZE" in env:
        i, n = int(env["RANK"]), int(env["WORLD_SIZE"])
    else:
        return 0, 1
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"shard index must be in 0..{n - 1}, got {i}/{n}")
    return i, n


def build_source(args, profile, size: tuple[int, int]):
    """The `Source` named by --source, producing images of (H, W) = `size`."""
    spec = args.source
    if spec == "procedural":
        from cofrida.data.scenes import SceneGenerator

        if args.num is None:
            raise ValueError("--num is required with --source procedural")
        gen = SceneGenerator(Palette.preset(profile.scene_palette), size, seed=args.source_seed)
        return ProceduralSource(gen, args.num)
    kind, _, rest = spec.partition(":")
    if kind == "folder" and rest:
        return FolderSource(rest, size=size)
    if kind == "hf" and rest:
        return HFDatasetSource(
            rest, image_column=args.image_column, text_column=args.text_column,
            split=args.split, size=size,
        )  # fmt: skip
    raise ValueError(f"--source must be procedural, folder:PATH or hf:NAME, got {spec!r}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cofrida make-data", description=__doc__.splitlines()[0])
    p.add_argument("--source", default="procedural", help="procedural | folder:PATH | hf:NAME")
    p.add_argument("--source-seed", type=int, default=0, help="procedural scenes' seed")
    p.add_argument("--image-column", default="image", help="hf: image column")
    p.add_argument("--text-column", default="text", help="hf: caption column")
    p.add_argument("--split", default="train", help="hf: split")
    p.add_argument("--profile", default="acrylic", help=f"robot profile: {sorted(PROFILES)}")
    p.add_argument("--num", type=int, default=None, help="source indices (default: all)")
    p.add_argument("--shard", default=None, help="i/n: this process's share")
    p.add_argument("--out", required=True, help="data folder")
    p.add_argument("--seed", type=int, default=0, help="run seed (records: seed + index)")
    p.add_argument("--partials", type=int, default=4, help="partial paintings per painting")
    p.add_argument("--kinds", default=",".join(KINDS), help="partial kinds, comma separated")
    p.add_argument("--chunk", type=int, default=16, help="sources per part file")
    p.add_argument("--physical", action="store_true", help="paint with the physical brush")
    p.add_argument("--strokes", type=int, default=None, help="override the stroke budget")
    p.add_argument("--px", type=int, default=None, help="override the canvas width (px)")
    p.add_argument("--coarse-steps", type=int, default=None, help="override planner steps")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 = one per process)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p


class _Progress:
    """Progress lines on stderr: sources, records, records/min, ETA (at most one per 2 s)."""

    def __init__(self, label: str, quiet: bool) -> None:
        self.label, self.quiet, self.last = label, quiet, -1e9

    def __call__(self, info: dict) -> None:
        t = info["seconds"]
        done, total = info["sources_done"], info["sources_total"]
        if self.quiet or (t - self.last < 2.0 and done < total):
            return
        self.last = t
        rate = info["records"] / t * 60 if t > 0 else 0.0
        per_source = t / max(1, info["new_sources"])
        eta = per_source * (total - done)
        print(
            f"[{self.label}] {done}/{total} sources, {info['records']} records "
            f"({rate:.1f}/min), {info['skipped']} skipped, ETA {eta / 60:.1f} min",
            file=sys.stderr,
            flush=True,
        )


MAX_PX = 2048  # canvas width (px) at most; the planner's memory grows with its square


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.px is not None and not 16 <= args.px <= MAX_PX:
        parser.error(f"--px must be 16..{MAX_PX}")
    if args.strokes is not None and not 1 <= args.strokes <= 5000:
        parser.error("--strokes must be 1..5000")
    if args.chunk < 1 or args.partials < 0 or (args.num is not None and args.num < 0):
        parser.error("--chunk must be >= 1, --partials and --num >= 0")
    torch.set_flush_denormal(True)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        shard, num_shards = parse_shard(args.shard)
        profile = get_profile(args.profile)
        overrides = {}
        if args.strokes is not None:
            overrides["strokes"] = args.strokes
        if args.px is not None:
            overrides["canvas_px"] = args.px
        if args.coarse_steps is not None:
            overrides["planner"] = {"coarse_steps": args.coarse_steps}
        profile = profile.with_overrides(**overrides)
        kinds = tuple(k for k in args.kinds.split(",") if k)
        config = DataConfig(args.partials, kinds, args.chunk, args.physical)
        painter = Painter(profile, physical=args.physical)
        source = build_source(args, profile, painter.canvas.size_px)
        prepare_output_dir(args.out)
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"cofrida make-data: {e}", file=sys.stderr)
        return 2
    num = len(source) if args.num is None else min(args.num, len(source))
    run_info = {
        "profile": profile.to_dict(),
        "stroke_model": painter.stroke_model_kind,
        "source": args.source,
        "source_seed": args.source_seed if args.source == "procedural" else None,
        "num": num,
        "num_shards": num_shards,
    }
    stop = {"now": False}

    def request_stop(signum, frame):  # finish the current source, then stop
        stop["now"] = True

    old = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = generate_shard(
            source, painter, args.out, num, shard, num_shards, args.seed, config, run_info,
            on_progress=_Progress(f"shard {shard}/{num_shards}", args.quiet),
            should_stop=lambda: stop["now"],
        )  # fmt: skip
    except ValueError as e:
        print(f"cofrida make-data: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"cofrida make-data: {write_error_message(e, args.out)}", file=sys.stderr)
        return 1
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    result["skipped_before_painting"] = dict(source.skipped)  # e.g. unreadable caption rows
    summary = {k: v for k, v in result.items() if k != "manifest"}
    summary.update(shard=shard, num_shards=num_shards, out=str(args.out))
    if result["stopped"]:
        print("stopped: finished part files kept; rerun to continue", file=sys.stderr)
    print(json.dumps(summary))
    return 130 if result["stopped"] else 0
