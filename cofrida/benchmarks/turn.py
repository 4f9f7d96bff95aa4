"""`cofrida bench turn`: how long a person waits for the robot's turn, and the demo end to end.

Example:
    cofrida bench turn            # default settings (several minutes on 2 busy CPU cores)
    cofrida bench turn --quick    # a smoke test

1. ``turn_seconds``: one robot turn on a simulated session with the default settings
   (`SessionConfig()`, `PlannerConfig()`, 256 px canvas): capture -> proposals -> the first
   proposal chosen -> co-painting plan ready to paint. Median of ``--repeats`` turns, each on
   the canvas a scripted person just sketched on. The proposer is the shipped edit-model
   bundle when it is built, else the scene stand-in (``"model"`` says which).
2. ``demo_seconds``: `cofrida demo` end to end, at its default settings.

The last line is one JSON object; the target is ``turn_seconds <= 20`` on the CI machine.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cofrida import demo
from cofrida.session import SessionConfig, open_sim_session
from planner import PlannerConfig

TARGET_TURN_SECONDS = 20.0


def time_turns(folder: Path, repeats: int, quick: bool) -> tuple[list[dict], str]:
    """Time `repeats` robot turns; returns per-turn timings and the model's name."""
    config = SessionConfig(strokes=20) if quick else SessionConfig()
    planner_config = PlannerConfig(coarse_steps=10, fine_steps=2) if quick else PlannerConfig()
    session = open_sim_session(folder, config, planner_config)
    canvas = session.planner.canvas
    turns = []
    for k in range(repeats):
        prompt = demo.PROMPTS[k % len(demo.PROMPTS)]
        session.human_turn(
            paths=demo.sketch(k % len(demo.PROMPTS), canvas.width_m, canvas.height_m)
        )
        t0 = time.perf_counter()
        session.capture()
        t1 = time.perf_counter()
        session.propose(prompt)
        t2 = time.perf_counter()
        session.choose(0)
        _plan, report = session.plan()
        t3 = time.perf_counter()
        turns.append({
            "prompt": prompt, "capture_s": round(t1 - t0, 3), "propose_s": round(t2 - t1, 3),
            "plan_s": round(t3 - t2, 2), "turn_s": round(t3 - t0, 2),
            "strokes": len(_plan), "loss_final": round(report.loss_final, 4),
            "preserved_fraction": round(report.preserved_fraction, 4),
        })  # fmt: skip
        print(json.dumps(turns[-1]), file=sys.stderr, flush=True)
        session.execute()  # the next turn starts from the painted canvas
    name = session.model_name
    session.close()
    return turns, name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cofrida bench turn", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="robot turns timed")
    parser.add_argument("--quick", action="store_true", help="tiny settings: a smoke test")
    parser.add_argument("--skip-demo", action="store_true", help="time the turn only")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    with tempfile.TemporaryDirectory(prefix="cofrida-bench-turn-") as tmp:
        turns, model = time_turns(Path(tmp) / "session", args.repeats, args.quick)
        demo_seconds = None
        if not args.skip_demo:
            demo_args = ["--out", str(Path(tmp) / "demo")]
            if args.quick:
                demo_args += ["--quick", "--strokes", "10", "--turns", "1"]
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(sys.stderr):
                demo.main(demo_args)
            demo_seconds = round(time.perf_counter() - t0, 1)
    turn_seconds = statistics.median(t["turn_s"] for t in turns)
    result = {
        "turn_seconds": round(turn_seconds, 2),
        "turn_target_seconds": TARGET_TURN_SECONDS,
        "turn_within_target": turn_seconds <= TARGET_TURN_SECONDS,
        "demo_seconds": demo_seconds,
        "model": model,
        "stand_in": model == "scene-stand-in",
        "settings": "quick" if args.quick else "default (SessionConfig(), PlannerConfig())",
        "turns": turns,
    }
    print(json.dumps(result))
    return 0
