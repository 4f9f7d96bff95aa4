"""`cofrida eval`: compare edit models on held-out (partial canvas, caption) records.

Examples:
    # CoFRIDA's ablation (sim-trained vs source-trained), the teacher, fp32 vs W4A4
    cofrida eval --model sim=out/train-sim/final --model source=out/train-source/final \\
        --w4a4 --data-dir data/heldout --records 32 --n 4 --out out/eval

    # the shipped (W4A4) bundle against the fp32 model it was quantized from
    cofrida eval --model default --fp32-source default=out/train/final \\
        --data-dir data/heldout --out out/eval-default

Rows of the table:
    * one per ``--model NAME=PATH`` (PATH a bundle folder or ``default``, the shipped bundle),
      proposing in its configured mode (one-step for a distilled bundle);
    * a multi-step teacher (``--steps`` sampler steps), compared with the first model:
      ``--teacher self`` (default) its ``teacher_unet``, else the model itself in multi-step
      mode; ``--teacher PATH`` another bundle; ``--teacher none`` no teacher row;
    * with ``--w4a4``, a W4A4 copy of every fp32 model (SVDQuant, calibrated on
      ``--calibration-records`` records not evaluated on), compared with it; a model that is
      W4A4 already is compared with its ``--fp32-source NAME=PATH`` instead;
    * the reference: each record's own finished sim painting (``--no-reference`` drops it);
    * with ``--objects``: only the folder's ``object`` partials (one named object's strokes
      removed; procedural data), a second table of object figures (recall, placement, damage,
      hole restore, diversity, distinct placements; `cofrida.evaluation.objects`), and two
      baseline rows: the canvas unchanged and an OpenCV inpaint of the known hole
      (``--no-baselines`` drops them).

    # the issue's object figures: 48 object partials of other scenes, n = 4
    cofrida make-data --profile acrylic --source-seed 7 --num 48 --partials 1 --kinds object \
        --px 128 --out data/heldout-objects
    cofrida eval --model default --fp32-source default=cofrida/assets/default_model_fp32 \
        --objects --data-dir data/heldout-objects --records 40 --n 4 --teacher none \
        --paint-proposals 0 --out out/eval-objects

Metrics (definitions in `cofrida.evaluation.metrics`): text alignment (``--scorer``: the
shipped offline scorer by default, a `cofrida train-scorer` folder, a CLIP model, or ``none``),
preservation, paintability (the planner plans
the first ``--paint-proposals`` proposals in co-painting mode with ``--paint-strokes`` strokes
of the ``--profile`` robot, the sim brush paints them), diversity, latency (median per
record; it depends on ``--threads`` and on other jobs sharing the CPU). Writes
``results.json``, ``table.md`` and ``examples.png`` into ``--out``; prints the table, then one
JSON object last. Progress goes to stderr. Ctrl-C stops without writing anything.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cofrida.evaluation import metrics

PROG = "cofrida eval"


def build_parser() -> argparse.ArgumentParser:
    """The command's arguments."""
    p = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    p.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="a model row: bundle folder or 'default' (repeat for more rows)",
    )
    p.add_argument(
        "--teacher",
        default="self",
        help="multi-step teacher row: 'self' (the first model's), a bundle folder, or 'none'",
    )
    p.add_argument("--steps", type=int, default=20, help="multi-step sampler steps")
    p.add_argument("--w4a4", action="store_true", help="add a W4A4 copy of every fp32 model")
    p.add_argument(
        "--fp32-source",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="fp32 bundle a W4A4 model row NAME was quantized from",
    )
    p.add_argument(
        "--calibration-records", type=int, default=4, help="records that calibrate the W4A4 copies"
    )
    p.add_argument("--data-dir", required=True, help="held-out shards (cofrida make-data)")
    p.add_argument("--records", type=int, default=32, help="records, evenly spread")
    p.add_argument("--size", type=int, default=128, help="canvas px records are read at")
    p.add_argument("--n", type=int, default=4, help="proposals per record")
    p.add_argument("--seed", type=int, default=0, help="record i proposes with seed+i")
    p.add_argument(
        "--scorer",
        default="default",
        help="text-alignment scorer: 'default' (the shipped one), a cofrida train-scorer "
        "folder, a CLIP model, or 'none'",
    )
    p.add_argument("--profile", default="acrylic", help="robot profile that paints proposals")
    p.add_argument("--paint-strokes", type=int, default=60, help="stroke budget per proposal")
    p.add_argument("--paint-steps", type=int, default=40, help="planner optimisation steps")
    p.add_argument(
        "--paint-proposals",
        type=int,
        default=1,
        help="proposals painted per record (0: skip paintability)",
    )
    p.add_argument(
        "--preserve-delta-e",
        type=float,
        default=metrics.PRESERVE_DELTA_E,
        help="CIE76 tolerance of preservation",
    )
    p.add_argument("--no-reference", action="store_true", help="leave out the reference row")
    p.add_argument(
        "--objects",
        action="store_true",
        help="evaluate the object partials only, with object figures and baseline rows",
    )
    p.add_argument(
        "--no-baselines",
        action="store_true",
        help="with --objects: leave out the unchanged-canvas and OpenCV-inpaint rows",
    )
    p.add_argument("--examples", type=int, default=4, help="records in examples.png")
    p.add_argument("--device", default="cpu", help="where the models run")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--out", required=True, help="folder for results.json, table.md, examples.png")
    return p


