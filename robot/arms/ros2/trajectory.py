"""Checked canvas paths -> timed Cartesian waypoints -> joint trajectories (no ROS imports).

One `SafePath` becomes one trajectory, from where the arm really is (its measured joints): a
brush below travel height is first lifted straight up, then station visits when the planner asks
(``clean_before``: the water jar, ``dip_before``: the paint well), travel at travel height above
the first waypoint, lower onto it, paint through the waypoints at the path's speed, lift.
Heights are meters above the canvas surface: pressing depth z (0..1) is ``-z * press_depth_m``.

`joint_trajectory` solves IK along the way (each solution on the branch nearest the previous one,
so no joint ever turns the long way round), splits a segment wherever the joints' interpolation
would leave the straight Cartesian line by more than ``MAX_DEVIATION_M``, times every segment
(at least its Cartesian length over its speed, and slow enough that no joint passes
``max_joint_speed_rad_s`` anywhere along the interpolated motion), gives every waypoint a joint
velocity (so the controller's cubic interpolation does not stop at each waypoint), and then
checks the *swept* motion, sampled between waypoints through forward kinematics, against the
workspace: inside the reach box, never deeper than the deepest press, pressed only on the paint
box or at a station. Slowing down is the only change ever made to a checked path.

With a joint acceleration limit (``Ros2ArmConfig.send_accelerations``) every waypoint also gets
a joint acceleration (0 where the arm stops, elsewhere the derivative of the waypoint
velocities), the controller plays quintic polynomials (what ``joint_trajectory_controller``
does when positions, velocities and accelerations are given), and the timing, the speed and
acceleration checks and the swept check all use that quintic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot.kinematics import CanvasFrame, SerialChain, UnreachableError
from robot.safety import SafePath, SafetyError, Workspace

MIN_SEGMENT_S = 0.02  # s, shortest segment sent: controllers sample at 100-1000 Hz
MAX_DEVIATION_M = 0.0005  # m the swept tip may leave a straight segment before it is split
SAMPLES_PER_SEGMENT = 8  # samples per segment for the swept-motion checks
SWEPT_TOLERANCE_M = 1e-4  # m of float slack in the swept-motion checks


@dataclass
class CanvasMotion:
    """Cartesian waypoints of one trajectory in canvas coordinates.

    Attributes:
        xyh: (N, 3) canvas x m, y m, height m above the surface (negative: pressed).
        speed: (N-1,) m/s along each segment.
    """

    xyh: np.ndarray
    speed: np.ndarray


def path_motion(
    sp: SafePath,
    start_xyh: tuple[float, ...],
    workspace: Workspace,
    travel_speed_m_s: float,
    plunge_speed_m_s: float,
    press_depth_m: float,
) -> CanvasMotion:
    """Waypoints for one checked path, from the brush tip at ``start_xyh`` (canvas x m, y m,
    height m: where the arm really is; a brush below travel height is lifted straight up
    first, so it never drags through wet paint)."""
    up = workspace.travel_height_m
    pts: list[tuple[float, ...]] = [tuple(float(v) for v in start_xyh)]
    speeds: list[float] = []

    def move(x: float, y: float, h: float, speed: float) -> None:
        pts.append((x, y, h))
        speeds.append(speed)

    _lift_first(pts, up, plunge_speed_m_s, move)

    stations = []
    if sp.clean_before:
        stations.append(workspace.water_station)
    if sp.dip_before or sp.clean_before:
        stations.append(workspace.paint_station(sp.palette_index))
    for sx, sy in stations:
        move(sx, sy, up, travel_speed_m_s)
        move(sx, sy, -press_depth_m, plunge_speed_m_s)
        move(sx, sy, up, plunge_speed_m_s)
    p = sp.points
    move(p[0, 0], p[0, 1], up, travel_speed_m_s)
    for k in range(len(p)):
        move(
            p[k, 0], p[k, 1], -p[k, 2] * press_depth_m, plunge_speed_m_s if k == 0 else sp.speed_m_s
        )
    move(p[-1, 0], p[-1, 1], up, plunge_speed_m_s)
    return CanvasMotion(np.array(pts, dtype=np.float64), np.array(speeds, dtype=np.float64))


def dab_motion(
    x_m: float,
    y_m: float,
    height_m: float,
    start_xyh: tuple[float, ...],
    workspace: Workspace,
    travel_speed_m_s: float,
    plunge_speed_m_s: float,
    press_depth_m: float,
    dip_station: tuple[float, float] | None = None,
) -> CanvasMotion:
    """Waypoints of a brush-height probe: [dip,] travel above (x, y), lower the tip to
    ``height_m`` above the surface (m, negative: below), lift; from the tip at ``start_xyh``
    (lifted straight up first when it is below travel height)."""
    up = workspace.travel_height_m
    pts: list[tuple[float, ...]] = [tuple(float(v) for v in start_xyh)]
    speeds: list[float] = []

    def move(x: float, y: float, h: float, speed: float) -> None:
        pts.append((x, y, h))
        speeds.append(speed)

    _lift_first(pts, up, plunge_speed_m_s, move)
    if dip_station is not None:
        sx, sy = dip_station
        move(sx, sy, up, travel_speed_m_s)
        move(sx, sy, -press_depth_m, plunge_speed_m_s)
        move(sx, sy, up, plunge_speed_m_s)
    move(x_m, y_m, up, travel_speed_m_s)
    move(x_m, y_m, height_m, plunge_speed_m_s)
    move(x_m, y_m, up, plunge_speed_m_s)
    return CanvasMotion(np.array(pts, dtype=np.float64), np.array(speeds, dtype=np.float64))


def lift_motion(start_xyh: tuple[float, ...], workspace: Workspace, plunge_speed_m_s: float):
    """Straight up from the tip at ``start_xyh`` to travel height (what a stop does), or None
    when the brush is already there."""
    pts: list[tuple[float, ...]] = [tuple(float(v) for v in start_xyh)]
    speeds: list[float] = []

    def move(x: float, y: float, h: float, speed: float) -> None:
        pts.append((x, y, h))
        speeds.append(speed)

    _lift_first(pts, workspace.travel_height_m, plunge_speed_m_s, move)
    if len(pts) < 2:
        return None
    return CanvasMotion(np.array(pts, dtype=np.float64), np.array(speeds, dtype=np.float64))


LIFTED_TOLERANCE_M = 0.001  # m below travel height that still counts as lifted


def _lift_first(pts: list, up: float, plunge_speed_m_s: float, move) -> None:
    x, y, h = pts[0]
    if h < up - LIFTED_TOLERANCE_M:
        move(x, y, up, plunge_speed_m_s)


def canvas_from_base(frame: CanvasFrame, base_xyz: np.ndarray) -> np.ndarray:
    """(N, 3) base-frame meters -> (N, 3) canvas x m, y m, height m (inverse of `to_base`)."""
    b = np.atleast_2d(np.asarray(base_xyz, dtype=np.float64)) - np.asarray(frame.origin_m)
    c, s = math.cos(frame.yaw_rad), math.sin(frame.yaw_rad)
    ex, ey = np.array([c, s]), np.array([s, -c])
    return np.stack([b[:, :2] @ ex, b[:, :2] @ ey, b[:, 2]], axis=1)


@dataclass
class TimedJoints:
    """A joint trajectory ready to send.

    Attributes:
        q: (M, dof) rad, the waypoints after the start (the start is where the arm is).
        t: (M,) s from the trajectory's start, strictly increasing.
        qd: (M, dof) rad/s joint velocity at each waypoint (0 at the last).
        start: (dof,) rad, the joints the trajectory starts from (at rest).
        qdd: (M, dof) rad/s^2 joint acceleration at each waypoint (0 at the last), or None:
            not sent (the controller interpolates cubic).
    """

    q: np.ndarray
    t: np.ndarray
    qd: np.ndarray
    start: np.ndarray
    qdd: np.ndarray | None = None

    @property
    def duration_s(self) -> float:
        return float(self.t[-1])


def hermite(q0, q1, v0, v1, dt: float, s: np.ndarray):
    """Cubic Hermite between two waypoints (what a joint_trajectory_controller plays when
    positions and velocities are given). q0, q1, v0, v1: (dof,); s: (S,) in 0..1.
    Returns positions (S, dof) rad and velocities (S, dof) rad/s."""
    s = np.asarray(s, dtype=np.float64)[:, None]
    h00, h10, h01, h11 = (
        2 * s**3 - 3 * s**2 + 1,
        s**3 - 2 * s**2 + s,
        -2 * s**3 + 3 * s**2,
        s**3 - s**2,
    )
    d00, d10, d01, d11 = 6 * s**2 - 6 * s, 3 * s**2 - 4 * s + 1, -6 * s**2 + 6 * s, 3 * s**2 - 2 * s
    pos = h00 * q0 + h10 * dt * v0 + h01 * q1 + h11 * dt * v1
    vel = (d00 * q0 + d10 * dt * v0 + d01 * q1 + d11 * dt * v1) / dt
    return pos, vel


def quintic(q0, q1, v0, v1, a0, a1, dt: float, s: np.ndarray):
    """Quintic Hermite between two waypoints (what a joint_trajectory_controller plays when
    positions, velocities and accelerations are given). q0, q1 rad, v0, v1 rad/s, a0, a1
    rad/s^2: (dof,); s: (S,) in 0..1. Returns positions (S, dof) rad, velocities (S, dof)
    rad/s and accelerations (S, dof) rad/s^2."""
    s = np.asarray(s, dtype=np.float64)[:, None]
    s2, s3, s4, s5 = s**2, s**3, s**4, s**5
    basis = (  # weights of q0, dt v0, dt^2 a0, dt^2 a1, dt v1, q1: value, d/ds, d2/ds2
        (1 - 10 * s3 + 15 * s4 - 6 * s5, -30 * s2 + 60 * s3 - 30 * s4,
         -60 * s + 180 * s2 - 120 * s3),
        (s - 6 * s3 + 8 * s4 - 3 * s5, 1 - 18 * s2 + 32 * s3 - 15 * s4,
         -36 * s + 96 * s2 - 60 * s3),
        (0.5 * s2 - 1.5 * s3 + 1.5 * s4 - 0.5 * s5, s - 4.5 * s2 + 6 * s3 - 2.5 * s4,
         1 - 9 * s + 18 * s2 - 10 * s3),
        (0.5 * s3 - s4 + 0.5 * s5, 1.5 * s2 - 4 * s3 + 2.5 * s4, 3 * s - 12 * s2 + 10 * s3),
        (-4 * s3 + 7 * s4 - 3 * s5, -12 * s2 + 28 * s3 - 15 * s4, -24 * s + 84 * s2 - 60 * s3),
        (10 * s3 - 15 * s4 + 6 * s5, 30 * s2 - 60 * s3 + 30 * s4, 60 * s - 180 * s2 + 120 * s3),
    )  # fmt: skip
    terms = (q0, dt * v0, dt**2 * a0, dt**2 * a1, dt * v1, q1)
    out = [sum(b[d] * c for b, c in zip(basis, terms, strict=True)) for d in range(3)]
    return out[0], out[1] / dt, out[2] / dt**2


def waypoint_accelerations(qd: np.ndarray, dt: np.ndarray) -> np.ndarray:
    """(M+1, dof) joint accelerations at the start and every waypoint for (M+1, dof) waypoint
    velocities and (M,) segment durations: 0 where the arm stops (every joint at rest: both
    ends, corners), elsewhere the three-point derivative of the velocities (non-uniform
    times)."""
    a = np.zeros_like(qd)
    if len(dt) >= 2:
        h0, h1 = dt[:-1, None], dt[1:, None]
        back = (qd[1:-1] - qd[:-2]) / h0
        ahead = (qd[2:] - qd[1:-1]) / h1
        a[1:-1] = (back * h1 + ahead * h0) / (h0 + h1)
    a[np.all(qd == 0, axis=1)] = 0.0
    return a


def _segment(q, qd, qdd, dt, k: int, s: np.ndarray):
    """Positions, velocities (and accelerations, or None) along segment k as played."""
    if qdd is None:
        return (*hermite(q[k], q[k + 1], qd[k], qd[k + 1], dt[k], s), None)
    return quintic(q[k], q[k + 1], qd[k], qd[k + 1], qdd[k], qdd[k + 1], dt[k], s)


CORNER_COS = math.cos(math.radians(30))  # the tip stops at waypoints turning more than 30 deg


def waypoint_velocities(q: np.ndarray, dt: np.ndarray, corners: np.ndarray | None = None):
    """(M+1, dof) joint velocities at the start and every waypoint of (M+1, dof) positions
    with (M,) segment durations: 0 at both ends, at ``corners`` ((M+1,) bool: where the tip
    turns sharply, e.g. touching down and lifting off) and where a joint turns back; elsewhere
    the smaller of the two neighbouring segments' speeds (so the cubic never overshoots)."""
    secant = np.diff(q, axis=0) / dt[:, None]  # (M, dof)
    v = np.zeros_like(q)
    a, b = secant[:-1], secant[1:]
    same = np.sign(a) * np.sign(b) > 0
    v[1:-1] = np.where(same, np.sign(a) * np.minimum(np.abs(a), np.abs(b)), 0.0)
    if corners is not None:
        v[corners] = 0.0
    return v


