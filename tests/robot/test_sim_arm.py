import threading

import pytest
import torch

from robot.arms import make_arm
from robot.arms.sim import SimArmConfig
from robot.errors import AlreadyConnectedError, NotConnectedError
from robot.safety import SafetyError
from sim.brush_path import BrushPath
from tests.robot.paths import stroke_paths


def line(x0, y0, x1, y1, color=(0.1, 0.1, 0.1), **meta):
    t = torch.linspace(0, 1, 12)
    pts = torch.stack([x0 + (x1 - x0) * t, y0 + (y1 - y0) * t, torch.full((12,), 0.6)], 1)
    return BrushPath(pts, torch.tensor(color), meta=meta)


@pytest.fixture
def arm():
    a = make_arm(SimArmConfig(canvas_px=256))
    a.connect()
    yield a
    a.disconnect()


def dark(image, x, y, canvas):
    """Darkest pixel (channel mean) within 4 px of (x, y) m."""
    c, r = int(x * canvas.px_per_m[0]), int(y * canvas.px_per_m[1])
    return float(image[:, r - 4 : r + 5, c - 4 : c + 5].mean(0).min())


def test_paints_visible_strokes_where_the_paths_are(arm):
    progress = []
    report = arm.execute(
        [line(0.03, 0.05, 0.12, 0.05), line(0.15, 0.15, 0.25, 0.15, dip_before=True)],
        on_progress=lambda d, t: progress.append((d, t)),
    )
    assert report.completed and progress == [(1, 2), (2, 2)]
    img = arm.canvas_image()
    assert dark(img, 0.08, 0.05, arm.canvas) < 0.5  # on the first stroke
    assert dark(img, 0.20, 0.15, arm.canvas) < 0.5  # on the second
    assert dark(img, 0.08, 0.15, arm.canvas) > 0.95  # between them: paper


def test_dips_cleans_and_colour_changes(arm):
    arm.execute([line(0.03, 0.05, 0.1, 0.05)])
    assert (arm.dips, arm.cleans) == (1, 0)  # an empty brush always takes paint first
    red = (0.8, 0.1, 0.1)
    arm.execute([line(0.03, 0.08, 0.1, 0.08, color=red)])  # colour change: clean + dip
    assert (arm.dips, arm.cleans) == (2, 1)
    assert arm.brush_state[0] == pytest.approx(red)
    arm.execute([line(0.03, 0.1, 0.1, 0.1, color=red, dip_before=True, clean_before=True)])
    assert (arm.dips, arm.cleans) == (3, 2)
    assert arm.brush_state[1] > 0.5  # freshly loaded


def test_paint_runs_out_without_dips_and_returns_with_one():
    cfg = SimArmConfig(canvas_px=256, brush="round")
    a = make_arm(cfg)
    a.connect()
    a.execute([line(0.03, 0.02 + 0.01 * i, 0.25, 0.02 + 0.01 * i) for i in range(6)])
    assert a.brush_state[1] < 0.2
    a.execute([line(0.03, 0.15, 0.1, 0.15, dip_before=True)])
    assert a.brush_state[1] > 0.5


def test_stop_from_another_thread_mid_job():
    a = make_arm(SimArmConfig(canvas_px=128, speed_factor=20.0))
    a.connect()
    timer = threading.Timer(0.3, a.stop)
    timer.start()
    report = a.execute(stroke_paths(40))
    timer.join()
    assert report.stopped and 0 < report.paths_done < 40
    assert len(report.paths) == report.paths_done


def test_connection_errors_and_refusal_before_painting(arm):
    with pytest.raises(AlreadyConnectedError):
        arm.connect()
    before = arm.canvas_image()
    with pytest.raises(SafetyError):
        arm.execute([line(0.03, 0.05, 0.1, 0.05), line(0.03, 0.05, 0.5, 0.05)])
    assert torch.equal(arm.canvas_image(), before)  # nothing painted
    fresh = make_arm(SimArmConfig())
    with pytest.raises(NotConnectedError, match="connect"):
        fresh.execute([])
