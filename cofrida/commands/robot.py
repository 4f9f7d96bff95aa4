"""`cofrida robot`: arms, cameras and calibration of a real or simulated robot.

Examples:
    cofrida robot calibrate --arm.type=sim --camera.type=sim
    cofrida robot calibrate --arm.type=grbl --arm.port=/dev/ttyUSB0 --arm.name=plotter \\
        --camera.type=opencv --camera.device=0 --yes
    cofrida robot types
    cofrida robot up          # ROS 2 nodes: not available yet

``calibrate`` runs canvas calibration (ArUco markers -> homography, reprojection error) and
colour calibration (a swatch chart on the canvas -> 3x4 matrix, mean Delta-E before/after)
end to end and saves both under ``<user data>/calibrations/<arm.name>/``. With the sim arm the
chart is placed on the simulated canvas; with a real arm, place a printed chart (``--chart``
writes one as PNG) and press Enter, or pass ``--yes`` when it is already there.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import numpy as np
from PIL import Image

from robot.arms import arm_config_class, arm_types, make_arm
from robot.calibration import (
    calibrate_canvas,
    calibrate_color,
    chart_colors,
    chart_image,
    sample_chart,
    save_calibration,
)
from robot.cameras import camera_config_class, camera_types, make_camera
from robot.cli_config import ConfigError, build_config, split_options
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
    parser.add_argument("action", choices=["calibrate", "types", "up"])
    parser.add_argument("--palette", default="acrylic", help="palette preset of the chart")
    parser.add_argument("--chart", default=None, help="also write the colour chart PNG here")
    parser.add_argument("--yes", action="store_true", help="do not wait for Enter")
    args = parser.parse_args(rest)
    if args.action == "up":
        print(
            "cofrida robot up: the ROS 2 nodes are not yet available in this version; use "
            "`cofrida robot calibrate` with --arm.type=sim or grbl for now",
            file=sys.stderr,
        )
        return 2
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
    summary = calibrate(arm_cfg, cam_cfg, args.palette, args.chart, args.yes)
    print(
        f"canvas: markers {summary['markers_found']}, reprojection "
        f"{summary['reprojection_max_px']:.3f} px max; colour: mean Delta-E "
        f"{summary['delta_e_before']:.2f} -> {summary['delta_e_after']:.2f}"
    )
    print(json.dumps(summary))
    return 0
