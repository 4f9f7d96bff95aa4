import numpy as np
import pytest

from robot.kinematics import UR5E, CanvasFrame, UnreachableError
from robot.safety import Workspace


def canvas_grid(n: int = 6) -> np.ndarray:
    ws = Workspace()
    xs, ys = np.meshgrid(
        np.linspace(0, ws.canvas_width_m, n), np.linspace(0, ws.canvas_height_m, n)
    )
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def test_fk_of_ik_within_0_1_mm_over_the_canvas_workspace():
    frame, ws = CanvasFrame(), Workspace()
    for height in (0.0, ws.travel_height_m):  # on the canvas and at travel height
        targets = frame.to_base(canvas_grid(), height)
        q = UR5E.ik_path(targets)
        for qi, p in zip(q, targets, strict=True):
            pose = UR5E.fk(qi)
            assert np.linalg.norm(pose[:3, 3] - p) < 1e-4  # 0.1 mm
            assert pose[2, 2] == pytest.approx(-1.0, abs=1e-6)  # brush points down


def test_unreachable_targets_are_refused_before_any_joint_is_returned():
    with pytest.raises(UnreachableError, match="beyond the"):
        UR5E.ik([2.0, 0.0, 0.1])
    far = CanvasFrame(origin_m=(0.9, 0.14, 0.02))  # canvas half out of reach
    with pytest.raises(UnreachableError, match="point"):
        UR5E.ik_path(far.to_base(canvas_grid(3)))


def test_canvas_frame_axes():
    frame = CanvasFrame(origin_m=(0.5, 0.1, 0.0), yaw_rad=0.0)
    p = frame.to_base(np.array([[0.1, 0.0], [0.0, 0.1]]), 0.02)
    np.testing.assert_allclose(p, [[0.6, 0.1, 0.02], [0.5, 0.0, 0.02]], atol=1e-12)


def test_canvas_to_paint_well_trips_never_swing_the_base_the_long_way():
    """The wells lie across pan = +-pi from the canvas: each trip must stay a short turn."""
    frame, ws = CanvasFrame(), Workspace()
    stops = [(0.14, 0.02), *ws.paint_stations, (0.25, 0.2), ws.water_station, (0.02, 0.1)]
    stops = stops * 3  # canvas -> wells -> canvas, repeatedly
    targets = frame.to_base(np.array(stops), ws.travel_height_m)
    q = UR5E.ik_path(targets)
    pan_steps = np.abs(np.diff(q[:, 0]))
    assert pan_steps.max() < 1.0, pan_steps  # rad; the long way round is about 6 rad
    assert np.abs(np.diff(q, axis=0)).max() < 1.5
    for qi, p in zip(q, targets, strict=True):
        assert np.linalg.norm(UR5E.fk(qi)[:3, 3] - p) < 1e-4
