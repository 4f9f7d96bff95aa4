"""`BrushPath`: the path of the brush tip that a stroke implies; what arms execute.

Waypoints are canvas meters (x, y) plus z, the normalised pressing depth: 0 = the bristles just
touch the canvas, 1 = pressed as hard as the brush allows. An arm maps z to its own height using
its brush-height calibration; moves between paths (lift, travel, lower) are the arm's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from sim.strokes import Strokes


def stroke_local_path(length: torch.Tensor, bend: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points of the strokes' Bezier paths in their local frames.

    Args:
        length, bend: (N,) meters.
        t: (K,) curve parameters in 0..1.
    Returns:
        (N, K, 2) local (x, y) in meters; x = L*t, y = -3*bend*t*(1-t) (see `sim.brush`).
    """
    x = length[:, None] * t[None, :]
    y = -3.0 * bend[:, None] * (t * (1 - t))[None, :]
    return torch.stack([x, y], dim=-1)


def local_to_canvas(local: torch.Tensor, position: torch.Tensor, angle: torch.Tensor):
    """Local stroke-frame points (N, ..., 2) -> canvas meters, for starts (N, 2), angles (N,)."""
    extra = (1,) * (local.dim() - 2)
    c = torch.cos(angle).view(-1, *extra)
    s = torch.sin(angle).view(-1, *extra)
    u, v = local[..., 0], local[..., 1]
    x = position[:, 0].view(-1, *extra) + u * c - v * s
    y = position[:, 1].view(-1, *extra) + u * s + v * c
    return torch.stack([x, y], dim=-1)


@dataclass
class BrushPath:
    """One continuous brush contact: waypoints and the paint it carries.

    Args:
        points: (K, 3) float tensor of (x m, y m, z pressing depth 0..1), K >= 2.
        color: (3,) RGB in 0..1.
        palette_index: index of the paint in the robot's palette, if known.
        meta: JSON-able extras. Planners set ``meta["clean_before"] = True`` where the brush must
            be cleaned before this path (a colour change) and ``meta["dip_before"] = True`` where
            it must take paint first; arms act on them.
    """

    points: torch.Tensor
    color: torch.Tensor
    palette_index: int | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        p = self.points
        if not isinstance(p, torch.Tensor) or p.dim() != 2 or p.shape[1] != 3 or p.shape[0] < 2:
            shape = tuple(p.shape) if isinstance(p, torch.Tensor) else type(p).__name__
            raise ValueError(f"BrushPath.points must have shape (K>=2, 3), got {shape}")
        if not bool(torch.isfinite(p).all()):
            raise ValueError("BrushPath.points contains NaN or infinite values")
        if not isinstance(self.color, torch.Tensor) or tuple(self.color.shape) != (3,):
            raise ValueError("BrushPath.color must be a tensor of shape (3,)")

    @property
    def length_m(self) -> float:
        """Length of the path on the canvas (m)."""
        return float((self.points[1:, :2] - self.points[:-1, :2]).norm(dim=-1).sum())

    def to_dict(self) -> dict:
        return {
            "points": self.points.tolist(),
            "color": self.color.tolist(),
            "palette_index": self.palette_index,
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: dict) -> BrushPath:
        unknown = set(data) - {"points", "color", "palette_index", "meta"}
        if unknown:
            raise ValueError(f"BrushPath: unknown fields {sorted(unknown)}")
        return cls(
            points=torch.tensor(data["points"], dtype=torch.float32),
            color=torch.tensor(data["color"], dtype=torch.float32),
            palette_index=data.get("palette_index"),
            meta=dict(data.get("meta") or {}),
        )

    @classmethod
    def from_strokes(cls, strokes: Strokes, points_per_stroke: int = 16) -> list[BrushPath]:
        """One path per stroke, in stroke order, sampling each Bezier at `points_per_stroke`."""
        s = strokes.detach().to("cpu", torch.float32)
        t = torch.linspace(0.0, 1.0, points_per_stroke)
        xy = local_to_canvas(stroke_local_path(s.length, s.bend, t), s.position, s.angle)
        z = s.pressure[:, None].expand(-1, points_per_stroke)
        pts = torch.cat([xy, z[..., None]], dim=-1)  # (N, K, 3)
        return [
            cls(
                points=pts[i].clone(),
                color=s.color[i].clone(),
                palette_index=None if s.palette_index is None else int(s.palette_index[i]),
            )
            for i in range(len(s))
        ]
