"""Where sim-to-real calibrations live: per robot and brush, in the user data directory.

Layout under `sim.user_data.user_data_dir` (``$COFRIDA_HOME`` moves it)::

    calibrations/<robot>/<brush name>/stroke_model/   config.json + model.safetensors
    calibrations/<robot>/<brush name>/calibration.json  what was fitted on, rejections, gap figures

The planner and data generation call `find_calibrated_stroke_model(brush.name, robot)` and fall
back to `AnalyticStrokeModel(brush)` when it returns None.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from sim.stroke_model import StrokeModel, load_stroke_model
from sim.user_data import user_data_dir


def calibration_dir(brush_name: str, robot: str = "default", create: bool = False) -> Path:
    """``calibrations/<robot>/<brush_name>`` in the user data directory."""
    for label, value in (("robot", robot), ("brush name", brush_name)):
        if not value or "/" in value or "\\" in value or value in (".", ".."):
            raise ValueError(f"invalid {label} {value!r} for a calibration directory")
    return user_data_dir("calibrations", robot, brush_name, create=create)


def save_calibration(
    model: StrokeModel,
    info: dict | None = None,
    robot: str = "default",
    out: Path | None = None,
    write_extra: Callable[[Path], None] | None = None,
) -> Path:
    """Save `model` (+ ``calibration.json`` with `info`) for its brush and `robot`.

    Written into a temporary sibling folder first and swapped in whole, so an interrupted save
    leaves the previous calibration intact. `out` overrides the destination folder;
    `write_extra(folder)` may add files (a picture) before the swap.
    Returns the folder holding ``stroke_model/`` and ``calibration.json``.
    """
    target = Path(out) if out is not None else calibration_dir(model.brush.name, robot, True)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(tmp / "stroke_model")
    (tmp / "calibration.json").write_text(json.dumps(info or {}, indent=2))
    if write_extra is not None:
        write_extra(tmp)
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def find_calibrated_stroke_model(brush_name: str, robot: str = "default") -> StrokeModel | None:
    """The calibrated stroke model saved for `brush_name` on `robot`, or None if there is none."""
    folder = calibration_dir(brush_name, robot) / "stroke_model"
    if not (folder / "config.json").is_file():
        return None
    return load_stroke_model(folder)
