"""`cofrida demo`: the main job, offline, on a fresh machine: a simulated co-painting session.

Example:
    cofrida demo --out out/demo
    cofrida demo --quick --strokes 30 --out /tmp/demo   # a smoke test in a few seconds
    cofrida demo --model out/objects/final --out out/demo-new   # a bundle you trained

A scripted person and the simulated robot take turns on one canvas. Each person's turn draws a
few marker strokes from a built-in sketch (a horizon, a sun outline, a path); each robot turn
is the real `cofrida.Session` loop: capture the sim arm's canvas, proposals for a prompt from
the best model available (the shipped edit-model bundle, or the scene stand-in until it is
built; ``--model`` names another bundle), the first proposal chosen, a co-painting plan
(additions only: the person's marks are protected), the sim arm painting it stroke by stroke
with the physical brush, every step persisted. It writes the session (``session/``: SQLite +
images), its export (``images/``, ``timelapse.gif``, ``final.png``, ``session.json``) and
``summary.json`` under ``--out``, prints the folder, and prints the summary as JSON last.

A session is never deleted: an ``--out`` that already holds one is refused (continue it with
``cofrida session resume OUT/session``, export it with ``cofrida session export``, or choose
another ``--out``), and the session is locked while the demo runs (one owner per session).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

from cofrida.commands._output import prepare_output_dir, write_error_message
from cofrida.session import SessionConfig, open_sim_session
from cofrida.session.images import read_png
from cofrida.session.lock import SessionInUse
from cofrida.session.proposers import default_proposer
from planner import PlannerConfig
from sim import BrushPath
from sim.palette import Palette

PALETTE = "acrylic"  # the sim robot's paints
DEMO_COARSE_STEPS = 100  # planner steps at 128 px per robot turn (the planner default is 200)
PROMPTS = (
    "a sunny meadow with a red house",
    "a yellow sun and two green trees",
    "two red tulips and a black bird",
)


def sketch(turn: int, width_m: float, height_m: float) -> list[BrushPath]:
    """The scripted person's strokes for their `turn`-th turn (0, 1, ...), in black marker."""
    t = torch.linspace(0, 1, 40)
    w, h = width_m, height_m
    if turn == 0:  # a wavy horizon
        curves = [torch.stack([0.06 * w + 0.88 * w * t, 0.6 * h + 0.01 * torch.sin(9 * t)], -1)]
    elif turn == 1:  # a sun outline with three rays, top right
        cx, cy, r = 0.8 * w, 0.2 * h, 0.045 * w
        a = 2 * math.pi * t
        curves = [torch.stack([cx + r * torch.cos(a), cy + r * torch.sin(a)], -1)]
        for ang in (math.pi * 0.9, math.pi * 1.25, math.pi * 1.6):
            d = torch.tensor([math.cos(ang), math.sin(ang)])
            s = torch.linspace(1.3 * r, 2.0 * r, 8)[:, None]
            curves.append(torch.tensor([cx, cy]) + s * d)
    else:  # a winding path towards the house
        curves = [torch.stack([0.2 * w + 0.25 * w * t, 0.97 * h - 0.3 * h * t
                               + 0.02 * h * torch.sin(10 * t)], -1)]  # fmt: skip
    return [
        BrushPath(torch.cat([xy, torch.full((len(xy), 1), 0.8)], -1), torch.zeros(3))
        for xy in curves
    ]


