"""`cofrida bench model`: the edit model's speed, W4A4 fidelity and size against its targets.

Example:
    cofrida bench model                                   # the shipped bundle
    cofrida bench model --model out/train/final           # an fp32 bundle (quantized here)
    cofrida bench model --model out/w4a4 --fp32-model out/train/final
    cofrida bench model --quick                           # a smoke test

Measured on CPU, a square canvas at the bundle's resolution, ``--threads`` torch threads (1 by
default, as the README's figures). Times are medians of ``--repeats`` rounds (2 with ``--quick``)
after a warm-up; within a round the one-step and multi-step calls alternate, so a slow spell on
a shared machine slows them alike:

1. ``one_step_ms``: one one-step proposal of the bundle as it is (W4A4 when shipped so);
   ``one_step_ms_fp32`` / ``one_step_ms_w4a4`` time both forms when both are at hand.
   ``one_step_ms`` is the pure one-step pass, whatever ``structure_steps`` the bundle is
   configured with; ``hybrid_ms`` times its configured hybrid (``structure_steps`` teacher
   steps, then the one-step pass; 1 step when only a teacher is there), else null.
2. ``multi_step_ms``: one proposal with ``--steps`` (20) guided InstructPix2Pix steps of the
   teacher (``teacher_unet`` when the bundle has one, else its own UNet);
   ``speedup`` = multi_step_ms / one_step_ms.
3. ``w4a4_vs_fp32_psnr_db``: PSNR of the W4A4 model's proposals against its fp32 source's, same
   canvases (procedural scenes with their right half blank), prompts (their captions) and seeds.
   An fp32 ``--model`` is quantized here (`cofrida.model.quantize`, calibrated on other scenes);
   a W4A4 one needs ``--fp32-model`` (else null; for the shipped W4A4 bundle its fp32 source
   ships beside it, ``cofrida/assets/default_model_fp32``, and is used by itself).
4. ``object_recall`` / ``object_recall_best`` / ``damage`` / ``diversity``: the issue-14 object
   figures (`cofrida.evaluation.objects`) of ``--n`` one-step proposals per record on a small
   fixed held-out set: ``--object-records`` (12; 2 with ``--quick``) ``object`` partials of
   procedural scenes (source seed 7, scenes 0, 1, ...) painted here by the acrylic robot, about
   1 s each at 128 px; ``object_recall_fp32`` / ``diversity_fp32`` for the fp32 form when both
   are at hand. ``object_records`` says how many were scored.
5. ``bundle_mb``: the bundle folder on disk (the packaged MiniLM text encoder is referenced, not
   copied); ``w4a4_bundle_mb`` for the copy quantized here.

Targets: one_step_ms <= 150, speedup >= 10, psnr >= 30 dB, bundle_mb <= 25 (``targets`` gives
each value, its limit and pass). Without a shipped bundle, ``--quick`` falls back to an untrained
model of the default architecture with a tiny text encoder (``"fallback"`` says so); the full run
refuses. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

TARGETS = {  # key: (limit, "max" | "min")
    "one_step_ms": (150.0, "max"),
    "speedup": (10.0, "min"),
    "w4a4_vs_fp32_psnr_db": (30.0, "min"),
    "bundle_mb": (25.0, "max"),
}


def folder_mb(folder: str | Path) -> float:
    """Size of every file under `folder`, in MB (10^6 bytes)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 1e6


