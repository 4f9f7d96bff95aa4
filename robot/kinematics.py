"""Serial-chain kinematics: DH forward kinematics, damped-least-squares IK, canvas frame.

`SerialChain` holds standard Denavit-Hartenberg parameters (a, alpha, d, theta offset per
joint, meters and radians) plus a tool offset along the flange's z (the brush). `fk(q)` gives
the 4x4 tool pose in the base frame; `ik(position, rotation, seed)` solves for joints with
damped least squares on the full 6-D pose error and raises `UnreachableError` when the target is
out of reach or the solver does not converge within tolerance. Solutions are continuous: each
joint takes the turn (2 pi) nearest the seed (`nearest_branch`), so consecutive targets never
flip a joint by a whole turn. `CanvasFrame` maps canvas
meters (x right, y down, pressing height) to the robot base frame: calibration fits it.

Shipped arm: `UR5E`, from Universal Robots' published DH table for the UR5e ("DH parameters for
calculations of kinematics and dynamics", Universal Robots support site): d1 = 0.1625,
a2 = -0.425, a3 = -0.3922, d4 = 0.1333, d5 = 0.0997, d6 = 0.0996 m; alpha = (pi/2, 0, 0, pi/2,
-pi/2, 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from robot.errors import RobotError

# the brush points straight down at the canvas: tool z = -base z, tool x = base x
BRUSH_DOWN = np.diag([1.0, -1.0, -1.0])


class UnreachableError(RobotError, ValueError):
    """A target pose the arm cannot reach (nothing was sent)."""


@dataclass(frozen=True)
class SerialChain:
    """A serial arm in standard DH parameters.

    Attributes:
        name: arm model.
        a, alpha, d, theta0: per joint, meters / radians (theta = q + theta0).
        joint_limits: (n, 2) radians.
        tool_length_m: brush tip distance along the flange z (m).
        ready: a joint configuration with the tool above the work area (IK seed).
    """

    name: str
    a: tuple[float, ...]
    alpha: tuple[float, ...]
    d: tuple[float, ...]
    theta0: tuple[float, ...]
    joint_limits: tuple[tuple[float, float], ...]
    ready: tuple[float, ...]
    tool_length_m: float = 0.15

    @property
    def dof(self) -> int:
        return len(self.a)

    @property
    def max_reach_m(self) -> float:
        """Upper bound of the tool's distance from the shoulder (m)."""
        return sum(abs(v) for v in self.a) + sum(abs(v) for v in self.d[1:]) + self.tool_length_m

    def frames(self, q: np.ndarray) -> list[np.ndarray]:
        """4x4 poses of the base and of every joint frame, then the tool: n + 2 matrices."""
        t = np.eye(4)
        out = [t]
        for i in range(self.dof):
            th = q[i] + self.theta0[i]
            ct, st = math.cos(th), math.sin(th)
            ca, sa = math.cos(self.alpha[i]), math.sin(self.alpha[i])
            a_i = np.array(
                [
                    [ct, -st * ca, st * sa, self.a[i] * ct],
                    [st, ct * ca, -ct * sa, self.a[i] * st],
                    [0.0, sa, ca, self.d[i]],
                    [0.0, 0.0, 0.0, 1.0],
                ]
            )
            t = t @ a_i
            out.append(t)
        tool = np.eye(4)
        tool[2, 3] = self.tool_length_m
        out.append(t @ tool)
        return out

    def fk(self, q: Sequence[float]) -> np.ndarray:
        """4x4 tool pose in the base frame for joints q (radians)."""
        return self.frames(np.asarray(q, dtype=np.float64))[-1]

    def jacobian(self, q: np.ndarray) -> np.ndarray:
        """(6, n) geometric Jacobian of the tool: rows (linear; angular)."""
        fr = self.frames(q)
        p_end = fr[-1][:3, 3]
        jac = np.zeros((6, self.dof))
        for i in range(self.dof):
            z, p = fr[i][:3, 2], fr[i][:3, 3]
            jac[:3, i] = np.cross(z, p_end - p)
            jac[3:, i] = z
        return jac

    def ik(
        self,
        position: Sequence[float],
        rotation: np.ndarray = BRUSH_DOWN,
        seed: Sequence[float] | None = None,
        tol_m: float = 1e-6,
        max_iter: int = 300,
        damping: float = 0.05,
    ) -> np.ndarray:
        """Joints (radians) that put the tool at `position` (m, base frame) with `rotation`.

        Raises:
            UnreachableError: beyond reach, outside joint limits, or no convergence.
        """
        target = np.asarray(position, dtype=np.float64)
        shoulder = np.array([0.0, 0.0, self.d[0]])
        if np.linalg.norm(target - shoulder) > self.max_reach_m:
            raise UnreachableError(
                f"{self.name}: target {np.round(target, 4).tolist()} m is "
                f"{np.linalg.norm(target - shoulder):.3f} m from the shoulder, beyond the "
                f"{self.max_reach_m:.3f} m reach"
            )
        q = np.array(self.ready if seed is None else seed, dtype=np.float64)
        for _ in range(max_iter):
            pose = self.fk(q)
            err_p = target - pose[:3, 3]
            r = pose[:3, :3]
            err_r = 0.5 * sum(np.cross(r[:, k], rotation[:, k]) for k in range(3))
            if np.linalg.norm(err_p) < tol_m and np.linalg.norm(err_r) < tol_m:
                break
            jac = self.jacobian(q)
            e = np.concatenate([err_p, err_r])
            lam2 = (damping * min(1.0, np.linalg.norm(e) * 10)) ** 2
            q = q + jac.T @ np.linalg.solve(jac @ jac.T + lam2 * np.eye(6), e)
        else:
            raise UnreachableError(
                f"{self.name}: no joint solution for {np.round(target, 4).tolist()} m with the "
                f"brush down (position error {np.linalg.norm(err_p) * 1000:.3f} mm)"
            )
        ref = np.array(self.ready if seed is None else seed, dtype=np.float64)
        q = nearest_branch(q, ref, np.array(self.joint_limits))
        if q is None:
            raise UnreachableError(f"{self.name}: no solution for {np.round(target, 4).tolist()} m "
                                   "within the joint limits")  # fmt: skip
        return q

    def ik_path(self, positions: np.ndarray, seed: Sequence[float] | None = None) -> np.ndarray:
        """IK for every (N, 3) position (warm-started along the path). All or nothing: raises
        `UnreachableError` naming the first bad point before returning anything."""
        out, q = [], seed
        for i, p in enumerate(np.asarray(positions, dtype=np.float64)):
            try:
                q = self.ik(p, seed=q)
            except UnreachableError as e:
                raise UnreachableError(f"point {i}: {e}") from None
            out.append(q)
        return np.array(out)