def tip_corners(xyh: np.ndarray) -> np.ndarray:
    """(N,) bool: waypoints of (N, 3) where the tip's direction turns more than 30 degrees."""
    seg = np.diff(xyh, axis=0)
    norm = np.linalg.norm(seg, axis=1)
    unit = seg / np.maximum(norm, 1e-12)[:, None]
    cos = (unit[:-1] * unit[1:]).sum(axis=1)
    out = np.ones(len(xyh), dtype=bool)
    out[1:-1] = (cos < CORNER_COS) | (norm[:-1] < 1e-9) | (norm[1:] < 1e-9)
    return out


def joint_trajectory(
    chain: SerialChain,
    frame: CanvasFrame,
    motion: CanvasMotion,
    seed: np.ndarray,
    max_joint_speed_rad_s: float,
    workspace: Workspace | None = None,
    deepest_m: float | None = None,
    max_joint_accel_rad_s2: float | None = None,
) -> TimedJoints:
    """Joints, times and velocities for a motion, starting from joints ``seed`` (where the arm
    is; ``motion.xyh[0]`` should be its tip).

    Args:
        workspace, deepest_m: when given, the swept motion is checked (reach box; never lower
            than ``-deepest_m``; pressed only on the paint box or at a station).
        max_joint_accel_rad_s2: when given, waypoints get accelerations too (quintic
            interpolation) and segments are slowed until no joint passes this acceleration.
    Raises:
        robot.kinematics.UnreachableError: some waypoint has no IK solution (nothing sent).
        robot.safety.SafetyError: the swept motion leaves the workspace (nothing sent).
    """
    seed = np.asarray(seed, dtype=np.float64)
    start = canvas_from_base(frame, chain.fk(seed)[:3, 3])[0]  # the tip, where it really is
    if workspace is not None:
        approach = not workspace.in_reach(start[0], start[1])
    else:
        approach = float(np.linalg.norm(start - motion.xyh[0])) > 0.01
    motion = CanvasMotion(np.vstack([start[None], motion.xyh[1:]]), motion.speed)
    xyh, speed, q = _refine(
        chain, frame, motion, seed, approach
    )  # (N, 3), (N-1,), (N, dof) with start
    dist = np.linalg.norm(np.diff(xyh, axis=0), axis=1)  # (N-1,) m
    step = np.abs(np.diff(q, axis=0)).max(axis=1)  # (N-1,) rad
    dt = np.maximum.reduce(
        [dist / speed, step / max_joint_speed_rad_s, np.full(len(dist), MIN_SEGMENT_S)]
    )
    amax = max_joint_accel_rad_s2
    if amax is not None:  # a rest-to-rest quintic peaks at 5.77 step / dt^2
        dt = np.maximum(dt, np.sqrt(5.78 * step / amax))
    corners = tip_corners(xyh)
    for _ in range(8):  # the interpolation's peaks can pass the secant's: stretch those
        qd = waypoint_velocities(q, dt, corners)
        qdd = None if amax is None else waypoint_accelerations(qd, dt)
        stretch = np.ones(len(dt))
        for k in range(len(dt)):
            _, vel, acc = _segment(q, qd, qdd, dt, k, _S)
            stretch[k] = np.abs(vel).max() / max_joint_speed_rad_s
            if acc is not None:
                stretch[k] = max(stretch[k], math.sqrt(np.abs(acc).max() / amax))
        over = stretch > 1.0
        if not over.any():
            break
        dt = np.where(over, dt * stretch * 1.001, dt)
    else:  # stop at every waypoint: the cubic peaks at 1.5 x the secant speed, the quintic
        qd = np.zeros_like(q)  # at 1.875 x (and 5.77 step / dt^2)
        if amax is None:
            dt = np.maximum(dt, 1.5 * step / max_joint_speed_rad_s)
            qdd = None
        else:
            dt = np.maximum(dt, 1.875 * step / max_joint_speed_rad_s * 1.001)
            dt = np.maximum(dt, np.sqrt(5.78 * step / amax))
            qdd = np.zeros_like(q)
    traj = TimedJoints(q=q[1:], t=np.cumsum(dt), qd=qd[1:], start=seed,
                       qdd=None if qdd is None else qdd[1:])  # fmt: skip
    if workspace is not None:
        check_swept(traj, chain, frame, xyh, workspace, deepest_m or 0.0)
    return traj


