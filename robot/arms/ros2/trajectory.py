"""Checked canvas paths -> timed Cartesian waypoints -> joint trajectories (no ROS imports).

One `SafePath` becomes one trajectory: station visits first when the planner asks
(``clean_before``: the water jar, ``dip_before``: the paint well), then travel at travel height
above the first waypoint, lower onto it, paint through the waypoints at the path's speed, lift.
Heights are meters above the canvas surface: pressing depth z (0..1) is ``-z * press_depth_m``.
Every segment lasts at least its Cartesian length over its speed and its largest joint step over
``max_joint_speed_rad_s``: slowing down is the only change ever made, so a checked path stays
within its limits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from robot.kinematics import CanvasFrame, SerialChain
from robot.safety import SafePath, Workspace

MIN_SEGMENT_S = 0.02  # s, shortest segment sent: controllers sample at 100-1000 Hz


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
    start_xy: tuple[float, float],
    workspace: Workspace,
    travel_speed_m_s: float,
    plunge_speed_m_s: float,
    press_depth_m: float,
) -> CanvasMotion:
    """Waypoints for one checked path, from the brush lifted above ``start_xy``."""
    up = workspace.travel_height_m
    pts: list[tuple[float, float, float]] = [(start_xy[0], start_xy[1], up)]
    speeds: list[float] = []

    def move(x: float, y: float, h: float, speed: float) -> None:
        pts.append((x, y, h))
        speeds.append(speed)

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
    start_xy: tuple[float, float],
    workspace: Workspace,
    travel_speed_m_s: float,
    plunge_speed_m_s: float,
    press_depth_m: float,
    dip_station: tuple[float, float] | None = None,
) -> CanvasMotion:
    """Waypoints of a brush-height probe: [dip,] travel above (x, y), lower the tip to
    ``height_m`` above the surface (m, negative: below), lift; from the brush lifted above
    ``start_xy``."""
    up = workspace.travel_height_m
    pts = [(start_xy[0], start_xy[1], up)]
    speeds: list[float] = []
    if dip_station is not None:
        sx, sy = dip_station
        pts += [(sx, sy, up), (sx, sy, -press_depth_m), (sx, sy, up)]
        speeds += [travel_speed_m_s, plunge_speed_m_s, plunge_speed_m_s]
    pts += [(x_m, y_m, up), (x_m, y_m, height_m), (x_m, y_m, up)]
    speeds += [travel_speed_m_s, plunge_speed_m_s, plunge_speed_m_s]
    return CanvasMotion(np.array(pts, dtype=np.float64), np.array(speeds, dtype=np.float64))


def canvas_from_base(frame: CanvasFrame, base_xyz: np.ndarray) -> np.ndarray:
    """(N, 3) base-frame meters -> (N, 3) canvas x m, y m, height m (inverse of `to_base`)."""
    b = np.atleast_2d(np.asarray(base_xyz, dtype=np.float64)) - np.asarray(frame.origin_m)
    c, s = math.cos(frame.yaw_rad), math.sin(frame.yaw_rad)
    ex, ey = np.array([c, s]), np.array([s, -c])
    return np.stack([b[:, :2] @ ex, b[:, :2] @ ey, b[:, 2]], axis=1)


def joint_trajectory(
    chain: SerialChain,
    frame: CanvasFrame,
    motion: CanvasMotion,
    seed: np.ndarray,
    max_joint_speed_rad_s: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Joints and times for a motion, starting from joints ``seed``.

    Returns:
        (q, t): (N-1, dof) joint positions (rad) of waypoints 1.. (waypoint 0 is where the arm
        already is) and (N-1,) seconds from the trajectory's start, strictly increasing.
    Raises:
        robot.kinematics.UnreachableError: some waypoint has no IK solution (nothing sent).
    """
    base = frame.to_base(motion.xyh[:, :2], motion.xyh[:, 2])  # (N, 3) m
    q = chain.ik_path(base[1:], seed=seed)  # (N-1, dof) rad
    prev = np.vstack([np.asarray(seed, dtype=np.float64)[None], q[:-1]])  # (N-1, dof)
    dist = np.linalg.norm(np.diff(motion.xyh, axis=0), axis=1)  # (N-1,) m
    joint_step = np.abs(q - prev).max(axis=1)  # (N-1,) rad
    dt = np.maximum.reduce(
        [dist / motion.speed, joint_step / max_joint_speed_rad_s, np.full(len(q), MIN_SEGMENT_S)]
    )
    return q, np.cumsum(dt)