def nearest_branch(q: np.ndarray, ref: np.ndarray, limits: np.ndarray) -> np.ndarray | None:
    """The joint values equivalent to `q` (each joint moved by whole turns, 2 pi) that lie within
    ``limits`` (n, 2) and nearest to ``ref`` (rad), or None when some joint has none.

    Revolute joints with limits beyond +-pi (a UR's +-2 pi) reach a pose two ways: taking the
    one nearest the previous joints keeps a path continuous, so the base never swings the long
    way round between two nearby targets.
    """
    turn = 2 * math.pi
    out = ref + (q - ref + math.pi) % turn - math.pi  # (n,) within half a turn of ref
    for j in range(len(out)):
        lo, hi = limits[j]
        if out[j] < lo - 1e-9 or out[j] > hi + 1e-9:  # nearest is outside: try the other turns
            candidates = [out[j] + k * turn for k in (-2, -1, 1, 2)]
            inside = [c for c in candidates if lo - 1e-9 <= c <= hi + 1e-9]
            if not inside:
                return None
            out[j] = min(inside, key=lambda c: abs(c - ref[j]))
    return out


_PI = math.pi
UR5E = SerialChain(
    name="UR5e",
    a=(0.0, -0.425, -0.3922, 0.0, 0.0, 0.0),
    alpha=(_PI / 2, 0.0, 0.0, _PI / 2, -_PI / 2, 0.0),
    d=(0.1625, 0.0, 0.0, 0.1333, 0.0997, 0.0996),
    theta0=(0.0,) * 6,
    joint_limits=((-2 * _PI, 2 * _PI),) * 6,
    ready=(0.0, -1.9, 1.9, -1.57, -1.57, 0.0),  # elbow up, wrist down, tool over the table
)
ARMS = {"ur5e": UR5E}


@dataclass(frozen=True)
class CanvasFrame:
    """Canvas -> robot base: where the canvas' top-left corner is and how it is turned.

    Attributes:
        origin_m: base-frame (x, y, z) of the canvas' top-left corner on its surface (m).
        yaw_rad: rotation of the canvas' x axis about base z (rad).
    """

    origin_m: tuple[float, float, float] = (0.55, 0.14, 0.02)
    yaw_rad: float = field(default=-math.pi / 2)

    def to_base(self, xy_m: np.ndarray, height_m: float | np.ndarray = 0.0) -> np.ndarray:
        """(N, 2) canvas meters (+ height above the surface, m) -> (N, 3) base meters.
        Canvas x right, y down, z into the canvas: base z = surface + height."""
        xy = np.atleast_2d(np.asarray(xy_m, dtype=np.float64))
        c, s = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        ex, ey = np.array([c, s, 0.0]), np.array([s, -c, 0.0])
        h = np.broadcast_to(np.asarray(height_m, dtype=np.float64), (len(xy),))
        return np.asarray(self.origin_m) + xy[:, :1] * ex + xy[:, 1:2] * ey + h[:, None] * [0, 0, 1]