def rest_to_rest(
    q0: np.ndarray,
    q1: np.ndarray,
    max_joint_speed_rad_s: float,
    max_joint_accel_rad_s2: float | None = None,
    min_s: float = 0.5,
) -> TimedJoints:
    """One joint move from rest at q0 to rest at q1 (rad), timed within the speed limit (and
    the acceleration limit, when given: then sent as a quintic with zero accelerations)."""
    step = float(np.abs(np.asarray(q1) - q0).max())
    zeros = np.zeros((1, len(q0)))
    if max_joint_accel_rad_s2 is None:
        t = max(1.5 * step / max_joint_speed_rad_s, min_s)
        return TimedJoints(np.asarray(q1)[None], np.array([t]), zeros, np.asarray(q0))
    t = max(1.875 * step / max_joint_speed_rad_s * 1.001,
            math.sqrt(5.78 * step / max_joint_accel_rad_s2), min_s)  # fmt: skip
    return TimedJoints(np.asarray(q1)[None], np.array([t]), zeros, np.asarray(q0), zeros.copy())


_S = np.linspace(0.0, 1.0, SAMPLES_PER_SEGMENT + 1)


def sample_swept(traj: TimedJoints, chain: SerialChain, frame: CanvasFrame) -> np.ndarray:
    """(M, SAMPLES_PER_SEGMENT + 1, 3) canvas x, y, height of the tip along every segment."""
    q = np.vstack([traj.start[None], traj.q])
    rest = np.zeros((1, q.shape[1]))
    qd = np.vstack([rest, traj.qd])
    qdd = None if traj.qdd is None else np.vstack([rest, traj.qdd])
    dt = np.diff(np.concatenate([[0.0], traj.t]))
    out = []
    for k in range(len(dt)):
        pos, _, _ = _segment(q, qd, qdd, dt, k, _S)
        out.append(canvas_from_base(frame, np.array([chain.fk(p)[:3, 3] for p in pos])))
    return np.array(out)


