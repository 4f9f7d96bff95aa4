"""The options of `cofrida ui` (see `ui.app` for examples) and the app configuration they
make. Only the loopback address may be served without a password."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Sequence
from pathlib import Path

from cofrida.session.inputs import MAX_UPLOAD_BYTES
from planner import PlannerConfig
from robot.cli_config import ConfigError, split_options
from sim.brush import BRUSH_PRESETS
from sim.palette import PALETTE_PRESETS
from sim.user_data import user_data_dir
from ui.state import QUICK_PLANNER, AppConfig

PASSWORD_ENV = "COFRIDA_UI_PASSWORD"  # read when --password is not given (keeps it out of ps)
MIN_PASSWORD_CHARS = 8  # shorter ones are guessed in minutes even at one try per second
CANVAS_PX_RANGE = (64, 1024)  # planning width: smaller holds no drawing, larger is minutes/turn


def is_loopback(host: str) -> bool:
    """Whether `host` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, dict, dict]:
    """(arguments, --arm.* options, --camera.* options); argparse exits 2 on bad arguments."""
    try:
        devices, rest = split_options(argv, ["arm", "camera"])
    except ConfigError as e:
        print(f"cofrida ui: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    p = argparse.ArgumentParser(
        prog="cofrida ui",
        description="serve the co-painting browser UI (Gradio)",
        epilog="real robot: --arm.type=TYPE --arm.<field>=V --camera.type=TYPE --camera.<field>=V",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, default=7860, help="port 1-65535 (default 7860)")
    p.add_argument(
        "--password",
        default=None,
        help=f"password (user --user); required off loopback; or set ${PASSWORD_ENV}",
    )
    p.add_argument("--user", default="cofrida", help="user name that goes with --password")
    p.add_argument("--ssl-certfile", type=Path, default=None, help="serve HTTPS with this cert")
    p.add_argument("--ssl-keyfile", type=Path, default=None, help="...and this private key")
    p.add_argument(
        "--session-dir",
        type=Path,
        default=None,
        help="folder of the sessions (default: <user data>/sessions)",
    )
    p.add_argument(
        "--robot",
        choices=["sim", "real"],
        default="sim",
        help="sim: paint in the browser, the sim arm paints (default); real: the "
        "camera and arm given by --camera.* / --arm.*",
    )
    p.add_argument("--strokes", type=int, default=200, help="stroke budget per robot turn")
    p.add_argument("--proposals", type=int, default=4, help="proposals per prompt (1-8)")
    p.add_argument("--palette", choices=sorted(PALETTE_PRESETS), default="acrylic")
    p.add_argument("--brush", choices=sorted(BRUSH_PRESETS), default="round")
    p.add_argument(
        "--canvas-px",
        type=int,
        default=256,
        help=f"canvas width (px) for planning, {CANVAS_PX_RANGE[0]}-{CANVAS_PX_RANGE[1]}",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="sim arm speed: 0 as fast as possible, 1 real arm speed",
    )
    p.add_argument("--model", default=None, help="edit-model bundle folder or hub id")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-upload-mb", type=float, default=MAX_UPLOAD_BYTES / 2**20)
    p.add_argument("--quick", action="store_true", help="a short planner schedule (tests)")
    args = p.parse_args(list(rest))
    if not 1 <= args.strokes <= 2000 or not 1 <= args.proposals <= 8:
        p.error("--strokes must be 1..2000 and --proposals 1..8")
    if args.robot == "sim" and (devices["arm"] or devices["camera"]):
        p.error("--arm.* / --camera.* options need --robot real")
    if not 1 <= args.port <= 65535:
        p.error(f"--port must be 1..65535, got {args.port}")
    lo, hi = CANVAS_PX_RANGE
    if not lo <= args.canvas_px <= hi:
        p.error(f"--canvas-px must be {lo}..{hi}, got {args.canvas_px}")
    if not 0 <= args.speed <= 10 or not 0 < args.max_upload_mb <= 200:
        p.error("--speed must be 0..10 and --max-upload-mb in (0, 200]")
    if args.seed < 0:
        p.error("--seed must be >= 0")
    if (args.ssl_certfile is None) != (args.ssl_keyfile is None):
        p.error("give both --ssl-certfile and --ssl-keyfile, or neither")
    for option in ("ssl_certfile", "ssl_keyfile"):
        path = getattr(args, option)
        if path is not None and not path.is_file():
            p.error(f"--{option.replace('_', '-')}: no file {path}")
    return args, devices["arm"], devices["camera"]


def app_config(args: argparse.Namespace, arm_options: dict, camera_options: dict) -> AppConfig:
    """The app's configuration from parsed options."""
    planner = QUICK_PLANNER if args.quick else PlannerConfig(seed=args.seed)
    return AppConfig(
        session_dir=(args.session_dir or user_data_dir("sessions")).resolve(),
        robot=args.robot,
        strokes=args.strokes,
        proposals=args.proposals,
        canvas_px=args.canvas_px,
        palette=args.palette,
        brush=args.brush,
        planner=planner,
        speed_factor=args.speed,
        model=args.model,
        seed=args.seed,
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        arm_options=arm_options,
        camera_options=camera_options,
    )


def check_password(password: str | None) -> str | None:
    """None when `password` is acceptable (or not given), else what is wrong with it."""
    if password is not None and len(password) < MIN_PASSWORD_CHARS:
        return (
            f"the password is {len(password)} characters long; use at least "
            f"{MIN_PASSWORD_CHARS} (a few words are easy to type and hard to guess)"
        )
    return None
