"""`cofrida robot`: arms, cameras and calibration of a real or simulated robot.

Examples:
    cofrida robot calibrate --arm.type=sim --camera.type=sim
    cofrida robot calibrate --arm.type=grbl --arm.port=/dev/ttyUSB0 --arm.name=plotter \\
        --camera.type=opencv --camera.device=0 --yes
    cofrida robot types
    cofrida robot capture-strokes --arm.type=sim --camera.type=sim --n 60 --out strokes.npz
    cofrida robot brush-height --arm.type=grbl --arm.port=/dev/ttyUSB0 --arm.name=plotter --ask
    cofrida robot brush-height --arm.type=sim --arm.name=crooked --arm.surface_error_m=0.0012 \\
        --camera.type=sim
    cofrida robot calibrate-robot --arm.type=sim --arm.name=crooked \\
        --arm.surface_error_m=0.0012 --arm.misregistration_offset_m=[0.003,-0.002] \\
        --camera.type=sim --verify
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

``brush-height`` dabs lower and lower at a test spot until the camera (or, with ``--ask``, you)
sees a mark (`robot.calibration.brush_height`); ``calibrate-robot`` dots a grid, finds the dots
with the camera and fits where the arm's commands really land
(`robot.calibration.robot_to_canvas`). Run them in that order, on blank paper; both save under
``<user data>/calibrations/<arm.name>/`` and every arm of that name applies them from then on.
Progress goes to stderr, one JSON summary is the last line of stdout.
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
from robot.errors import CalibrationError
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


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _blank_sheet(arm, yes: bool, what: str) -> None:
    """The sim arm's sheet is reset; a person puts a blank sheet down (unless --yes)."""
    if hasattr(arm, "load_canvas_image"):
        arm.load_canvas_image(None)
    elif not yes:
        input(f"Put a blank sheet down (markers visible) and {what}, then press Enter ")


def calibrate_robot_command(arm_cfg, cam_cfg, args) -> int:
    """``cofrida robot calibrate-robot``: dot a grid, find the dots, fit and save the mapping."""
    from robot.calibration.robot_to_canvas import (
        KIND,
        RobotToCanvasConfig,
        calibrate_robot_to_canvas,
        verify_robot_to_canvas,
    )

    config = RobotToCanvasConfig(
        rows=args.rows, cols=args.cols, inset_m=args.inset_m, press=args.press,
        max_residual_mm=args.max_residual_mm, frames=args.frames,
    )  # fmt: skip

    def progress(info: dict) -> None:
        if info["stage"] == "dots" and info["done"] == info["total"]:
            _say(f"dotted {info['total']} points")
        elif info["stage"] == "fit":
            _say(f"found {info['found']}/{info['total']} dots ({info['marks']} new marks)")

    arm = make_arm(arm_cfg)
    arm.connect()
    try:
        camera = make_camera(cam_cfg, **({"arm": arm} if cam_cfg.type == "sim" else {}))
        camera.connect()
        try:
            _blank_sheet(arm, args.yes, "load the brush with dark paint")
            calibration, source = _canvas_calibration(arm, arm_cfg, camera, cam_cfg)
            _say(f"canvas calibration ({source}): {calibration.reprojection_max_px:.3f} px max")
            mapping = calibrate_robot_to_canvas(arm, camera, calibration, config, progress)
            saved = save_calibration(arm_cfg.name, KIND, mapping.to_dict())
            figures = mapping.summary()
            _say(
                f"uncorrected the dots land up to {figures['error_before_max_mm']:.2f} mm off; "
                f"fit residual {figures['residual_rms_mm']:.3f} mm rms, "
                f"{figures['residual_max_mm']:.3f} mm max; saved {saved}"
            )
            summary = {"robot": arm_cfg.name, **figures, "saved": str(saved)}
            if args.verify:
                arm.robot_to_canvas = mapping
                check = verify_robot_to_canvas(arm, camera, calibration, config)
                _say(
                    f"verified: {check['dots_found']}/{check['dots']} corrected dots land within "
                    f"{check['err_max_mm']} mm (mean {check['err_mean_mm']} mm)"
                )
                summary["verify"] = check
        finally:
            camera.disconnect()
    except KeyboardInterrupt:
        arm.stop()
        _say("stopped: nothing was saved")
        return 130
    except CalibrationError as e:
        _say(f"cofrida robot calibrate-robot: {e} (nothing was saved)")
        return 1
    finally:
        if arm.is_connected:
            arm.disconnect()
    print(json.dumps(summary))
    return 0


