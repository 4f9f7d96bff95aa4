"""Calibrations on disk: one JSON file per kind, per robot, in the user data directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sim.user_data import user_data_dir

# the `cofrida robot` action that makes each kind
MADE_BY = {"robot_to_canvas": "calibrate-robot", "brush_height": "brush-height"}


def calibration_path(robot_name: str, kind: str, create: bool = True) -> Path:
    """``<user data>/calibrations/<robot_name>/<kind>.json`` (the folder made if ``create``)."""
    for part in (robot_name, kind):
        if not part or "/" in part or part.startswith("."):
            raise ValueError(f"calibration names must be plain names, got {part!r}")
    return user_data_dir("calibrations", robot_name, create=create) / f"{kind}.json"


def save_calibration(robot_name: str, kind: str, data: dict) -> Path:
    """Write atomically (temp file + rename: a crash never leaves half a file). Returns the path."""
    path = calibration_path(robot_name, kind)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)
    return path


def load_calibration(robot_name: str, kind: str) -> dict:
    """Read one calibration; FileNotFoundError says which command makes it."""
    path = calibration_path(robot_name, kind)
    if not path.exists():
        raise FileNotFoundError(
            f"no {kind} calibration for robot {robot_name!r} at {path}; run "
            f"`cofrida robot {MADE_BY.get(kind, 'calibrate')} --arm.name={robot_name}`"
        )
    return json.loads(path.read_text())


def find_calibration(robot_name: str, kind: str) -> dict | None:
    """Read one calibration if it was saved, else None (creates nothing)."""
    path = calibration_path(robot_name, kind, create=False)
    return json.loads(path.read_text()) if path.exists() else None