def _progress(info: dict) -> None:
    if info.get("step", 0) % 50 == 0 or info.get("step") == info.get("total"):
        print(f"    {info['phase']}: {info['step']}/{info['total']}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cofrida demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    parser.add_argument("--strokes", type=int, default=80, help="robot strokes per turn")
    parser.add_argument("--turns", type=int, default=len(PROMPTS), help="robot turns (1-3)")
    parser.add_argument("--proposals", type=int, default=4, help="proposals per prompt (1-8)")
    parser.add_argument("--seed", type=int, default=0, help="seed (>= 0)")
    parser.add_argument("--quick", action="store_true", help="few planner steps (tests)")
    parser.add_argument(
        "--model", default=None, help="edit-model bundle folder or hub id (default: shipped)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.strokes <= 2000:
        parser.error("--strokes must be >= 1 (and at most 2000)")
    if not 1 <= args.turns <= len(PROMPTS):
        parser.error(f"--turns must be 1..{len(PROMPTS)}")
    if not 1 <= args.proposals <= 8:
        parser.error("--proposals must be 1..8")
    if not 0 <= args.seed < 2**31:
        parser.error("--seed must be 0..2147483647")
    # Everything is checked before anything is written; a session already there is kept.
    folder = args.out / "session"
    if (folder / "session.sqlite").exists():
        print(
            f"cofrida demo: {folder} already holds a session; it is kept, never replaced. "
            f"Continue painting in it with `cofrida ui --session-dir {args.out}` (or `cofrida "
            f"session resume {folder}` after an interruption), export it with `cofrida session "
            f"export {folder} --out DIR`, or give another --out.",
            file=sys.stderr,
        )
        return 2
    proposer = None  # the shipped bundle, loaded by the session
    if args.model is not None:
        try:
            proposer = default_proposer(Palette.preset(PALETTE), args.model)
        except (OSError, ValueError) as e:
            print(f"cofrida demo: --model {args.model}: {e}", file=sys.stderr)
            return 2
    try:
        prepare_output_dir(args.out)
        return _run(args, folder, proposer)
    except SessionInUse as e:
        print(f"cofrida demo: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"cofrida demo: {write_error_message(e, args.out)}", file=sys.stderr)
        return 1
    except ValueError as e:
        print(f"cofrida demo: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, folder: Path, proposer) -> int:
    start = time.perf_counter()
    torch.manual_seed(args.seed)

    # 1. A fresh simulated session.
    # A shorter schedule than the planner's default (200 + 40 steps): ~1-2 min for the whole
    # demo on 2 CPU cores, at a small loss in fidelity.
    planner_config = PlannerConfig(seed=args.seed, coarse_steps=DEMO_COARSE_STEPS, fine_steps=20)
    if args.quick:
        planner_config = PlannerConfig(seed=args.seed, coarse_steps=10, fine_steps=3)
    session = open_sim_session(
        folder,
        SessionConfig(strokes=args.strokes, proposals=args.proposals, seed=args.seed),
        planner_config,
        palette=PALETTE,
        proposer=proposer,
    )
    try:
        print(f"session: {folder}  model: {session.model_name}", file=sys.stderr, flush=True)
        canvas = session.planner.canvas

        # 2. Turns: the person sketches, the robot paints what the prompt asks for.
        robot_turns = []
        for k, prompt in enumerate(PROMPTS[: args.turns]):
            session.human_turn(paths=sketch(k, canvas.width_m, canvas.height_m))
            print(f"turn {2 * k + 2}: robot, {prompt!r}", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            proposals = session.propose(prompt)
            session.choose(0)  # the person takes the first (best-ranked with a scorer)
            _plan, report = session.plan(on_progress=_progress)
            t_plan = time.perf_counter() - t0
            execution = session.execute()
            turn = session.store.turns()[-1]
            robot_turns.append({
                "prompt": prompt,
                "strokes": execution.paths_done,
                "proposal_scores": [score for _, score in proposals],
                "loss_canvas": round(report.loss_canvas, 4),
                "loss_final": round(report.loss_final, 4),
                "painted_loss": round(
                    float(((session.canvas - read_png(turn.target)) ** 2).mean()), 4
                ),
                "preserved_fraction": round(report.preserved_fraction, 4),
                "ready_seconds": round(t_plan, 1),
                "arm_minutes_estimate": round(report.estimated_seconds / 60, 1),
            })  # fmt: skip

        # 3. Export and summary.
        session.export(args.out)
        turns = session.store.turns()
        summary = {
            "out": str(args.out.resolve()),
            "model": session.model_name,
            "turns": len(turns),
            "human_turns": sum(t.kind == "human" for t in turns),
            "robot_turns": sum(t.kind == "robot" for t in turns),
            "strokes": sum(r["strokes"] for r in robot_turns),
            "seconds": round(time.perf_counter() - start, 1),
            "preserved_fraction": [r["preserved_fraction"] for r in robot_turns],
            "robot": robot_turns,
        }
    finally:
        session.close()
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print(f"wrote {args.out}/: session/ images/ timelapse.gif final.png session.json summary.json")
    print(json.dumps(summary, ensure_ascii=False))
    return 0