def check_swept(traj, chain, frame, xyh, workspace: Workspace, deepest_m: float) -> None:
    """Raise `SafetyError` naming the segment where the swept tip leaves the workspace.

    A segment that starts or ends outside the reach box (the approach from a rest pose, or
    going home) may leave it, but only at travel height or above."""
    swept = sample_swept(traj, chain, frame)  # (M, S, 3)
    tol, up = SWEPT_TOLERANCE_M, workspace.travel_height_m
    x0, y0, x1, y1 = workspace.paint_box
    stations = np.array([*workspace.paint_stations, workspace.water_station])
    for k, seg in enumerate(swept):
        approach = not workspace.in_reach(*xyh[k, :2]) or not workspace.in_reach(*xyh[k + 1, :2])
        for x, y, h in seg:
            where = f"segment {k} at (x={x:.4f} m, y={y:.4f} m, height={h * 1000:+.1f} mm)"
            if h < -deepest_m - tol:
                raise SafetyError(f"{where}: the brush would press deeper than "
                                  f"{deepest_m * 1000:.1f} mm")  # fmt: skip
            if approach:
                if h < up - LIFTED_TOLERANCE_M:
                    raise SafetyError(f"{where}: a move from or to outside the reach box would "
                                      "pass below travel height")  # fmt: skip
                continue
            r = workspace.reach_margin_m
            if not (-r - tol <= x <= workspace.canvas_width_m + r + tol
                    and -r - tol <= y <= workspace.canvas_height_m + r + tol):  # fmt: skip
                raise SafetyError(f"{where}: the swept brush leaves the reach box "
                                  f"(Workspace.reach_margin_m={r} m)")  # fmt: skip
            if h < -tol:
                on_box = x0 - tol <= x <= x1 + tol and y0 - tol <= y <= y1 + tol
                at_station = np.hypot(*(stations - [x, y]).T).min() < 0.002
                if not (on_box or at_station):
                    raise SafetyError(f"{where}: pressed outside the paint box")


