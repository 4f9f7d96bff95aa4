"""`cofrida robot`: arms, cameras and calibration of a real or simulated robot.

Examples:
    cofrida robot calibrate --arm.type=sim --camera.type=sim
    cofrida robot calibrate --arm.type=grbl --arm.port=/dev/ttyUSB0 --arm.name=plotter \\
        --camera.type=opencv --camera.device=0 --yes
    cofrida robot types
    cofrida robot capture-strokes --arm.type=sim --camera.type=sim --n 60 --out strokes.npz
    cofrida robot up --arm.type=sim --camera.type=sim   # ROS 2 nodes (robot.ros.launch)

``calibrate`` runs canvas calibration (ArUco markers -> homography, reprojection error) and
colour calibration (a swatch chart on the canvas -> 3x4 matrix, mean Delta-E before/after)
end to end and saves both under ``<user data>/calibrations/<arm.name>/``. With the sim arm the
chart is placed on the simulated canvas; with a real arm, place a printed chart (``--chart``
writes one as PNG) and press Enter, or pass ``--yes`` when it is already there.

``capture-strokes`` paints a grid of strokes spanning the brush's ranges, captures and cuts them
out (`robot.calibration.stroke_capture`) and writes a stroke dataset for
``cofrida calibrate strokes --data OUT``. It uses the saved canvas calibration of ``--arm.name``
when it fits the camera, else calibrates from a frame now. With a real arm it asks for a blank
sheet whenever one is full; the sim arm's canvas is simply reset.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from robot.arms import arm_config_class, arm_types, make_arm
from robot.calibration import (
    CanvasCalibration,
    calibrate_canvas,
    calibrate_color,
    chart_colors,
    chart_image,
    load_calibration,
    sample_chart,
    save_calibration,
)
from robot.cameras import camera_config_class, camera_types, make_camera
from robot.cli_config import ConfigError, build_config, split_options
from sim.brush import BRUSH_PRESETS, Brush
from sim.palette import Palette


def calibrate(arm_cfg, cam_cfg, palette: str, chart_png: str | None, yes: bool) -> dict:
    """Canvas + colour calibration with a connected arm and camera; returns the summary."""
    arm = make_arm(arm_cfg)
    arm.connect()
    try:
        if hasattr(arm, "canvas"):
            canvas = arm.canvas
        else:
            from sim.canvas import Canvas

            ws = arm_cfg.workspace
            canvas = Canvas(ws.canvas_width_m, ws.canvas_height_m, 512)
        colors = chart_colors(Palette.preset(palette))
        chart = chart_image(canvas, colors)
        if chart_png:
            img = (chart.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            Image.fromarray(img).save(chart_png)
            print(f"wrote the colour chart to {chart_png}")
        if hasattr(arm, "load_canvas_image"):
            arm.load_canvas_image(chart)  # the simulated canvas gets the chart laid on it
        elif not yes:
            input("Place the colour chart on the canvas, then press Enter ")
        kwargs = {"arm": arm} if cam_cfg.type == "sim" else {}
        camera = make_camera(cam_cfg, **kwargs)
        camera.connect()
        try:
            frame = camera.capture()
        finally:
            camera.disconnect()
        marker_size = getattr(cam_cfg, "marker_size_m", 0.03)
        canvas_cal = calibrate_canvas(frame, canvas, marker_size_m=marker_size)
        rectified = canvas_cal.rectify(frame)
        color_cal = calibrate_color(sample_chart(rectified, canvas, len(colors)), colors)
        paths = {
            "canvas": str(save_calibration(arm_cfg.name, "canvas", canvas_cal.to_dict())),
            "color": str(save_calibration(arm_cfg.name, "color", color_cal.to_dict())),
        }
    finally:
        arm.disconnect()
    return {
        "robot": arm_cfg.name,
        "reprojection_rms_px": round(canvas_cal.reprojection_rms_px, 4),
        "reprojection_max_px": round(canvas_cal.reprojection_max_px, 4),
        "markers_found": canvas_cal.markers_found,
        "delta_e_before": round(color_cal.delta_e_before, 3),
        "delta_e_after": round(color_cal.delta_e_after, 3),
        "saved": paths,
    }


def _canvas_calibration(arm, arm_cfg, camera, cam_cfg) -> tuple[CanvasCalibration, str]:
    """The saved canvas calibration of the arm when it fits this camera, else a fresh one."""
    ws = arm_cfg.workspace
    try:
        saved = CanvasCalibration.from_dict(load_calibration(arm_cfg.name, "canvas"))
        size_m = (saved.canvas.width_m, saved.canvas.height_m)
        same_size = max(abs(size_m[0] - ws.canvas_width_m), abs(size_m[1] - ws.canvas_height_m))
        if tuple(saved.image_size) == (cam_cfg.width, cam_cfg.height) and same_size < 1e-6:
            return saved, "saved"
    except FileNotFoundError:
        pass
    from sim.canvas import Canvas

    canvas = getattr(arm, "canvas", None) or Canvas(ws.canvas_width_m, ws.canvas_height_m, 512)
    marker_size = getattr(cam_cfg, "marker_size_m", 0.03)
    return calibrate_canvas(camera.capture(), canvas, marker_size_m=marker_size), "fresh"


def capture_strokes_command(arm_cfg, cam_cfg, args) -> int:
    """``cofrida robot capture-strokes``: paint, capture and write a stroke dataset."""
    from robot.calibration.stroke_capture import CaptureConfig, capture_strokes

    held = getattr(arm_cfg, "brush", None)  # the sim arm says which brush it holds
    if held and args.brush and args.brush != held:
        print(
            f"cofrida robot: --brush {args.brush} but the sim arm holds {held}; "
            f"use --arm.brush={args.brush}",
            file=sys.stderr,
        )
        return 2
    brush = Brush.preset(args.brush or held or "sharpie")
    config = CaptureConfig(
        seed=args.seed, meters_per_pixel=args.meters_per_pixel, dip_every=args.dip_every,
        frames=args.frames,
    )  # fmt: skip
    arm = make_arm(arm_cfg)
    arm.connect()
    try:
        camera = make_camera(cam_cfg, **({"arm": arm} if cam_cfg.type == "sim" else {}))
        camera.connect()
        try:
            if hasattr(arm, "load_canvas_image"):  # the simulated sheet: reset to blank paper

                def change_paper(sheet: int) -> None:
                    arm.load_canvas_image(None)

            else:
                if not args.yes:
                    input("Put a blank sheet on the canvas (markers visible), then press Enter ")

                def change_paper(sheet: int) -> None:
                    input(f"Sheet {sheet - 1} is full: put a blank sheet down, then press Enter ")

            calibration, source = _canvas_calibration(arm, arm_cfg, camera, cam_cfg)
            print(
                f"canvas calibration ({source}): reprojection "
                f"{calibration.reprojection_max_px:.3f} px max",
                file=sys.stderr,
            )

            def progress(info: dict) -> None:
                if info["stage"] == "capture":
                    print(
                        f"sheet {info['sheet'] + 1}/{info['sheets']} captured: "
                        f"{info['stroke']}/{info['strokes']} strokes",
                        file=sys.stderr,
                        flush=True,
                    )

            report = capture_strokes(
                arm, camera, calibration, brush, None, args.n, args.out, config,
                on_paper_change=change_paper, on_progress=progress,
            )  # fmt: skip
        finally:
            camera.disconnect()
    except KeyboardInterrupt:
        arm.stop()
        print("stopped: nothing was written", file=sys.stderr)
        return 130
    finally:
        if arm.is_connected:
            arm.disconnect()
    for stroke, why in report.rejected.items():
        print(f"rejected stroke {stroke}: {why}", file=sys.stderr)
    if report.out_path:
        print(
            f"next: cofrida calibrate strokes --data {report.out_path} --brush {brush.name} "
            f"--robot {arm_cfg.name}",
            file=sys.stderr,
        )
    print(json.dumps({"brush": brush.name, **report.to_dict()}))
    return 0 if report.out_path else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        options, rest = split_options(argv, ["arm", "camera"])
    except ConfigError as e:
        print(f"cofrida robot: {e}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(
        prog="cofrida robot",
        description=__doc__.splitlines()[0],
        epilog="device options: --arm.type=TYPE --arm.<field>=V --camera.type=TYPE ...",
    )
    parser.add_argument("action", choices=["calibrate", "capture-strokes", "types", "up"])
    parser.add_argument("--palette", default="acrylic", help="palette preset of the chart")
    parser.add_argument("--chart", default=None, help="also write the colour chart PNG here")
    parser.add_argument("--yes", action="store_true", help="do not wait for Enter")
    capture = parser.add_argument_group("capture-strokes")
    capture.add_argument("--n", type=int, default=60, help="strokes to paint")
    capture.add_argument("--out", type=Path, default=None, help="stroke dataset .npz to write")
    capture.add_argument(
        "--brush", default=None, choices=sorted(BRUSH_PRESETS),
        help="brush preset the arm holds (default: the sim arm's, else sharpie)",
    )  # fmt: skip
    capture.add_argument("--seed", type=int, default=0, help="seed of the stroke shapes")
    capture.add_argument(
        "--meters-per-pixel", type=float, default=0.000216, help="crop resolution (m)"
    )
    capture.add_argument("--dip-every", type=int, default=1, help="dip every k strokes (0: once)")
    capture.add_argument("--frames", type=int, default=1, help="frames averaged per capture")
    args = parser.parse_args(rest)
    if args.action == "capture-strokes" and (args.out is None or args.n < 1):
        print("cofrida robot: capture-strokes needs --out FILE.npz and --n >= 1", file=sys.stderr)
        return 2
    if args.action == "up":
        if "type" not in options["arm"]:
            print(
                "cofrida robot up: choose the arm, e.g. --arm.type=sim (simulation) or "
                "--arm.type=ros2 (a ros2_control arm); set up ROS 2 with "
                "`python -m robot.ros.setup_env`",
                file=sys.stderr,
            )
            return 2
        from robot.ros.launch import main as robot_up

        return robot_up([a for a in argv if a != "up"])
    if args.action == "types":
        print(json.dumps({"arm": arm_types(), "camera": camera_types()}))
        return 0
    try:
        arm_cfg = build_config("arm", options["arm"], arm_config_class, "sim")
        cam_cfg = build_config("camera", options["camera"], camera_config_class, "sim")
    except ConfigError as e:
        print(f"cofrida robot: {e}", file=sys.stderr)
        return 2
    if cam_cfg.type == "sim" and arm_cfg.type != "sim":
        print(
            "cofrida robot: --camera.type=sim films the sim arm; use --arm.type=sim",
            file=sys.stderr,
        )
        return 2
    if args.action == "capture-strokes":
        try:
            return capture_strokes_command(arm_cfg, cam_cfg, args)
        except (ValueError, RuntimeError) as e:  # bad settings, safety refusal, arm fault
            print(f"cofrida robot capture-strokes: {e} (nothing was written)", file=sys.stderr)
            return 2
    summary = calibrate(arm_cfg, cam_cfg, args.palette, args.chart, args.yes)
    print(
        f"canvas: markers {summary['markers_found']}, reprojection "
        f"{summary['reprojection_max_px']:.3f} px max; colour: mean Delta-E "
        f"{summary['delta_e_before']:.2f} -> {summary['delta_e_after']:.2f}"
    )
    print(json.dumps(summary))
    return 0
