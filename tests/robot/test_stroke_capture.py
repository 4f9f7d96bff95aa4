"""The stroke capture procedure, end to end with the sim arm and the sim camera.

The sim arm paints with the physical brush model, which plays the real robot here: a stroke model
fitted to what the camera captured must match those marks better than the analytic model does.
"""

import json
import math

import numpy as np
import pytest
import torch

from cofrida.cli import main
from robot.arms import make_arm
from robot.arms.sim import SimArmConfig
from robot.calibration import calibrate_canvas
from robot.calibration.stroke_capture import CaptureConfig, capture_strokes
from robot.calibration.stroke_grid import CropLayout, plan_stroke_grid
from robot.cameras import make_camera
from robot.cameras.sim import SimCameraConfig
from sim import AnalyticStrokeModel, Brush, Canvas
from sim.gap_report import INK_THRESHOLD, gap_report, ink_darkness, predict_darkness
from sim.stroke_dataset import load_stroke_dataset
from sim.stroke_fit import FitConfig, clean_captures, fit_stroke_model, held_out_gap

torch.set_num_threads(1)

BRUSH = "round"  # the sim arm's default: tapered, streaky, runs dry, splays late under pressure
CROP_M_PER_PX = 0.0004  # m; the sim camera sees ~0.45 mm per pixel of letter paper


def _rig(canvas_px: int = 1024):
    """A connected sim arm + sim camera and the canvas calibration from one blank frame."""
    arm = make_arm(SimArmConfig(brush=BRUSH, canvas_px=canvas_px))
    arm.connect()
    camera = make_camera(SimCameraConfig(), arm=arm)
    camera.connect()
    calibration = calibrate_canvas(camera.capture(), arm.canvas, marker_size_m=0.03)
    return arm, camera, calibration


def _capture(tmp_path, n: int, seed: int = 0, erase_first: bool = False):
    """Capture n strokes; with `erase_first` the first stroke is wiped off right after it is
    painted (a stroke that did not mark). Returns (dataset path, report, paper changes)."""
    arm, camera, calibration = _rig()
    changes = []

    def progress(info):
        if erase_first and info["stage"] == "paint" and info["stroke"] == 1:
            arm.load_canvas_image(None)

    def change_paper(sheet):
        changes.append(sheet)
        arm.load_canvas_image(None)

    out = tmp_path / f"strokes_{seed}.npz"
    report = capture_strokes(
        arm, camera, calibration, Brush.preset(BRUSH), None, n, out,
        CaptureConfig(seed=seed, meters_per_pixel=CROP_M_PER_PX),
        on_paper_change=change_paper, on_progress=progress,
    )  # fmt: skip
    arm.disconnect()
    return out, report, changes


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    return _capture(tmp_path_factory.mktemp("capture"), n=32, erase_first=True)


def test_grid_spans_the_brush_and_cells_do_not_overlap():
    brush, canvas = Brush.preset("sharpie"), Canvas()
    layout = CropLayout.for_brush(brush)
    sheets = plan_stroke_grid(brush, canvas, 70, seed=3, layout=layout, margin_m=0.01)
    per_sheet = len(sheets[0])
    assert len(sheets) == math.ceil(70 / per_sheet) and per_sheet >= 20
    ids = np.concatenate([s.stroke_ids for s in sheets])
    np.testing.assert_array_equal(ids, np.arange(70))
    shapes = np.concatenate([s.shapes for s in sheets])
    length, bend, z = shapes.T
    # Latin hypercube: exactly one stroke in each of the n bins of length and of pressure
    bins = np.floor((length - brush.min_length_m) / (brush.max_length_m - brush.min_length_m) * 70)
    assert sorted(bins.astype(int)) == list(range(70))
    assert sorted(np.floor(z * 70).astype(int)) == list(range(70))
    limit = np.minimum(length / 3 * math.tan(math.radians(brush.max_angle_deg)), brush.max_bend_m)
    assert (np.abs(bend) <= limit + 1e-7).all() and bend.min() < 0 < bend.max()
    x0, x1, y0, y1 = layout.extent_m
    for sheet in sheets:
        s = sheet.strokes
        assert (s.angle == 0).all()
        start = s.position.numpy()
        assert (start[:, 0] + x0 >= 0.01 - 1e-6).all() and (start[:, 0] + x1 <= 0.2694).all()
        assert (start[:, 1] + y0 >= 0.01 - 1e-6).all() and (start[:, 1] + y1 <= 0.2059).all()
        dx = np.abs(start[:, None, 0] - start[None, :, 0])
        dy = np.abs(start[:, None, 1] - start[None, :, 1])
        apart = (dx >= x1 - x0) | (dy >= y1 - y0) | np.eye(len(start), dtype=bool)
        assert apart.all()  # no two crops overlap


