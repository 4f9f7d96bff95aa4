"""`cofrida train-scorer`: train the offline image-text scorer (`SceneScorer`) on scenes.

Examples:
    # the default scorer: 4000 procedural scenes, 1500 steps (minutes on a CPU)
    cofrida train-scorer --out out/scene_scorer

    # quick look, 8-way retrieval
    cofrida train-scorer --out /tmp/scorer --scenes 500 --steps 100 --candidates 8

    # use it: text alignment while training the edit model, or in evaluation
    cofrida train --data-dir data/scenes --scorer out/scene_scorer --text-alignment-weight 0.1

Progress goes to stderr; the last stdout line is one JSON object of the metrics (held-out
top-1 caption retrieval among --candidates captions, chance, training seconds).
"""

from __future__ import annotations

import argparse
import json
import sys

from cofrida.commands import parser_from_doc


def build_parser() -> argparse.ArgumentParser:
    """The command's arguments."""
    p = parser_from_doc("cofrida train-scorer", __doc__)
    p.add_argument("--out", required=True, help="folder for scene_scorer.json + model.safetensors")
    p.add_argument("--scenes", type=int, default=4000, help="training scenes")
    p.add_argument("--steps", type=int, default=1500, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=128, help="pairs per step")
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--image-size", type=int, default=64, help="px (>= 64)")
    p.add_argument("--eval-scenes", type=int, default=512, help="held-out scenes")
    p.add_argument("--candidates", type=int, default=32, help="captions per retrieval query")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run ``cofrida train-scorer``; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.scenes < 2 or args.steps < 1 or args.image_size < 64 or args.candidates < 2:
        print("cofrida train-scorer: need --scenes >= 2, --steps >= 1, --image-size >= 64, "
              "--candidates >= 2", file=sys.stderr)  # fmt: skip
        return 2
    import torch

    from cofrida.scorer import train_scene_scorer

    if args.threads:
        torch.set_num_threads(args.threads)

    def progress(info: dict) -> None:
        print(
            f"step {info['step']}/{info['steps']} loss {info['loss']:.4f} "
            f"temperature {info['temperature']:.4f}",
            file=sys.stderr,
            flush=True,
        )

    _, metrics = train_scene_scorer(
        args.scenes,
        args.steps,
        args.out,
        image_size=args.image_size,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        eval_scenes=args.eval_scenes,
        candidates=args.candidates,
        seed=args.seed,
        on_progress=progress,
    )
    print(json.dumps(metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
