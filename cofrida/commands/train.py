"""`cofrida train`: fine-tune the edit model on simulator-painted shards, through accelerate.

Examples:
    # one CPU/GPU, the small default architecture from scratch, one-step losses
    cofrida train --data-dir data/scenes --output-dir out/train --resolution 128 \\
        --max-steps 20000 --batch-size 16 --checkpoint-every 1000 --validate-every 500

    # LoRA on a real model, bf16, gradient checkpointing, resumed from the newest checkpoint
    cofrida train --data-dir data/scenes --output-dir out/turbo --init-model stabilityai/sd-turbo \\
        --finetune lora --lora-rank 8 --learning-rate 1e-4 --mixed-precision bf16 \\
        --gradient-checkpointing --resume latest

    # the multi-step teacher (InstructPix2Pix loss, 5%/5%/5% conditioning dropout)
    cofrida train --data-dir data/scenes --output-dir out/teacher --mode multi_step \
        --prediction-type v_prediction --init-model out/train/final

    # a one-step model that can also finish the teacher's first steps; its bundle carries the
    # teacher and proposes with 4 of its steps (diversity, EditModel structure_steps)
    cofrida train --data-dir data/scenes --output-dir out/student --init-model out/train/final \
        --finish-from-timestep 700 --teacher out/teacher/final --structure-steps 4

    # a full fine-tune of an SD-1.5-sized UNet in about half the memory (bf16 weights and
    # AdamW states, stochastic rounding)
    cofrida train --data-dir data/scenes --output-dir out/full \
        --init-model timbrooks/instruct-pix2pix \
        --finetune full --mixed-precision bf16 --weights-dtype bf16 --gradient-checkpointing

    # 2 CPU processes (gloo); `accelerate launch --cpu --num_processes 2` would start only one
    ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 -m cofrida train --data-dir data/scenes \
        --output-dir out/train

    # 8 GPUs on one machine
    accelerate launch --multi_gpu --num_processes 8 --mixed_precision bf16 \\
        -m cofrida train --data-dir data/scenes --output-dir out/train --mixed-precision bf16

    # 2 nodes x 8 GPUs: run on each node with its --machine_rank (0 and 1)
    accelerate launch --multi_gpu --num_machines 2 --num_processes 16 --machine_rank 0 \\
        --main_process_ip 10.0.0.1 --main_process_port 29500 \\
        -m cofrida train --data-dir /shared/data --output-dir /shared/out/train

Every optimizer step is one line in ``<output-dir>/log.jsonl``; progress lines go to stdout;
the last line is one JSON object (step, final bundle folder, last loss). Ctrl-C saves a
checkpoint at the current step and exits (resume with ``--resume latest``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from cofrida.commands import parser_from_doc
from cofrida.commands._interrupt import stop_on_ctrl_c
from cofrida.train.config import (
    FINETUNES,
    MODES,
    PERCEPTUALS,
    PRECISIONS,
    RECONSTRUCTIONS,
    TARGETS,
    WEIGHT_DTYPES,
    TrainConfig,
)

CHOICES = {
    "mode": MODES,
    "finetune": FINETUNES,
    "mixed_precision": PRECISIONS,
    "reconstruction": RECONSTRUCTIONS,
    "perceptual": PERCEPTUALS,
    "target": TARGETS,
    "weights_dtype": WEIGHT_DTYPES,
}


def build_parser() -> argparse.ArgumentParser:
    """One ``--flag`` per `TrainConfig` field (underscores become dashes) plus ``--resume``."""
    parser = parser_from_doc("cofrida train", __doc__)
    defaults = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif isinstance(default, list):
            parser.add_argument(flag, nargs="*", default=list(default), metavar="TEXT")
        else:
            parser.add_argument(
                flag, type=type(default), default=default, choices=CHOICES.get(f.name)
            )
    parser.add_argument(
        "--resume", default=None, help="'latest' (newest checkpoint in --output-dir) or a folder"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``cofrida train``; returns the exit code (2 for bad arguments or data).

    A process of a multi-process run exits here instead of returning (`exit_worker`).
    """
    from cofrida.train.world import exit_worker

    return exit_worker(_run(argv))


def _run(argv: list[str] | None) -> int:
    args = vars(build_parser().parse_args(argv))
    resume = args.pop("resume")
    try:
        config = TrainConfig(**args)
        if not config.data_dir:
            raise ValueError("--data-dir is required (a folder with data/*.parquet)")
        from cofrida.train.loop import train

        with stop_on_ctrl_c() as should_stop:
            try:
                result = train(config, resume=resume, should_stop=should_stop)
            except KeyboardInterrupt:
                print("aborted; the last complete checkpoint is intact", file=sys.stderr)
                return 130
    except (ValueError, FileNotFoundError) as e:
        print(f"cofrida train: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
