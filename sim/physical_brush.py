"""`PhysicalBrush`: a non-differentiable brush that stands in for the real world.

The simulated arm paints with it and data generation uses it; the gap between its marks and the
differentiable `Renderer`'s is the measurable sim-to-real gap. It paints a `BrushPath` the way a
loaded brush would: width follows the pressing depth z and tapers at the ends, bristles leave
streaks along the path, paint drains with the area painted so a long stroke fades (and breaks up)
until a `dip` reloads it, the arm lands a little off, and edges are slightly rough. The mark is
composited over the canvas by its opacity (paint covers, it does not add).

Everything is defined in canvas meters, including every noise field (indexed by arc length along
the path and by position across it), so the same path at 256 and 512 px gives the same picture
up to resampling. Work is confined to the path's bounding box, in vectorised numpy float32.
Randomness comes from one seeded numpy generator whose draws depend only on the paths, so the
same seed and the same calls give bit-identical images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
import torch

from sim.brush import Brush
from sim.brush_path import BrushPath
from sim.canvas import Canvas

_PROFILE_STEP_M = 0.00025  # spacing of the 1D along-path profiles (width, opacity, load)
_MAX_PROFILE = 2048


@dataclass(frozen=True)
class PhysicalBrushConfig:
    """How a real brush deviates from the ideal stroke. Build defaults with `for_brush`."""

    bristle_count: int = 6  # streak lanes across the mark; ~ bristle bundles that show
    bristle_strength: float = 0.03  # 0..1, opacity lost in the gaps between bristles, fully loaded
    dry_streak: float = 0.3  # 0..1, extra streak strength as the brush runs dry (dry-brush)
    streak_length_m: float = 0.01  # m, how far a streak runs before its strength changes
    capacity_m2: float = 1.0  # m^2 of mark a full load paints before it is dry (Sharpie: ~1 m^2)
    pickup: float = 1.0  # 0..1, load added per dip (1 = a dip always fills the brush)
    fade_start: float = 0.05  # 0..1, load below which the mark fades linearly to nothing at 0
    width_gamma: float = 1.0  # width = min + (max-min) * z**gamma; >1: soft bristles splay late
    width_jitter: float = 0.02  # relative std of the width, varying along the stroke
    width_jitter_length_m: float = 0.01  # m, correlation length of that width variation
    position_jitter_m: float = 0.0003  # m, std of the whole stroke's offset (arm repeatability)
    wobble_m: float = 0.0001  # m, std of a smooth sideways drift along the path (arm / bristle lag)
    wobble_length_m: float = 0.02  # m, correlation length of the drift
    edge_roughness_m: float = 0.00008  # m, std of the edge's displacement (paper tooth, bleed)
    edge_roughness_length_m: float = 0.0005  # m, correlation length of the edge noise
    edge_softness_m: float = 0.00015  # m, width of the edge's opacity ramp (at least 1 px is used)
    seed: int = 0  # seed of the brush's random generator

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("bristle_count", "seed"):
                least = 1 if f.name == "bristle_count" else 0
                if not isinstance(value, int) or value < least:
                    raise ValueError(f"PhysicalBrushConfig.{f.name} must be an int >= {least}")
            elif not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"PhysicalBrushConfig.{f.name} must be >= 0, got {value!r}")
        for name in ("bristle_strength", "dry_streak", "pickup", "fade_start"):
            if getattr(self, name) > 1:
                raise ValueError(f"PhysicalBrushConfig.{name} must be in 0..1")
        for name in (
            "capacity_m2",
            "streak_length_m",
            "width_jitter_length_m",
            "wobble_length_m",
            "edge_roughness_length_m",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"PhysicalBrushConfig.{name} must be > 0")

    @classmethod
    def for_brush(cls, brush: Brush, seed: int = 0) -> PhysicalBrushConfig:
        """Sensible defaults for a brush: a marker (taper 0) barely runs dry and has almost no
        texture; a tapered brush streaks, splays under pressure and runs out visibly."""
        if brush.taper == 0:  # felt tip: ink flows for hundreds of meters of line
            return cls(
                edge_roughness_m=0.02 * brush.max_width_m,
                edge_softness_m=0.5 * brush.softness_m,
                seed=seed,
            )
        return cls(  # bristle brush with acrylic
            bristle_count=int(np.clip(round(brush.max_width_m / 0.0004), 8, 64)),
            bristle_strength=0.25,
            dry_streak=0.6,
            streak_length_m=0.015,
            capacity_m2=0.1 * brush.max_width_m,  # ~10 cm of full-width stroke per load
            fade_start=0.5,
            width_gamma=1.3,
            width_jitter=0.06,
            wobble_m=0.0002,
            edge_roughness_m=0.015 * brush.max_width_m,
            edge_softness_m=0.5 * brush.softness_m,
            seed=seed,
        )


def _smooth_noise(rng: np.random.Generator, length_m: float, cell_m: float, n: int = 1):
    """n smooth random functions of arc length: N(0, 1) knots every `cell_m` (drawn now, their
    count depends only on the path) blended with a smoothstep. Returns f(s (M,)) -> (M, n)."""
    knots = rng.standard_normal((math.ceil(length_m / cell_m) + 2, n))

    def f(s: np.ndarray) -> np.ndarray:
        q = np.minimum(s * (1.0 / cell_m), knots.shape[0] - 1.001)
        i = q.astype(np.int64)
        w = (q - i)[:, None]
        w = w * w * (3 - 2 * w)
        return knots[i] * (1 - w) + knots[i + 1] * w

    return f


class PhysicalBrush:
    """A brush with state (its paint and how much is left) that paints `BrushPath`s.

    Args:
        brush: the brush's ranges (width at pressure 0/1, taper, opacity at pressure 0/1).
        config: how it deviates from ideal; default `PhysicalBrushConfig.for_brush(brush)`.
        seed: overrides `config.seed` when given.

    The brush starts clean (no paint); call `dip(color)` before painting. A mark always has the
    colour of the loaded paint, like a real brush, whatever the path's `color` says.
    """

    def __init__(
        self, brush: Brush, config: PhysicalBrushConfig | None = None, seed: int | None = None
    ) -> None:
        self.brush = brush
        self.config = config if config is not None else PhysicalBrushConfig.for_brush(brush)
        self.seed = self.config.seed if seed is None else int(seed)
        self._rng = np.random.default_rng(self.seed)
        self.paint_load = 0.0  # 0..1 of a full load
        self.color: torch.Tensor | None = None  # (3,) sRGB of the loaded paint

    # ---- paint handling ---------------------------------------------------------------------
    def dip(self, color: torch.Tensor) -> None:
        """Load paint of `color` ((3,) RGB in 0..1): the load grows by `config.pickup`, up to 1.
        Dipping into another colour replaces the paint (mixing is not modelled; clean first)."""
        color = torch.as_tensor(color, dtype=torch.float32).detach().cpu()
        if tuple(color.shape) != (3,) or not bool(((color >= 0) & (color <= 1)).all()):
            raise ValueError(f"dip: color must be (3,) RGB in 0..1, got {color.tolist()}")
        if self.color is None or not torch.equal(color, self.color):
            self.paint_load = 0.0
        self.color = color.clone()
        self.paint_load = min(1.0, self.paint_load + self.config.pickup)

    def clean(self) -> None:
        """Wash the brush: no paint, no load."""
        self.paint_load = 0.0
        self.color = None

    # ---- painting ---------------------------------------------------------------------------
    def paint(self, canvas_image: torch.Tensor, path: BrushPath, canvas: Canvas) -> torch.Tensor:
        """Paint one path with the loaded paint; returns a new image (input not modified).

        Args:
            canvas_image: (3, H, W) float image in 0..1, with (H, W) == canvas.size_px.
            path: brush-tip waypoints (x m, y m, z 0..1) on this canvas.
            canvas: the canvas geometry (meters <-> pixels).
        Returns:
            (3, H, W) image of the same dtype and device. `paint_load` has drained by the area
            painted / `config.capacity_m2`.
        """
        return self._paint_paths(canvas_image, [path], canvas, auto_dip=False, dip_every=None)

    def paint_many(
        self,
        image: torch.Tensor,
        paths: list[BrushPath],
        canvas: Canvas,
        dip_every: int | None = None,
    ) -> torch.Tensor:
        """Paint paths in order as a careful painter would; returns a new image.

        Before a path whose colour is not the loaded paint (or when the brush has none) the
        brush is cleaned and dipped into the path's colour; with `dip_every` set it also re-dips
        every `dip_every` paths. With None, runs of one colour drain the brush (and go dry).
        """
        if dip_every is not None and not (isinstance(dip_every, int) and dip_every >= 1):
            raise ValueError(f"paint_many: dip_every must be None or >= 1, got {dip_every!r}")
        return self._paint_paths(image, paths, canvas, auto_dip=True, dip_every=dip_every)

    def _paint_paths(self, image, paths, canvas, auto_dip: bool, dip_every: int | None):
        _check_image(image, canvas)
        for path in paths:
            _check_path(path)
        # numpy copy: a torch copy of a whole image can cost milliseconds in torch's thread pool
        work = image.detach().cpu()
        if work.dtype not in (torch.float32, torch.float64):
            work = work.float()
        out = work.numpy().copy()  # (3, H, W)
        since_dip = 0
        for path in paths:
            if auto_dip:
                color = path.color.detach().to("cpu", torch.float32).clamp(0.0, 1.0)
                if self.color is None or not torch.equal(color, self.color):
                    self.clean()
                    self.dip(color)
                    since_dip = 0
                elif dip_every is not None and since_dip >= dip_every:
                    self.dip(color)
                    since_dip = 0
            self._paint_into(out, path, canvas)
            since_dip += 1
        return torch.from_numpy(out).to(device=image.device, dtype=image.dtype)

    def _paint_into(self, out: np.ndarray, path: BrushPath, canvas: Canvas) -> None:
        """Composite one path's mark over `out` (3, H, W) in place and drain the paint."""
        if self.color is None:
            raise ValueError("paint: the brush holds no paint; call dip(color) first")
        pts = path.points.detach().to("cpu", torch.float64).numpy()
        mark, box, used_m2 = self._mark(pts, canvas)
        self.paint_load = max(0.0, self.paint_load - used_m2 / self.config.capacity_m2)
        if mark is not None:
            r0, r1, c0, c1 = box
            region = out[:, r0:r1, c0:c1]  # (3, h, w) view
            color = self.color.numpy().astype(out.dtype)[:, None, None]
            region += mark.astype(out.dtype)[None] * (color - region)  # over-compositing

    # ---- the mark ---------------------------------------------------------------------------
    def _mark(self, pts: np.ndarray, canvas: Canvas):
        """Opacity of the mark on its bounding box.

        Returns (alpha (h, w) float32 or None when off-canvas, (r0, r1, c0, c1), area m^2).
        """
        cfg, rng = self.config, self._rng
        # 1. where the arm really goes: a global offset plus a smooth drift along the path
        seg_len = np.sqrt((np.diff(pts[:, :2], axis=0) ** 2).sum(1))
        s_knots = np.concatenate([[0.0], np.cumsum(seg_len)])  # (K,) arc length at waypoints
        offset = rng.normal(0.0, cfg.position_jitter_m, 2)
        drift = _smooth_noise(rng, s_knots[-1], cfg.wobble_length_m, 2)(s_knots)  # (K, 2)
        xy = pts[:, :2] + offset + cfg.wobble_m * drift
        seg = np.diff(xy, axis=0)  # (S, 2)
        seg_len = np.sqrt((seg**2).sum(1))
        s_knots = np.concatenate([[0.0], np.cumsum(seg_len)])
        length = float(s_knots[-1])

        # 2. what the brush does along the path, and the paint it uses
        table, used_m2, lanes = self._profiles(rng, s_knots, pts[:, 2])
        if float(table[:, 1].max()) <= 0:  # dry: nothing reaches the canvas
            return None, None, used_m2

        # 3. the bounding box in pixels (everything the mark can reach)
        sx, sy = canvas.px_per_m
        reach = float(table[:, 0].max()) + 4 * cfg.edge_roughness_m + 2 * cfg.edge_softness_m
        reach += 2.0 * canvas.m_per_px
        h, w = canvas.size_px
        (x0, y0), (x1, y1) = xy.min(0) - reach, xy.max(0) + reach
        c0, c1 = max(0, math.floor(x0 * sx)), min(w, math.ceil(x1 * sx))
        r0, r1 = max(0, math.floor(y0 * sy)), min(h, math.ceil(y1 * sy))
        if c1 <= c0 or r1 <= r0:
            return None, None, used_m2
        xs = (np.arange(c0, c1, dtype=np.float32) + 0.5) / np.float32(sx)  # (w,)
        ys = (np.arange(r0, r1, dtype=np.float32) + 0.5) / np.float32(sy)  # (h,)
        px = np.tile(xs, r1 - r0)  # (Np,) row-major over the box
        py = np.repeat(ys, c1 - c0)

        # 4. nearest point on the path for every pixel: arc length s_pix and signed distance d
        a, dv = xy[:-1].astype(np.float32), seg.astype(np.float32)  # (S, 2) starts, directions
        inv_len2 = 1.0 / np.maximum((dv**2).sum(1), 1e-20)  # (S,)
        rx = px[:, None] - a[:, 0]  # (Np, S)
        ry = py[:, None] - a[:, 1]
        t = np.minimum(np.maximum((rx * dv[:, 0] + ry * dv[:, 1]) * inv_len2, 0.0), 1.0)
        ex, ey = rx - t * dv[:, 0], ry - t * dv[:, 1]
        dist2 = ex * ex + ey * ey
        k = dist2.argmin(1)  # (Np,) nearest segment
        flat = np.arange(k.size) * dist2.shape[1] + k
        pick = lambda v: v.reshape(-1)[flat]  # noqa: E731  (Np, S) -> (Np,) at k
        cross = dv[k, 0] * pick(ry) - dv[k, 1] * pick(rx)  # which side of the path
        d = np.copysign(np.sqrt(pick(dist2)), cross)  # (Np,) m, signed
        s_pix = s_knots.astype(np.float32)[k] + pick(t) * seg_len.astype(np.float32)[k]

        # 5. coverage with rough edges, bristle streaks, opacity (pressure, paint left)
        g = table.shape[0]
        q = s_pix * np.float32((g - 1) / length) if length > 0 else np.zeros_like(s_pix)
        i0 = np.minimum(q.astype(np.int64), g - 2)
        wq = (q - i0)[:, None]
        prof = table[i0] * (1 - wq) + table[i0 + 1] * wq  # (Np, 5)
        half, opacity, streak = prof[:, 0], prof[:, 1], prof[:, 2]
        rough = np.where(d < 0, prof[:, 3], prof[:, 4])
        ramp = max(cfg.edge_softness_m, canvas.m_per_px)
        coverage = np.minimum(np.maximum((half + rough - np.abs(d)) / ramp + 0.5, 0.0), 1.0)
        u = np.minimum(np.maximum(d / np.maximum(half, 1e-9), -1.0), 1.0)  # -1..1 across
        tex = _lanes(lanes, s_pix / cfg.streak_length_m, 0.5 * (u + 1.0) * cfg.bristle_count)
        alpha = coverage * opacity * (1.0 - streak * tex)
        return alpha.reshape(r1 - r0, c1 - c0), (r0, r1, c0, c1), used_m2

    def _profiles(self, rng: np.random.Generator, s_knots: np.ndarray, z_knots: np.ndarray):
        """Everything that varies only along the path, sampled every _PROFILE_STEP_M.

        Returns a (G, 5) float32 table (half width m, opacity, streak strength, left and right
        edge offsets m) over arc lengths linspace(0, length, G), the area painted (m^2) and the
        (cells, bristle_count + 1) streak texture.
        """
        cfg, brush = self.config, self.brush
        length = float(s_knots[-1])
        g = min(max(math.ceil(length / _PROFILE_STEP_M) + 1, 2), _MAX_PROFILE)
        s = np.linspace(0.0, length, g)  # (G,)
        z = np.interp(s, s_knots, z_knots) if length > 0 else np.full(g, z_knots[0])
        # width follows pressure (splaying late for gamma > 1), wavers, and tapers at the ends
        width = brush.min_width_m + (brush.max_width_m - brush.min_width_m) * z**cfg.width_gamma
        wiggle = _smooth_noise(rng, length, cfg.width_jitter_length_m)(s)[:, 0]
        width *= np.minimum(np.maximum(1.0 + cfg.width_jitter * wiggle, 0.5), 1.5)
        if brush.taper > 0 and length > 0:
            f = np.minimum(np.minimum(s, length - s) / (brush.taper * length), 1.0)
            width *= np.sin(0.5 * np.pi * f)
        # the load drains with the area painted; below fade_start the mark fades and streaks
        area = np.concatenate([[0.0], np.cumsum(0.5 * (width[1:] + width[:-1]) * np.diff(s))])
        load = np.maximum(self.paint_load - area / cfg.capacity_m2, 0.0)
        fade = np.minimum(load / max(cfg.fade_start, 1e-9), 1.0)
        opacity = (brush.min_opacity + (brush.max_opacity - brush.min_opacity) * z) * fade
        streak = np.minimum(cfg.bristle_strength + cfg.dry_streak * (1.0 - fade), 1.0)
        rough = cfg.edge_roughness_m * _smooth_noise(rng, length, cfg.edge_roughness_length_m, 2)(s)
        n_cells = math.ceil(length / cfg.streak_length_m) + 2
        lanes = rng.random((n_cells, cfg.bristle_count + 1)).astype(np.float32) ** 2  # few gaps
        table = np.concatenate([np.stack([0.5 * width, opacity, streak], 1), rough], 1)
        return table.astype(np.float32), float(area[-1]), lanes