def brush_height_command(arm_cfg, cam_cfg, args) -> int:
    """``cofrida robot brush-height``: dab lower until a mark appears; save the surface height."""
    from robot.calibration.brush_height import (
        KIND,
        BrushHeightConfig,
        CameraMarkCheck,
        PersonMarkCheck,
        default_spot,
        find_brush_height,
    )

    def mm(value: float | None) -> float | None:
        """mm on the command line -> m."""
        return None if value is None else value / 1000.0

    config = BrushHeightConfig(
        spot_m=None if args.spot_mm is None else tuple(mm(v) for v in args.spot_mm),
        start_height_m=mm(args.start_mm), step_m=mm(args.step_mm), lowest_m=mm(args.lowest_mm),
        press_depth_m=mm(args.press_depth_mm),
    )  # fmt: skip

    def progress(info: dict) -> None:
        mark = "mark" if info["marked"] else "no mark"
        _say(f"dab {info['dab']}/{info['dabs']} at {info['height_m'] * 1000:+.2f} mm: {mark}")

    arm = make_arm(arm_cfg)
    arm.connect()
    camera = None
    try:
        if args.ask:
            check = PersonMarkCheck()
            if not hasattr(arm, "load_canvas_image") and not args.yes:
                input("Put a sheet down and have paint in the first well, then press Enter ")
        else:
            camera = make_camera(cam_cfg, **({"arm": arm} if cam_cfg.type == "sim" else {}))
            camera.connect()
            _blank_sheet(arm, args.yes, "have paint in the first well")
            calibration, source = _canvas_calibration(arm, arm_cfg, camera, cam_cfg)
            _say(f"canvas calibration ({source}): {calibration.reprojection_max_px:.3f} px max")
            spot = config.spot_m or default_spot(arm_cfg.workspace)
            if arm.robot_to_canvas is not None:  # look where the dab really lands
                spot = tuple(arm.robot_to_canvas.actual_m(spot)[0])
            check = CameraMarkCheck(camera, calibration, spot, frames=args.frames)
        result = find_brush_height(arm, check, config, progress)
        saved = save_calibration(arm_cfg.name, KIND, result.to_dict())
    except KeyboardInterrupt:
        arm.stop()
        _say("stopped: nothing was saved")
        return 130
    except CalibrationError as e:
        _say(f"cofrida robot brush-height: {e} (nothing was saved)")
        return 1
    finally:
        if camera is not None:
            camera.disconnect()
        if arm.is_connected:
            arm.disconnect()
    offset_mm = result.surface_offset_m * 1000.0
    press_mm = None if result.press_depth_m is None else round(1000.0 * result.press_depth_m, 4)
    _say(
        f"the brush touches {offset_mm:+.2f} mm from the configured surface (the surface is "
        f"within {result.step_m * 1000:.2f} mm above that); saved {saved}"
    )
    print(json.dumps({
        "robot": arm_cfg.name,
        "surface_offset_mm": round(offset_mm, 4),
        "step_mm": round(result.step_m * 1000.0, 4),
        "press_depth_mm": press_mm,
        "dabs": len(result.dabs),
        "saved": str(saved),
    }))  # fmt: skip
    return 0


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
    parser.add_argument(
        "action",
        choices=["calibrate", "capture-strokes", "brush-height", "calibrate-robot", "types", "up"],
    )
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
    dots = parser.add_argument_group("calibrate-robot")
    dots.add_argument("--rows", type=int, default=4, help="rows of the dot grid")
    dots.add_argument("--cols", type=int, default=5, help="columns of the dot grid")
    dots.add_argument("--inset-m", type=float, default=0.03, help="grid inset from the edges (m)")
    dots.add_argument("--press", type=float, default=0.4, help="pressing depth of the dots (0..1)")
    dots.add_argument(
        "--max-residual-mm", type=float, default=1.5, help="refuse dots farther off the fit"
    )
    dots.add_argument("--verify", action="store_true", help="dot a second grid, corrected")
    height = parser.add_argument_group("brush-height (heights from the configured surface)")
    height.add_argument("--start-mm", type=float, default=4.0, help="first dab's height (mm)")
    height.add_argument("--step-mm", type=float, default=0.5, help="lowered per dab (mm)")
    height.add_argument(
        "--lowest-mm", type=float, default=None,
        help="deepest dab (mm, negative: below; default -Workspace.probe_floor_m)",
    )  # fmt: skip
    height.add_argument(
        "--press-depth-mm", type=float, default=None, help="save this pressing depth (mm) too"
    )
    height.add_argument(
        "--spot-mm", type=float, nargs=2, default=None, metavar=("X", "Y"),
        help="test spot in canvas mm (default 12 mm in from the bottom-right corner)",
    )  # fmt: skip
    height.add_argument("--ask", action="store_true", help="ask y/n after each dab, no camera")
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
    no_camera = args.action == "brush-height" and args.ask
    if cam_cfg.type == "sim" and arm_cfg.type != "sim" and not no_camera:
        print(
            "cofrida robot: --camera.type=sim films the sim arm; use --arm.type=sim",
            file=sys.stderr,
        )
        return 2
    if args.action in ("brush-height", "calibrate-robot"):
        command = brush_height_command if args.action == "brush-height" else calibrate_robot_command
        try:
            return command(arm_cfg, cam_cfg, args)
        except (ValueError, RuntimeError) as e:  # bad settings, safety refusal, arm fault
            print(f"cofrida robot {args.action}: {e} (nothing was saved)", file=sys.stderr)
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