def parse_named(spec: str) -> tuple[str, str]:
    """``NAME=PATH`` -> (NAME, PATH); a bare PATH is named after its folder ('default' as is)."""
    name, sep, path = spec.partition("=")
    if not sep:
        path = spec
        name = "default" if spec == "default" else Path(spec.rstrip("/")).name or spec
    if not name or not path:
        raise ValueError(f"expected NAME=PATH or PATH, got {spec!r}")
    return name, path


def check_args(args) -> None:
    """Raise ValueError naming the first bad argument."""
    positive = {
        "--records": args.records,
        "--n": args.n,
        "--steps": args.steps,
        "--paint-strokes": args.paint_strokes,
        "--paint-steps": args.paint_steps,
    }
    for flag, value in positive.items():
        if value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    counts = {
        "--paint-proposals": args.paint_proposals,
        "--examples": args.examples,
        "--calibration-records": args.calibration_records,
    }
    for flag, value in counts.items():
        if value < 0:
            raise ValueError(f"{flag} must be >= 0, got {value}")
    if args.threads < 0:
        raise ValueError(f"--threads must be >= 0, got {args.threads}")
    if args.size < 16:
        raise ValueError(f"--size must be >= 16 px, got {args.size}")
    if args.preserve_delta_e <= 0:
        raise ValueError("--preserve-delta-e must be > 0")
    if args.w4a4 and args.calibration_records < 1:
        raise ValueError("--w4a4 needs --calibration-records >= 1")
    if not Path(args.data_dir).is_dir():
        raise FileNotFoundError(f"--data-dir {args.data_dir!r} does not exist")


def load_eval_scorer(spec: str, device: str):
    """The scorer for text alignment: ``"none"`` (None), ``"default"`` (the shipped offline
    scene scorer), a `cofrida train-scorer` folder, or a CLIP model folder / hub id.

    Raises:
        FileNotFoundError: ``"default"`` and no scorer ships with this version.
        ValueError: the scorer could not be loaded (the message says why).
    """
    if spec == "none":
        return None
    from cofrida import scorer as scorers

    if spec == "default":
        shipped = getattr(scorers, "DEFAULT_SCORER", None)
        if shipped is None or not Path(shipped).is_dir():
            raise FileNotFoundError(
                "no shipped scorer in this version: pass --scorer PATH (a `cofrida "
                "train-scorer` folder or a CLIP model) or --scorer none"
            )
        spec = str(shipped)
    try:
        return scorers.load_scorer(spec, device)
    except (OSError, ValueError) as e:
        raise ValueError(f"could not load the scorer {spec!r}: {e}") from e