def scene_inputs(count: int, size: int, start: int) -> list[tuple[torch.Tensor, str]]:
    """(canvas, caption) pairs: procedural scenes at `size` px with their right half blank."""
    from cofrida.data import SceneGenerator
    from cofrida.model.canvas_io import resize
    from sim.palette import Palette

    drawn = max(size, 64)  # the generator's smallest scene
    gen = SceneGenerator(Palette.preset("acrylic"), size=(drawn, drawn), seed=0)
    pairs = []
    for i in range(start, start + count):
        scene = gen.generate(i)
        canvas = torch.from_numpy(scene.image.copy()).permute(2, 0, 1).float() / 255.0
        canvas = resize(canvas[None], (size, size))[0].clamp(0, 1)
        canvas[:, :, size // 2 :] = 1.0  # the robot's half still to paint
        pairs.append((canvas, scene.caption))
    return pairs


def proposal_psnr(a, b, inputs, n: int = 2) -> float:
    """PSNR (dB) of model a's proposals against model b's on the same inputs and seeds."""
    from cofrida.evaluation.metrics import psnr_db

    pa = [a.propose(c, p, n=n, seed=i) for i, (c, p) in enumerate(inputs)]
    pb = [b.propose(c, p, n=n, seed=i) for i, (c, p) in enumerate(inputs)]
    return psnr_db(torch.cat(pa), torch.cat(pb))


def _proposal_call(
    model, canvas: torch.Tensor, prompt: str, mode: str, steps: int, structure: int = 0
):
    """A function of a seed that makes one proposal (what is timed)."""

    def call(seed: int) -> None:
        model.propose(
            canvas,
            prompt,
            n=1,
            seed=seed,
            mode=mode,
            num_inference_steps=steps,
            structure_steps=structure,
        )

    return call


def median_ms_side_by_side(calls: dict, repeats: int) -> dict[str, float]:
    """Median wall ms of each ``call(seed)``, one warm-up each, then the calls alternating
    (`repeats` rounds), so a slow spell on a shared machine hits all of them alike."""
    for call in calls.values():
        call(0)  # warm-up: first-call costs, the prompt's embedding cache
    times: dict[str, list[float]] = {name: [] for name in calls}
    for r in range(repeats):
        for name, call in calls.items():
            t0 = time.perf_counter()
            call(r + 1)
            times[name].append((time.perf_counter() - t0) * 1000.0)
    return {name: statistics.median(values) for name, values in times.items()}


def object_figures(model, records, n: int = 4, seed: int = 0) -> dict:
    """Mean object figures of `model`'s one-step proposals (n per record, seed + i)."""
    from cofrida.evaluation.objects import object_scores
    from cofrida.model.diversity import proposal_diversity

    rows = []
    for i, r in enumerate(records):
        props = model.propose(r.partial, r.caption, n=n, seed=seed + i, mode="one_step")
        props = props.detach().float().cpu()
        scores = object_scores(r.target, r.partial, r.full, props)
        if scores is not None:
            scores["diversity"] = proposal_diversity(props) if n >= 2 else None
            rows.append(scores)
    keys = ("object_recall", "object_recall_best", "damage", "diversity", "placements")

    def mean(key):
        kept = [row[key] for row in rows if row.get(key) is not None]
        return round(sum(kept) / len(kept), 4) if kept else None

    return {key: mean(key) for key in keys} | {"object_records": len(rows)}


def check_targets(result: dict) -> dict:
    """{key: {value, max|min, pass}}; pass is None when the value was not measured."""
    out = {}
    for key, (limit, kind) in TARGETS.items():
        value = result.get(key)
        ok = None if value is None else (value <= limit if kind == "max" else value >= limit)
        out[key] = {"value": value, kind: limit, "pass": ok}
    return out


def load_model(args, tmp: Path, say):
    """(model, bundle folder, fallback note or None) for --model, or the shipped bundle."""
    from cofrida.model import EditModel, tiny

    if args.model is not None:
        if not Path(args.model).is_dir():
            raise FileNotFoundError(f"--model {args.model!r} is not a bundle folder")
        return EditModel.from_pretrained(args.model), Path(args.model), None
    try:
        from cofrida.model.edit_model import DEFAULT_BUNDLE

        return EditModel.from_pretrained(), DEFAULT_BUNDLE, None
    except FileNotFoundError:
        if not args.quick:
            raise
    note = (
        "no shipped bundle yet: an untrained model of the default architecture (UNet 32/64, "
        "VAE 8/16/32/64, 128 px) with a tiny random CLIP text encoder stands in"
    )
    say(f"[bench model] {note}")
    folder = tmp / "fallback"
    tiny.build_edit_model("tiny_clip", resolution=128).save_pretrained(folder)
    return EditModel.from_pretrained(folder), folder, note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cofrida bench model", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model", default=None, help="bundle folder (default: the shipped one)")
    parser.add_argument("--fp32-model", default=None, help="fp32 source of a W4A4 --model")
    parser.add_argument("--steps", type=int, default=20, help="multi-step sampler steps")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per figure")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats: a smoke test")
    parser.add_argument(
        "--object-records", type=int, default=None, help="held-out object partials (12; quick 2)"
    )
    parser.add_argument("--n", type=int, default=4, help="proposals per object record")
    args = parser.parse_args(argv)
    if args.steps < 1 or args.repeats < 1 or args.threads < 0:
        parser.error("--steps and --repeats must be >= 1, --threads >= 0")
    if args.n < 1 or (args.object_records is not None and args.object_records < 0):
        parser.error("--n must be >= 1 and --object-records >= 0")

    from cofrida.model import EditModel, unet_io
    from cofrida.model.edit_model import DEFAULT_FP32_BUNDLE
    from cofrida.model.quantize import quantize_edit_model

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else args.repeats
    psnr_inputs = 2 if args.quick else 8
    with tempfile.TemporaryDirectory(prefix="cofrida-bench-model-") as tmp:
        try:
            model, folder, fallback = load_model(args, Path(tmp), say)
            fp32 = w4a4 = None
            if unet_io.is_quantized(model.unet):
                w4a4 = model
                source = args.fp32_model
                if source is None and args.model is None and DEFAULT_FP32_BUNDLE.is_dir():
                    source = DEFAULT_FP32_BUNDLE  # the shipped bundle's fp32 source ships too
                if source is not None:
                    if not Path(source).is_dir():
                        raise FileNotFoundError(f"--fp32-model {str(source)!r} is no folder")
                    fp32 = EditModel.from_pretrained(source)
            else:
                fp32 = model
        except (FileNotFoundError, ValueError) as e:
            print(f"cofrida bench model: {e}", file=sys.stderr)
            return 2
        size = model.config.resolution
        w4a4_mb = None
        if w4a4 is None:  # quantize a copy of the fp32 bundle, as `cofrida quantize` does
            say("[bench model] quantizing a copy to W4A4")
            w4a4 = EditModel.from_pretrained(folder)
            calibration = scene_inputs(4 if args.quick else 16, size, start=1000)
            canvases, prompts = zip(*calibration, strict=True)
            quantize_edit_model(w4a4, list(canvases), list(prompts), dtype=torch.float32)
            w4a4.save_pretrained(Path(tmp) / "w4a4")
            w4a4_mb = folder_mb(Path(tmp) / "w4a4")

        say(f"[bench model] timing proposals at {size} px ({repeats} alternating repeats)")
        canvas, prompt = scene_inputs(1, size, start=3000)[0]
        calls = {
            f"one_step_{name}": _proposal_call(m, canvas, prompt, "one_step", args.steps)
            for name, m in (("fp32", fp32), ("w4a4", w4a4))
            if m is not None
        }
        # the multi-step figure is the teacher's (teacher_unet when the bundle has one)
        teacher = model.teacher_model()
        calls["multi_step"] = _proposal_call(teacher, canvas, prompt, "multi_step", args.steps)
        structure = model.config.structure_steps or (1 if model.teacher_unet is not None else 0)
        if structure:  # the diversity hybrid: teacher steps, then the one-step pass
            calls["hybrid"] = _proposal_call(
                model, canvas, prompt, "one_step", args.steps, structure
            )
        times = median_ms_side_by_side(calls, repeats)
        psnr = None
        if fp32 is not None:
            say("[bench model] W4A4 vs fp32 proposals")
            psnr = proposal_psnr(w4a4, fp32, scene_inputs(psnr_inputs, size, start=2000))
        count = (
            args.object_records if args.object_records is not None else (2 if args.quick else 12)
        )
        objects, objects_fp32 = {}, {}
        if count:
            from cofrida.evaluation.objects import generated_records

            say(f"[bench model] painting {count} held-out object partials")
            records = generated_records(count, size)
            objects = object_figures(model, records, args.n)
            if fp32 is not None and model is w4a4:
                objects_fp32 = object_figures(fp32, records, args.n)
        bundle_mb = folder_mb(folder)  # before a fallback's temporary folder goes
    one_step = times["one_step_w4a4" if model is w4a4 else "one_step_fp32"]
    multi = times["multi_step"]
    result = {
        "one_step_ms": round(one_step, 2),
        "one_step_ms_fp32": round(times["one_step_fp32"], 2) if fp32 is not None else None,
        "one_step_ms_w4a4": round(times["one_step_w4a4"], 2),
        "multi_step_ms": round(multi, 1),
        "multi_step_steps": args.steps,
        "speedup": round(multi / one_step, 2),
        "structure_steps": structure,
        "hybrid_ms": round(times["hybrid"], 2) if structure else None,
        "w4a4_vs_fp32_psnr_db": None if psnr is None else round(psnr, 2),
        "object_recall": objects.get("object_recall"),
        "object_recall_best": objects.get("object_recall_best"),
        "damage": objects.get("damage"),
        "diversity": objects.get("diversity"),
        "object_records": objects.get("object_records", 0),
        "object_recall_fp32": objects_fp32.get("object_recall"),
        "diversity_fp32": objects_fp32.get("diversity"),
        "bundle_mb": round(bundle_mb, 3),
        "w4a4_bundle_mb": None if w4a4_mb is None else round(w4a4_mb, 3),
        "model": "fallback" if fallback else str(folder),
        "quantized": model is w4a4,
        "resolution": size,
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "quick": args.quick,
        "fallback": fallback,
    }
    result["targets"] = check_targets(result)
    result["all_pass"] = all(t["pass"] for t in result["targets"].values())
    print(json.dumps(result))
    return 0
