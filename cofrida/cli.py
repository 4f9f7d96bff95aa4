"""The `cofrida` command line: one entry point, one subcommand per job.

Examples:
    cofrida demo --out out/demo
    cofrida bench render
    cofrida bench --list

Subcommands are modules: ``cofrida/benchmarks/<name>.py`` each provide ``main(argv) -> int`` and
become ``cofrida bench <name>``; other subcommands (``cofrida/commands/<name>.py``, and the demo)
are registered in ``COMMANDS`` below and imported only when chosen, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

# subcommand -> (module with main(argv) -> int, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("cofrida.demo", "run the main job: an offline simulated painting, written to --out"),
    "session": ("cofrida.commands.session", "list, resume and export co-painting sessions"),
    "paint": ("cofrida.commands.paint", "plan and paint a target image in simulation"),
    "calibrate": ("cofrida.commands.calibrate", "sim-to-real: fit/evaluate/import stroke models"),
    "robot": ("cofrida.commands.robot", "arms, cameras and calibration of a real or sim robot"),
    "make-data": ("cofrida.commands.make_data", "paint training data in simulation (sharded)"),
    "show-data": ("cofrida.commands.show_data", "write a contact sheet of a training data folder"),
    "train": ("cofrida.commands.train", "fine-tune the edit model (accelerate)"),
    "train-scorer": ("cofrida.commands.train_scorer", "train the offline image-text scorer"),
    "train-autoencoder": (
        "cofrida.commands.train_autoencoder",
        "pre-train the small autoencoder of a from-scratch edit model",
    ),
    "quantize": ("cofrida.commands.quantize", "W4A4-quantize an edit-model bundle (SVDQuant)"),
    "eval": ("cofrida.commands.eval", "evaluate edit models on held-out prompts and canvases"),
    "ui": ("ui.app", "serve the co-painting browser UI (Gradio)"),
}


def _configure_torch() -> None:
    """Process-wide numerics for every command: flush denormal floats to zero.

    Rendering multiplies many (1 - opacity) factors; the products and their gradients underflow
    into denormals, which x86 CPUs handle 10-100x slower. Painting never needs values < 1e-38.
    """
    import torch

    torch.set_flush_denormal(True)


def _benchmarks() -> list[str]:
    import cofrida.benchmarks as pkg

    return sorted(m.name for m in pkgutil.iter_modules(pkg.__path__) if not m.name.startswith("_"))


def _run_bench(argv: Sequence[str]) -> int:
    names = _benchmarks()
    if not argv or argv[0] in ("-h", "--help", "--list"):
        print("usage: cofrida bench NAME [options]\n\nbenchmarks: " + ", ".join(names))
        return 0
    name, rest = argv[0], list(argv[1:])
    if name not in names:
        print(f"cofrida bench: unknown benchmark {name!r}; choose one of {names}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"cofrida.benchmarks.{name}")
    return int(module.main(rest) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch to a subcommand; returns the process exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="cofrida", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("bench", help="run a benchmark (cofrida bench --list)", add_help=False)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0
    command, rest = argv[0], argv[1:]
    _configure_torch()
    if command == "bench":
        return _run_bench(rest)
    if command not in COMMANDS:
        parser.print_usage(sys.stderr)
        print(f"cofrida: unknown command {command!r}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[command][0])
    except ModuleNotFoundError as e:
        if not e.name or not COMMANDS[command][0].startswith(e.name):
            raise
        print(f"cofrida: '{command}' is not available yet in this version", file=sys.stderr)
        return 2
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