def build_rows(args, calibration, say):
    """Load the models and return (candidates, comparison pairs) in table order."""
    from cofrida.evaluation import candidates as cands

    specs = [parse_named(s) for s in args.model]
    sources = dict(parse_named(s) for s in args.fp32_source)
    names = [name for name, _ in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"--model names must be unique, got {names}")
    unknown = sorted(set(sources) - set(names))
    if unknown:
        raise ValueError(f"--fp32-source names {unknown} match no --model row {names}")
    rows, pairs, first = [], [], None
    for name, path in specs:
        say(f"[eval] loading {name} from {path}")
        model = cands.load_edit_model(path, args.device)
        first = first or (name, model, path)
        rows.append(cands.model_candidate(name, model, source=path))
        if name in sources:
            if not cands.is_w4a4(model):
                raise ValueError(f"--fp32-source {name}=...: the model {name!r} is not W4A4")
            fp32 = cands.load_edit_model(sources[name], args.device)
            if cands.is_w4a4(fp32):
                raise ValueError(f"--fp32-source {sources[name]!r} is W4A4 itself")
            rows.append(cands.model_candidate(f"{name} fp32", fp32, "fp32", source=sources[name]))
            pairs.append((name, f"{name} fp32"))
        elif args.w4a4 and not cands.is_w4a4(model):
            say(f"[eval] quantizing a copy of {name} to W4A4 on {len(calibration)} records")
            quantized = cands.quantized_copy(path, calibration, args.device, args.seed)
            rows.append(cands.model_candidate(f"{name} w4a4", quantized, "w4a4", source=path))
            pairs.append((f"{name} w4a4", name))
        elif args.w4a4:
            say(f"[eval] {name} is W4A4 already (--fp32-source {name}=PATH compares it)")
    name, model, path = first
    if args.teacher == "self" and model.config.mode == "multi_step":
        say(f"[eval] {name} proposes multi-step already: no teacher row")
    elif args.teacher != "none":
        if args.teacher == "self":
            teacher, source, label = model.teacher_model(), path, f"{name} teacher"
        else:
            say(f"[eval] loading the teacher from {args.teacher}")
            teacher = cands.load_edit_model(args.teacher, args.device)
            source, label = args.teacher, "teacher"
        teacher_row = cands.model_candidate(
            label, teacher, "teacher", "multi_step", args.steps, source
        )
        rows.append(teacher_row)
        pairs.append((name, label))
    if args.objects and not args.no_baselines:
        rows += [cands.unchanged_candidate(), cands.inpaint_candidate()]
    if not args.no_reference:
        rows.append(cands.reference_candidate())
    return rows, pairs


def main(argv: list[str] | None = None) -> int:
    """Run ``cofrida eval``; returns the exit code (2: bad arguments, data or models)."""
    args = build_parser().parse_args(argv)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    from cofrida.evaluation import EvalSettings, evaluate, load_records, markdown_table
    from cofrida.evaluation.table import write_outputs

    start = time.perf_counter()
    try:
        check_args(args)
        if args.threads > 0:
            import torch

            torch.set_num_threads(args.threads)
        calib_count = args.calibration_records if args.w4a4 else 0
        records, calibration = load_records(
            args.data_dir, args.records, args.size, calib_count, objects=args.objects
        )
        kind = "object partials" if args.objects else "records"
        say(f"[eval] {len(records)} {kind} from {args.data_dir} at {args.size} px")
        scorer = load_eval_scorer(args.scorer, args.device)
        if scorer is None:
            say("[eval] --scorer none: text alignment is not measured")
        rows, pairs = build_rows(args, calibration, say)
        paint = metrics.PaintabilityConfig(args.profile, args.paint_strokes, args.paint_steps)
        settings = EvalSettings(
            n=args.n, seed=args.seed, preserve_delta_e=args.preserve_delta_e, paint=paint,
            paint_proposals=args.paint_proposals, examples=args.examples,
        )  # fmt: skip
        result = evaluate(records, rows, scorer, settings, pairs, on_progress=say)
    except (ValueError, FileNotFoundError) as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: stopped; nothing written", file=sys.stderr)
        return 130
    record = dict(vars(args))
    record["calibration_indices"] = [r.index for r in calibration]
    record["seconds"] = round(time.perf_counter() - start, 1)
    files = write_outputs(args.out, result, record, cell=max(args.size, 96))
    print(markdown_table(result))
    keys = ("text_alignment", "preservation", "paint_error_de", "diversity", "latency_ms")
    if args.objects:
        keys += ("object_recall", "object_recall_best", "placement", "damage", "placements")
    summary = {r["name"]: {k: r[k] for k in keys} for r in result.rows}
    last = {"out": str(args.out), "files": files, "rows": summary}
    last.update(comparisons=result.comparisons, seconds=record["seconds"])
    print(json.dumps(last))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
