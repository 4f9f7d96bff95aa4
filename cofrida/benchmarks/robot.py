"""`cofrida bench robot`: GRBL streaming efficiency and inverse-kinematics accuracy.

Example:
    cofrida bench robot            # ~15 s
    cofrida bench robot --quick    # shorter job, for a smoke test

- GRBL: a GRBL emulator runs in a separate process on a pseudo-terminal with a maximum rate of
  ``--rate`` lines/s (its motion planner); the real driver (pyserial, character counting)
  streams a job of about ``--lines`` G-code lines through it. ``grbl_stream_efficiency`` is the
  achieved lines/s while streaming (first line sent to last ``ok``; the safety check and G-code
  generation before it are reported as ``grbl_seconds_with_checks``) over the emulator's rate.
- IK: UR5e (published DH), brush pointing down, FK(IK(p)) over a 12 x 10 grid of the canvas
  at surface and travel height; ``ik_max_err_mm`` is the worst position error.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
import torch

from robot.arms import make_arm
from robot.arms.grbl import GrblArmConfig
from robot.kinematics import UR5E, CanvasFrame
from robot.safety import Workspace
from sim.brush_path import BrushPath


def _job(lines: int) -> list[BrushPath]:
    """Straight-ish strokes of 10 waypoints (~13 G-code lines per path, no dips)."""
    g = torch.Generator().manual_seed(0)
    t = torch.linspace(0, 1, 10)
    paths = []
    for _ in range(max(1, lines // 13)):
        x0 = 0.02 + 0.2 * float(torch.rand(1, generator=g))
        y0 = 0.02 + 0.15 * float(torch.rand(1, generator=g))
        pts = torch.stack([x0 + 0.03 * t, y0 + 0.005 * t, 0.3 + 0.3 * t], dim=1)
        paths.append(BrushPath(pts, torch.tensor([0.1, 0.1, 0.1]), palette_index=0))
    return paths


def grbl_efficiency(rate: float, lines: int) -> dict:
    emulator = subprocess.Popen(
        [sys.executable, "-m", "robot.arms.grbl.emulator", "--rate", str(rate), "--seconds", "120"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = emulator.stdout.readline().strip()
        arm = make_arm(GrblArmConfig(port=port))
        arm.connect()
        paths = _job(lines)
        start = time.perf_counter()
        report = arm.execute(paths)
        total = time.perf_counter() - start
        elapsed = report.stream_s  # sending + acknowledgements, without G-code generation
        arm.disconnect()
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)
    achieved = (report.acked_index + 1) / elapsed
    return {
        "grbl_completed": report.completed,
        "grbl_lines": report.moves_total,
        "grbl_seconds": round(elapsed, 3),
        "grbl_seconds_with_checks": round(total, 3),
        "grbl_lines_per_s": round(achieved, 1),
        "grbl_max_rate": rate,
        "grbl_stream_efficiency": round(achieved / rate, 4),
    }


def ik_error() -> dict:
    ws, frame = Workspace(), CanvasFrame()
    xs, ys = np.meshgrid(
        np.linspace(0, ws.canvas_width_m, 12), np.linspace(0, ws.canvas_height_m, 10)
    )
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
    worst, start, count = 0.0, time.perf_counter(), 0
    for height in (0.0, ws.travel_height_m):
        targets = frame.to_base(grid, height)
        for q, p in zip(UR5E.ik_path(targets), targets, strict=True):
            worst = max(worst, float(np.linalg.norm(UR5E.fk(q)[:3, 3] - p)))
            count += 1
    return {
        "ik_arm": UR5E.name,
        "ik_points": count,
        "ik_max_err_mm": worst * 1000.0,
        "ik_ms_per_solve": round(1000 * (time.perf_counter() - start) / count, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cofrida bench robot", description=__doc__)
    parser.add_argument("--rate", type=float, default=500.0, help="emulator max lines/s")
    parser.add_argument("--lines", type=int, default=4000, help="approximate job length")
    parser.add_argument("--quick", action="store_true", help="a 1000-line job")
    args = parser.parse_args(argv)
    result = grbl_efficiency(args.rate, 1000 if args.quick else args.lines)
    print(
        f"GRBL: {result['grbl_lines']} lines in {result['grbl_seconds']} s = "
        f"{result['grbl_lines_per_s']} lines/s of {args.rate} max "
        f"(efficiency {result['grbl_stream_efficiency']:.3f})"
    )
    ik = ik_error()
    print(f"IK ({ik['ik_arm']}): max FK(IK(p)) error {ik['ik_max_err_mm']:.2e} mm")
    print(json.dumps(result | ik))
    return 0
