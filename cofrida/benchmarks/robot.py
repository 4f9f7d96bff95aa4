"""`cofrida bench robot`: GRBL streaming, inverse kinematics, robot-to-canvas and brush height.

Example:
    cofrida bench robot            # ~25 s
    cofrida bench robot --quick    # shorter job, fewer dots, a smaller camera: a smoke test

- GRBL: a GRBL emulator runs in a separate process on a pseudo-terminal, parsing at most
  ``--rate`` lines/s, its moves 1000x faster than real time (so parsing is the ceiling); the
  real driver (pyserial, character counting) streams a job of about ``--lines`` G-code lines
  through it. ``grbl_stream_efficiency`` is the achieved lines/s while streaming (first line
  sent until the machine is idle with every line run; the safety check and G-code generation
  before it are reported as ``grbl_seconds_with_checks``) over the emulator's rate;
  ``grbl_vs_bare_streamer`` the same over a bare character-counting streamer's lines/s on a
  second emulator (1.0: the driver's tracking costs nothing; robust to a busy machine).
- IK: UR5e (published DH), brush pointing down, FK(IK(p)) over a 12 x 10 grid of the canvas
  at surface and travel height; ``ik_max_err_mm`` is the worst position error.
- Calibration: the sim arm's sheet lies 3 mm right, 2 mm up, turned 0.6 deg, 0.4% large, its
  surface 1.2 mm above the configured one; the sim camera films it. The brush-height procedure
  runs (0.5 mm steps), then robot-to-canvas (4 x 5 dots). ``brush_height_err_mm`` is the true
  surface minus the found one (0..step); ``robot_to_canvas_before_mm`` the worst uncorrected
  placement error over the paint box, ``robot_to_canvas_err_mm`` the worst error of the fitted
  map against the truth there, ``robot_to_canvas_dot_err_mm`` the mean distance of a second,
  corrected grid of dots from their targets (includes the arm's ~0.3 mm repeatability).
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import deque

import numpy as np
import serial
import torch

from robot.arms import make_arm
from robot.arms.grbl import GrblArmConfig
from robot.arms.grbl.protocol import job_lines
from robot.arms.sim import SimArmConfig
from robot.calibration import calibrate_canvas
from robot.calibration.brush_height import (
    BrushHeightConfig,
    CameraMarkCheck,
    default_spot,
    find_brush_height,
)
from robot.calibration.robot_to_canvas import (
    RobotToCanvasConfig,
    calibrate_robot_to_canvas,
    verify_robot_to_canvas,
)
from robot.cameras import make_camera
from robot.cameras.sim import SimCameraConfig
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


EMULATOR_ARGS = ["--seconds", "120", "--time-scale", "1000"]  # moves 1000x real time
EMULATOR_ARGS += ["--setting", "110=15000", "--setting", "111=15000", "--setting", "112=5000"]


def _emulator(rate: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "robot.arms.grbl.emulator", "--rate", str(rate), *EMULATOR_ARGS],
        stdout=subprocess.PIPE,
        text=True,
    )


def _bare_stream(port: str, lines: list[str]) -> float:
    """Seconds a bare character-counting streamer (no tracking, no checks) takes for ``lines``:
    the reference the driver is compared with, on the same emulator and the same machine."""
    with serial.Serial(port, 115200, timeout=0.002) as ser:
        inflight, used, nxt, buf = deque(), 0, 0, b""
        data = [(t + "\n").encode() for t in lines]
        start = time.perf_counter()
        while nxt < len(data) or inflight:
            while nxt < len(data) and used + len(data[nxt]) <= 127:
                ser.write(data[nxt])
                inflight.append(len(data[nxt]))
                used += len(data[nxt])
                nxt += 1
            buf += ser.read(max(1, ser.in_waiting))
            *done, buf = buf.split(b"\n")
            for r in done:
                if r.strip() == b"ok" and inflight:
                    used -= inflight.popleft()
        return time.perf_counter() - start


def grbl_efficiency(rate: float, lines: int) -> dict:
    emulator = _emulator(rate)
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
    bare_emulator = _emulator(rate)
    try:
        job = [
            f"N{i + 1} {ln.text}" for i, ln in enumerate(job_lines(arm.check(paths), arm.config))
        ]
        bare = _bare_stream(bare_emulator.stdout.readline().strip(), job)
    finally:
        bare_emulator.terminate()
        bare_emulator.wait(timeout=10)
    achieved = (report.acked_index + 1) / elapsed
    return {
        "grbl_completed": report.completed,
        "grbl_lines": report.moves_total,
        "grbl_seconds": round(elapsed, 3),
        "grbl_seconds_with_checks": round(total, 3),
        "grbl_lines_per_s": round(achieved, 1),
        "grbl_max_rate": rate,
        "grbl_stream_efficiency": round(achieved / rate, 4),
        "grbl_bare_lines_per_s": round(len(job) / bare, 1),
        "grbl_vs_bare_streamer": round(achieved * bare / len(job), 4),
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


def calibration_errors(quick: bool = False) -> dict:
    """Brush height, then robot-to-canvas, on a mis-registered sim arm (see the docstring)."""
    surface_m = 0.0012
    arm = make_arm(
        SimArmConfig(
            name="bench", use_calibration=False, surface_error_m=surface_m,
            misregistration_offset_m=(0.003, -0.002), misregistration_rotation_deg=0.6,
            misregistration_scale=1.004,
        )
    )  # fmt: skip
    arm.connect()
    size = (480, 360) if quick else (960, 720)
    camera = make_camera(SimCameraConfig(width=size[0], height=size[1]), arm=arm)
    camera.connect()
    start = time.perf_counter()
    canvas_cal = calibrate_canvas(camera.capture(), arm.canvas)
    spot = default_spot(arm.config.workspace)
    height = find_brush_height(  # looks for the mark within 10 mm of where it was commanded
        arm, CameraMarkCheck(camera, canvas_cal, spot),
        BrushHeightConfig(spot_m=spot, start_height_m=0.003, step_m=0.0005),
    )  # fmt: skip
    arm.brush_height = height
    dots = RobotToCanvasConfig(rows=3, cols=3) if quick else RobotToCanvasConfig()
    mapping = calibrate_robot_to_canvas(arm, camera, canvas_cal, dots)
    x0, y0, x1, y1 = arm.config.workspace.paint_box
    xs, ys = np.meshgrid(np.linspace(x0, x1, 25), np.linspace(y0, y1, 25))
    grid = np.stack([xs.ravel(), ys.ravel()], 1)
    truth = arm.true_xy(grid)

    def worst_mm(xy: np.ndarray) -> float:
        """Largest distance (mm) of (N, 2) meters from where the grid really lands."""
        return round(float(np.linalg.norm(xy - truth, axis=1).max()) * 1000.0, 3)

    arm.robot_to_canvas = mapping
    check = verify_robot_to_canvas(arm, camera, canvas_cal, dots)
    seconds = time.perf_counter() - start
    camera.disconnect()
    arm.disconnect()
    figures = mapping.summary()
    return {
        "brush_height_err_mm": round((surface_m - height.surface_offset_m) * 1000.0, 4),
        "brush_height_dabs": len(height.dabs),
        "robot_to_canvas_dots": figures["dots_found"],
        "robot_to_canvas_before_mm": worst_mm(grid),
        "robot_to_canvas_err_mm": worst_mm(mapping.actual_m(grid)),
        "robot_to_canvas_residual_rms_mm": figures["residual_rms_mm"],
        "robot_to_canvas_dot_err_mm": check["err_mean_mm"],
        "robot_to_canvas_dot_err_max_mm": check["err_max_mm"],
        "calibration_seconds": round(seconds, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cofrida bench robot", description=__doc__)
    parser.add_argument("--rate", type=float, default=500.0, help="emulator max lines/s")
    parser.add_argument("--lines", type=int, default=4000, help="approximate job length")
    parser.add_argument(
        "--quick", action="store_true", help="a 1000-line job, 3 x 3 dots, a 480 x 360 camera"
    )
    args = parser.parse_args(argv)
    result = grbl_efficiency(args.rate, 1000 if args.quick else args.lines)
    print(
        f"GRBL: {result['grbl_lines']} lines in {result['grbl_seconds']} s = "
        f"{result['grbl_lines_per_s']} lines/s of {args.rate} max "
        f"(efficiency {result['grbl_stream_efficiency']:.3f})"
    )
    ik = ik_error()
    print(f"IK ({ik['ik_arm']}): max FK(IK(p)) error {ik['ik_max_err_mm']:.2e} mm")
    cal = calibration_errors(args.quick)
    print(
        f"brush height: {cal['brush_height_err_mm']:.2f} mm above the true surface after "
        f"{cal['brush_height_dabs']} dabs; robot to canvas: {cal['robot_to_canvas_before_mm']:.2f}"
        f" mm -> {cal['robot_to_canvas_err_mm']:.3f} mm max over the canvas (corrected dots "
        f"{cal['robot_to_canvas_dot_err_mm']} mm mean off)"
    )
    print(json.dumps(result | ik | cal))
    return 0
