import numpy as np
import pytest
import torch

from robot.safety import MotionLimits, SafetyError, Workspace, check_paths, peak_accel
from sim.brush_path import BrushPath
from tests.robot.paths import hostile_paths

WS, LIM = Workspace(), MotionLimits()


def path(points, **meta):
    return BrushPath(torch.tensor(points, dtype=torch.float32), torch.zeros(3), meta=meta)


def test_refusal_names_path_waypoint_and_limit():
    good = path([[0.05, 0.05, 0.5], [0.06, 0.05, 0.5]])
    bad = path([[0.05, 0.05, 0.5], [0.30, 0.05, 0.5], [0.06, 0.06, 0.5]])
    with pytest.raises(SafetyError, match=r"path 1, waypoint 1: .*x=0.3000 m.*margin_m"):
        check_paths([good, bad], WS, LIM)
    with pytest.raises(SafetyError, match=r"path 0: speed 1 m/s exceeds .*max_speed_m_s=0.15"):
        check_paths([path([[0.05, 0.05, 0.5], [0.06, 0.05, 0.5]], speed_m_s=1.0)], WS, LIM)
    zigzag = path([[0.05, 0.05, 0.5], [0.051, 0.05, 0.5], [0.05, 0.05, 0.5]], speed_m_s=0.05)
    with pytest.raises(SafetyError, match=r"waypoint 1: corner acceleration .*max_accel_m_s2"):
        check_paths([zigzag], WS, LIM)


def test_clip_returns_exactly_what_may_be_sent():
    bad = path([[-0.1, 0.05, 1.5], [0.5, 0.5, -0.2]], speed_m_s=3.0)
    (sp,) = check_paths([bad], WS, LIM, on_violation="clip")
    x0, y0, x1, y1 = WS.paint_box
    assert sp.points[:, 0].min() >= x0 and sp.points[:, 0].max() <= x1
    assert sp.points[:, 1].min() >= y0 and sp.points[:, 1].max() <= y1
    assert sp.points[:, 2].min() >= 0 and sp.points[:, 2].max() <= WS.max_press
    assert sp.speed_m_s <= LIM.max_speed_m_s
    assert set(sp.clipped) == {"position", "speed"}
    zigzag = path([[0.05, 0.05, 0.5], [0.051, 0.05, 0.5], [0.05, 0.05, 0.5]], speed_m_s=0.05)
    (sp,) = check_paths([zigzag], WS, LIM, on_violation="clip")
    assert peak_accel(sp.points, sp.speed_m_s)[0] <= LIM.max_accel_m_s2
    assert "acceleration" in sp.clipped


@pytest.mark.parametrize("seed", range(5))
def test_randomised_plans_are_refused_or_clipped_into_the_envelope(seed):
    paths, bad = hostile_paths(40, seed)
    if any(bad):
        with pytest.raises(SafetyError):
            check_paths(paths, WS, LIM)
    for sp in check_paths(paths, WS, LIM, on_violation="clip"):
        x0, y0, x1, y1 = WS.paint_box
        assert np.all((sp.points >= [x0, y0, 0]) & (sp.points <= [x1, y1, WS.max_press]))
        assert sp.speed_m_s <= LIM.max_speed_m_s
        assert peak_accel(sp.points, sp.speed_m_s)[0] <= LIM.max_accel_m_s2 * (1 + 1e-6)


def test_workspace_rejects_stations_out_of_reach():
    with pytest.raises(ValueError, match="water_station"):
        Workspace(water_station=(1.0, 1.0))


def test_float32_rounding_at_the_margin_is_not_a_violation():
    """Planners clip to the margin in float32; that must pass a 'refuse' check unreported."""
    ws = Workspace()
    x0, y0, x1, y1 = ws.paint_box
    edge = torch.tensor(
        [[x0, y0, 0.5], [x1, y1, 0.5]], dtype=torch.float32
    )  # float32 rounds these a hair past the float64 box
    (safe,) = check_paths([BrushPath(edge, torch.zeros(3))], ws, MotionLimits(), "refuse")
    assert safe.clipped == ()
    assert safe.points[:, 0].min() >= x0 and safe.points[:, 0].max() <= x1
    beyond = edge.clone()
    beyond[1, 0] += 1e-4  # a tenth of a millimetre is real: refused
    with pytest.raises(SafetyError, match="outside the workspace"):
        check_paths([BrushPath(beyond, torch.zeros(3))], ws, MotionLimits(), "refuse")


def test_paths_without_a_speed_are_timed_at_the_arm_boundary_not_refused():
    """Every caller (the ROS painter, a session, a script) may send planner paths without a
    speed: tight corners are slowed to the acceleration limit; a requested speed is checked."""
    zigzag = [[0.05, 0.05, 0.5], [0.051, 0.05, 0.5], [0.05, 0.05, 0.5], [0.06, 0.052, 0.5]]
    straight = path([[0.05, 0.05, 0.5], [0.1, 0.05, 0.5]])
    bent, plain = check_paths([path(zigzag), straight], WS, LIM, "refuse", 0.05)
    assert bent.clipped == () and bent.speed_m_s < 0.05  # slowed, not reported as a violation
    assert peak_accel(bent.points, bent.speed_m_s)[0] <= 0.9 * LIM.max_accel_m_s2 * (1 + 1e-9)
    assert plain.speed_m_s == 0.05  # nothing to slow
    with pytest.raises(SafetyError, match="corner acceleration"):  # asked for: still refused
        check_paths([path(zigzag, speed_m_s=0.05)], WS, LIM, "refuse", 0.05)
    (fast,) = check_paths([straight], WS, LIM, "refuse", default_speed_m_s=1.0)
    assert fast.speed_m_s == LIM.max_speed_m_s  # an arm's paint speed never passes the limit