def _refine(chain, frame, motion: CanvasMotion, seed: np.ndarray, approach: bool):
    """IK for every waypoint; splits segments (Cartesian midpoints) whose joint interpolation
    leaves the straight line by more than MAX_DEVIATION_M (except an ``approach`` first segment,
    a joint move from outside the reach box). Returns (xyh, speed, q) with the start in q."""
    xyh, speed = [motion.xyh[0]], []
    qs = [seed]
    for k in range(1, len(motion.xyh)):
        _split(chain, frame, motion.xyh[k - 1], motion.xyh[k], float(motion.speed[k - 1]),
               xyh, speed, qs, depth=0, approach=approach and k == 1)  # fmt: skip
    return np.array(xyh), np.array(speed), np.array(qs)


def _split(chain, frame, a, b, speed, xyh, speeds, qs, depth: int, approach: bool) -> None:
    qa = qs[-1]
    try:
        qb = chain.ik(frame.to_base(b[None, :2], b[2])[0], seed=qa)
    except UnreachableError as e:
        raise UnreachableError(f"waypoint ({b[0]:.4f}, {b[1]:.4f}, {b[2]:.4f}) m: {e}") from None
    if depth < 8 and not approach:
        s = np.array([0.25, 0.5, 0.75])
        mid = qa + s[:, None] * (qb - qa)  # (3, dof) linear in joints
        tip = canvas_from_base(frame, np.array([chain.fk(m)[:3, 3] for m in mid]))
        line = a + s[:, None] * (b - a)
        if np.linalg.norm(tip - line, axis=1).max() > MAX_DEVIATION_M:
            m = 0.5 * (a + b)
            _split(chain, frame, a, m, speed, xyh, speeds, qs, depth + 1, False)
            _split(chain, frame, m, b, speed, xyh, speeds, qs, depth + 1, False)
            return
    xyh.append(np.asarray(b, dtype=np.float64))
    speeds.append(speed)
    qs.append(qb)