def test_capture_writes_the_shared_layout_and_rejects_a_missing_stroke(captured):
    path, report, changes = captured
    data = load_stroke_dataset(path)
    layout = report.layout
    assert report.strokes_planned == 32 and report.sheets == len(changes) + 1 >= 3
    assert changes == list(range(1, report.sheets))  # a fresh sheet whenever one was full
    assert list(report.rejected) == [0] and "no mark" in report.rejected[0]
    assert len(data) == report.strokes_captured == 31
    assert data.intensity.shape == (31, layout["height_px"], layout["width_px"])
    assert data.meters_per_pixel == CROP_M_PER_PX
    assert data.start_xy_px == tuple(layout["start_xy_px"])
    brush = Brush.preset(BRUSH)
    length, bend, z, alpha = data.params.T
    assert (length >= brush.min_length_m).all() and (length <= brush.max_length_m).all()
    assert (np.abs(bend) <= brush.max_bend_m).all() and ((z >= 0) & (z <= 1)).all()
    assert (alpha == 0).all() and data.capture_file.max() == report.sheets - 1
    assert data.intensity.max() > 150  # black paint shows dark
    # every crop's ink lies where its commanded stroke should be (the analytic model's mark)
    real = data.darkness()
    real = real * (real > INK_THRESHOLD)  # the ink, not the faint sensor noise around it
    pred = predict_darkness(AnalyticStrokeModel(brush), data, np.arange(len(data)), 1.0)
    h, w = real.shape[1:]
    xs, ys = torch.arange(w).float(), torch.arange(h).float()

    def centroid(d):
        mass = d.sum((1, 2))
        return torch.stack([(d.sum(1) * xs).sum(1) / mass, (d.sum(2) * ys).sum(1) / mass], 1)

    offset_mm = (centroid(real) - centroid(pred)) * data.meters_per_pixel * 1000  # (N, 2)
    assert offset_mm.norm(dim=1).max() < 2.0
    assert offset_mm.mean(0).abs().max() < 0.3  # no systematic misplacement


def test_fitted_model_matches_the_physical_brush_better_than_the_analytic_one(captured):
    data = load_stroke_dataset(captured[0])
    brush = Brush.preset(BRUSH)
    cfg = FitConfig(steps=30, warmup_steps=40, batch_size=24, test_fraction=0.25, eval_every=10)
    result = fit_stroke_model(data, brush, cfg)
    gap = held_out_gap(result, data, brush)
    assert gap["strokes"] >= 7
    assert gap["iou_fitted"] > gap["iou_analytic"]
    assert gap["l1_fitted"] < 0.9 * gap["l1_analytic"]


def test_capture_needs_a_paper_change_callback_and_a_stop_writes_nothing(tmp_path):
    arm, camera, calibration = _rig(canvas_px=512)
    brush = Brush.preset(BRUSH)
    with pytest.raises(ValueError, match="on_paper_change"):
        capture_strokes(arm, camera, calibration, brush, None, 40, tmp_path / "a.npz")
    stops = iter([False, False, True])
    report = capture_strokes(
        arm, camera, calibration, brush, None, 4, tmp_path / "b.npz",
        should_stop=lambda: next(stops, True),
    )  # fmt: skip
    assert report.stopped and report.out_path is None and not (tmp_path / "b.npz").exists()
    assert 1 <= arm.dips <= 3  # it stopped after painting a stroke or two


def test_cofrida_robot_capture_strokes_sim(tmp_path, capsys):
    out = tmp_path / "strokes.npz"
    argv = ["robot", "capture-strokes", "--arm.type=sim", "--camera.type=sim", "--n", "3"]
    assert main([*argv, "--out", str(out), "--meters-per-pixel", "0.0004"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["strokes_captured"] == 3 and summary["brush"] == "round"
    assert len(load_stroke_dataset(out)) == 3
    assert main(["robot", "capture-strokes", "--n", "3"]) == 2  # no --out


@pytest.mark.slow
def test_fitted_model_beats_analytic_on_an_independent_capture(tmp_path):
    """Fit with the default settings on 120 captured strokes; judge on 40 others."""
    brush = Brush.preset(BRUSH)
    train_path, _, _ = _capture(tmp_path, n=120, seed=1)
    result = fit_stroke_model(load_stroke_dataset(train_path), brush, FitConfig(test_fraction=0))
    test_path, _, _ = _capture(tmp_path, n=40, seed=2)
    data = load_stroke_dataset(test_path)
    cleaned, _ = clean_captures(data, brush)
    models = {"analytic": AnalyticStrokeModel(brush), "fitted": result.model}
    gap = gap_report(models, data, cleaned, np.arange(len(data)), ink_darkness(cleaned))
    print({k: round(v, 4) for k, v in gap.items() if isinstance(v, float)})
    assert gap["iou_fitted"] > gap["iou_analytic"] + 0.015
    assert gap["l1_fitted"] < 0.75 * gap["l1_analytic"]