def _lanes(lanes: np.ndarray, along: np.ndarray, across: np.ndarray) -> np.ndarray:
    """Streak texture in 0..1 from a (cells, lanes+1) grid: smooth along the path, sharper
    across it (each bristle lane keeps its value for most of its width)."""
    n_a, n_c = lanes.shape
    qa = np.minimum(along, n_a - 1.001)  # along, across >= 0
    qc = np.minimum(across, n_c - 1.001)
    ia, ic = qa.astype(np.int64), qc.astype(np.int64)
    wa = qa - ia
    wa = wa * wa * (3 - 2 * wa)
    wc = np.minimum(
        np.maximum((qc - ic - 0.3) * 2.5, 0.0), 1.0
    )  # lanes meet over 40% of their width
    top = lanes[ia, ic] * (1 - wc) + lanes[ia, ic + 1] * wc
    bottom = lanes[ia + 1, ic] * (1 - wc) + lanes[ia + 1, ic + 1] * wc
    return top * (1 - wa) + bottom * wa


def _check_path(path: BrushPath) -> None:
    if not isinstance(path, BrushPath):
        raise ValueError(f"paint: path must be a BrushPath, got {type(path).__name__}")
    z = path.points[:, 2]
    if float(z.min()) < 0.0 or float(z.max()) > 1.0:
        raise ValueError(
            f"paint: path z (pressing depth) must be in 0..1, got {float(z.min()):.3g}.."
            f"{float(z.max()):.3g}"
        )


def _check_image(image: torch.Tensor, canvas: Canvas) -> None:
    if not isinstance(canvas, Canvas):
        raise ValueError(f"paint: canvas must be a Canvas, got {type(canvas).__name__}")
    if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[0] != 3:
        shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"paint: canvas_image must be a (3, H, W) tensor, got {shape}")
    if not image.is_floating_point():
        raise ValueError(f"paint: canvas_image must be float in 0..1, got {image.dtype}")
    if tuple(image.shape[1:]) != canvas.size_px:
        raise ValueError(
            f"paint: canvas_image is {tuple(image.shape[1:])} px but the canvas renders at "
            f"{canvas.size_px} (H, W)"
        )
