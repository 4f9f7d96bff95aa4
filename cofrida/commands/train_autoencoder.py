"""`cofrida train-autoencoder`: pre-train the small VAE of an edit model trained from scratch.

Examples:
    # the default bundle's autoencoder (x4 downsampling, 64 px crops of 128 px images), then
    # the edit model on it
    cofrida train-autoencoder --data-dir data/acrylic --output-dir out/ae --max-steps 2000
    cofrida train --data-dir data/acrylic --init-vae out/ae/vae --output-dir out/train

    # continue a run that was stopped (Ctrl-C saves)
    cofrida train-autoencoder --data-dir data/acrylic --output-dir out/ae --max-steps 4000 --resume

Models that come with a trained VAE (InstructPix2Pix, sd-turbo) do not need this. Progress lines
go to stderr (step, loss, reconstruction PSNR); the last stdout line is one JSON object
(step, vae folder, loss, psnr_db, stopped).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from cofrida.commands import parser_from_doc
from cofrida.commands._interrupt import stop_on_ctrl_c
from cofrida.train.autoencoder import AutoencoderConfig


def build_parser() -> argparse.ArgumentParser:
    """One ``--flag`` per `AutoencoderConfig` field plus ``--resume`` and ``--threads``."""
    parser = parser_from_doc("cofrida train-autoencoder", __doc__)
    defaults = AutoencoderConfig()
    for f in dataclasses.fields(AutoencoderConfig):
        default = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif isinstance(default, tuple):
            parser.add_argument(flag, type=int, nargs="+", default=list(default))
        else:
            parser.add_argument(flag, type=type(default), default=default)
    parser.add_argument("--resume", action="store_true", help="continue from --output-dir/vae")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``cofrida train-autoencoder``; returns the exit code (2 for bad arguments or data)."""
    args = vars(build_parser().parse_args(argv))
    resume, threads = args.pop("resume"), args.pop("threads")
    try:
        config = AutoencoderConfig(**args)
        if not config.data_dir:
            raise ValueError("--data-dir is required (a folder with data/*.parquet)")
        import torch

        from cofrida.train.autoencoder import train_autoencoder

        if threads:
            torch.set_num_threads(threads)

        def progress(info: dict) -> None:
            print(
                f"step {info['step']}/{config.max_steps} loss {info['loss']:.4f} "
                f"psnr {info['psnr_db']:.1f} dB ({info['steps_per_s']:.2f} steps/s)",
                file=sys.stderr,
                flush=True,
            )

        with stop_on_ctrl_c() as should_stop:
            try:
                result = train_autoencoder(config, resume, progress, should_stop)
            except KeyboardInterrupt:
                print("aborted; the last saved vae/ is intact", file=sys.stderr)
                return 130
    except (ValueError, FileNotFoundError) as e:
        print(f"cofrida train-autoencoder: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
