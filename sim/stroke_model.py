"""Stroke models: (length, bend, pressure) -> opacity map in the stroke's local frame.

The local frame: x along the stroke's chord from its start, y perpendicular and down (the canvas'
handedness), in meters. A `StrokeFrame` fixes which rectangle of that frame a map covers and at
what resolution. Two implementations share one interface:

- `AnalyticStrokeModel`: the Bezier path (a parabola, see `sim.brush`) swept with a
  pressure-dependent width and soft edges. Needs no training; exact at any resolution.
- `LearnedStrokeModel`: the analytic model with learnable brush constants plus a small network
  that adds a residual (in logit space) conditioned on the shape. Fitted to real strokes by the
  sim-to-real calibration; starts out identical to the analytic model.

Both save as ``config.json`` + ``model.safetensors`` and load with `load_stroke_model(dir)`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from sim.brush import Brush


@dataclass(frozen=True)
class StrokeFrame:
    """A rectangle of the stroke's local frame rasterised at a given resolution.

    Extents in meters; the raster is (height_px, width_px), pixel centres at +0.5 as for canvases.
    """

    x_min: float
    x_max: float
    y_min: float
    y_max: float
    width_px: int
    height_px: int

    @classmethod
    def for_brush(cls, brush: Brush, m_per_px: float) -> StrokeFrame:
        """The smallest frame holding any stroke the brush can make, at `m_per_px` resolution."""
        r = brush.max_width_m / 2 + EDGE_CUTOFF * brush.softness_m
        half_y = 0.75 * brush.max_bend_m + r
        return cls(-r, brush.max_length_m + r, -half_y, half_y, 1, 1).at(m_per_px)

    def at(self, m_per_px: float) -> StrokeFrame:
        """The same rectangle (grown by < 1 px, about its centre) at another resolution."""
        w = max(2, math.ceil((self.x_max - self.x_min) / m_per_px))
        h = max(2, math.ceil((self.y_max - self.y_min) / m_per_px))
        cx, cy = (self.x_min + self.x_max) / 2, (self.y_min + self.y_max) / 2
        half_w, half_h = w * m_per_px / 2, h * m_per_px / 2
        return StrokeFrame(cx - half_w, cx + half_w, cy - half_h, cy + half_h, w, h)

    @property
    def m_per_px(self) -> float:
        return (self.x_max - self.x_min) / self.width_px

    @property
    def diagonal_m(self) -> float:
        return math.hypot(self.x_max - self.x_min, self.y_max - self.y_min)

    @property
    def center_m(self) -> tuple[float, float]:
        return ((self.x_min + self.x_max) / 2, (self.y_min + self.y_max) / 2)

    def grid(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """Local meters of every pixel centre, shape (height_px, width_px, 2) as (x, y)."""
        xs = torch.linspace(self.x_min, self.x_max, self.width_px + 1, device=device, dtype=dtype)
        ys = torch.linspace(self.y_min, self.y_max, self.height_px + 1, device=device, dtype=dtype)
        xs, ys = (xs[1:] + xs[:-1]) / 2, (ys[1:] + ys[:-1]) / 2
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([gx, gy], dim=-1)

    def normalise(self, xy: torch.Tensor) -> torch.Tensor:
        """Local meters (..., 2) -> grid_sample coordinates in [-1, 1] (align_corners=False)."""
        lo = xy.new_tensor([self.x_min, self.y_min])
        hi = xy.new_tensor([self.x_max, self.y_max])
        return (xy - lo) / (hi - lo) * 2 - 1


# Edge cut-off: opacity reaches exactly 0 at distance width/2 + EDGE_CUTOFF * softness, so a
# stroke has compact support and the renderer can skip every tile it cannot reach.
EDGE_CUTOFF = 6.0
_SIGMOID_AT_CUTOFF = 1.0 / (1.0 + math.exp(EDGE_CUTOFF))


def _closest_t(x, y, length, k):
    """Curve parameter t* in 0..1 of the path point closest to (x, y); no autograd graph.

    Three Newton steps on g(s) = (s - x) + (f(s) - y) f'(s) from the vertical projection, with
    f(s) = k s (s - L), then clamped to the ends (round caps).
    """
    with torch.no_grad():
        L = length
        s = torch.minimum(x.clamp(min=0.0).expand(L.shape[0], -1, -1), L)
        for _ in range(3):
            f = k * s * (s - L)
            df = k * (2 * s - L)
            r = f - y
            g = (s - x) + r * df
            dg = (1 + df * df + r * 2 * k).clamp_(min=0.25)
            s = torch.minimum((s - g / dg).clamp_(min=0.0), L)
        return s / L


def analytic_opacity(
    xy: torch.Tensor,
    length: torch.Tensor,
    bend: torch.Tensor,
    pressure: torch.Tensor,
    min_width: torch.Tensor | float,
    max_width: torch.Tensor | float,
    softness: torch.Tensor | float,
    min_opacity: torch.Tensor | float,
    max_opacity: torch.Tensor | float,
    taper: float = 0.0,
) -> torch.Tensor:
    """Opacity of N parabolic strokes at local points.

    Args:
        xy: (H, W, 2) local meters (shared by all strokes).
        length, bend, pressure: (N,) stroke shapes (m, m, 0..1).
        min_width, max_width, softness: meters (floats or 0-d tensors, may require grad).
        min_opacity, max_opacity: 0..1.
        taper: fraction of the path over which the width ramps up from 0 at each end.
    Returns:
        (N, H, W) opacity in 0..1, differentiable in every tensor argument; exactly 0 beyond
        width/2 + EDGE_CUTOFF * softness from the path.
    """
    x = xy[..., 0][None]  # (1, H, W)
    y = xy[..., 1][None]
    L = length.clamp(min=1e-4)[:, None, None]  # (N, 1, 1)
    k = 3.0 * bend[:, None, None] / (L * L)  # the path: y = f(s) = k s (s - L), s = L t
    # The closest point is found without a graph, then one Newton step is taken with the graph:
    # at a root its derivative is the implicit-function derivative, so gradients stay exact
    # while autograd records ~10 ops instead of the whole iteration. Ends stay tied to L.
    t0 = _closest_t(x, y, L.detach(), k.detach())
    s0 = t0 * L.detach()
    f0 = k * s0 * (s0 - L)
    df0 = k * (2 * s0 - L)
    r0 = f0 - y
    s_newton = s0 - ((s0 - x) + r0 * df0) / (1 + df0 * df0 + r0 * 2 * k).clamp(min=0.25)
    interior = (t0 > 0) & (t0 < 1)
    s = torch.where(interior, s_newton, t0 * L)
    t = s / L
    dist = torch.sqrt((x - s) ** 2 + (y - k * s * (s - L)) ** 2 + 1e-12)
    p = pressure[:, None, None]
    width = min_width + (max_width - min_width) * p
    if taper > 0:
        ramp = (torch.minimum(t, 1 - t) / taper).clamp(max=1.0)
        width = width * torch.sqrt(ramp.clamp(min=1e-3))
    opacity = min_opacity + (max_opacity - min_opacity) * p
    edge = (torch.sigmoid((width / 2 - dist) / softness) - _SIGMOID_AT_CUTOFF).clamp(min=0.0)
    return opacity * edge / (1 - _SIGMOID_AT_CUTOFF)


def analytic_support(length, bend, pressure, min_width, max_width, softness):
    """Local-frame box (N, 4) = (x0, x1, y0, y1) meters outside which the opacity is 0."""
    with torch.no_grad():
        width = min_width + (max_width - min_width) * pressure.clamp(0, 1)
        r = width / 2 + EDGE_CUTOFF * softness
        peak = -0.75 * bend  # the parabola's apex offset (y down)
        return torch.stack(
            [-r, length.clamp(min=1e-4) + r, torch.clamp(peak, max=0) - r, peak.clamp(min=0) + r],
            -1,
        )


class StrokeModel(nn.Module):
    """Interface: shapes -> local-frame opacity maps. Subclasses implement `forward`."""

    kind: str = ""

    def __init__(self, brush: Brush, frame: StrokeFrame | None = None):
        super().__init__()
        self.brush = brush
        # The native frame: what `forward` rasterises when no frame is given (0.25 mm pixels).
        self.frame = frame or StrokeFrame.for_brush(brush, 0.00025)

    def forward(
        self,
        length: torch.Tensor,
        bend: torch.Tensor,
        pressure: torch.Tensor,
        frame: StrokeFrame | None = None,
    ) -> torch.Tensor:
        """Opacity maps (N, frame.height_px, frame.width_px) in 0..1 for (N,) shapes."""
        raise NotImplementedError

    def support(self, length, bend, pressure) -> torch.Tensor:
        """Local boxes (N, 4) = (x0, x1, y0, y1) meters outside which a stroke is 0.

        The renderer composites only the tiles these boxes reach. Default: the whole frame.
        """
        f = self.frame
        box = length.new_tensor([f.x_min, f.x_max, f.y_min, f.y_max])
        return box.expand(length.shape[0], 4)

    def config(self) -> dict:
        return {"type": self.kind, "brush": self.brush.to_dict(), "frame": asdict(self.frame)}

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into `directory` (created)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(tensors, str(directory / "model.safetensors"))
        (directory / "config.json").write_text(json.dumps(self.config(), indent=2))
        return directory


class AnalyticStrokeModel(StrokeModel):
    """Bezier path swept with a pressure-dependent width and soft edges; no parameters."""

    kind = "analytic"

    def forward(self, length, bend, pressure, frame=None):
        frame = frame or self.frame
        b = self.brush
        xy = frame.grid(device=length.device, dtype=length.dtype)
        return analytic_opacity(
            xy, length, bend, pressure, b.min_width_m, b.max_width_m, b.softness_m,
            b.min_opacity, b.max_opacity, b.taper,
        )  # fmt: skip

    def support(self, length, bend, pressure):
        b = self.brush
        return analytic_support(length, bend, pressure, b.min_width_m, b.max_width_m, b.softness_m)


def _move(maps: torch.Tensor, frame: StrokeFrame, angle: torch.Tensor, shift: torch.Tensor):
    """Rotate (N, H, W) local maps by `angle` (N,) rad about the start, then shift (N, 2) m.

    Bilinear resampling in the frame's own pixels; zeros are brought in from outside.
    """
    cx, cy = frame.center_m
    half = maps.new_tensor([(frame.x_max - frame.x_min) / 2, (frame.y_max - frame.y_min) / 2])
    centre = maps.new_tensor([cx, cy])
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Output point q samples the source at R^T (q - shift); in normalised coordinates
    # q = centre + half * u, so
    # u_src = diag(1/half) R^T diag(half) u + (R^T (centre - shift) - centre) / half.
    rt = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)  # (N, 2, 2)
    linear = rt * half[None, None, :] / half[None, :, None]
    d = centre - shift  # (N, 2)
    offset = (torch.einsum("nij,nj->ni", rt, d) - centre) / half
    theta = torch.cat([linear, offset[..., None]], -1)  # (N, 2, 3)
    grid = F.affine_grid(theta, [maps.shape[0], 1, *maps.shape[1:]], align_corners=False)
    return F.grid_sample(maps[:, None], grid, mode="bilinear", align_corners=False)[:, 0]


class LearnedStrokeModel(StrokeModel):
    """Analytic geometry with learnable brush constants + a residual network.

    Learnable, all starting at the analytic model's values:

    - brush constants: widths at pressure 0 and 1, edge softness, opacities at pressure 0 and 1;
    - how the brush realises a command: effective length ``L * exp(log_length_gain) +
      length_bias``, effective bend ``bend * exp(log_bend_gain)``, and a constant offset of the
      mark from the commanded start (``offset_mm``; real arms and markers lag and overshoot);
    - a residual in logit space, in the stroke's own path coordinates: an MLP from normalised
      (length, bend, pressure) to a coarse map over (t along the path 0..1, signed distance
      from the path within +-``residual_reach_m``), sampled bilinearly at every pixel's closest
      path point. It models what a swept disc cannot (ink blobs where the marker dwells at the
      ends, width varying along the stroke, a lopsided edge) and renders at any resolution.

    The residual's last layer starts at zero: an untrained model equals the analytic one.
    """

    kind = "learned"

    def __init__(
        self,
        brush: Brush,
        frame: StrokeFrame | None = None,
        hidden: int = 128,
        residual_size: tuple[int, int] = (8, 24),
        residual_reach_m: float | None = None,
    ):
        super().__init__(brush, frame)
        self.hidden = hidden
        self.residual_size = tuple(residual_size)  # (across the path, along the path) cells
        # How far across the path the residual reaches (m); beyond it the residual is 0.
        self.residual_reach_m = float(residual_reach_m or brush.max_width_m)
        # Brush constants in unconstrained form (log widths, logit opacities).
        self.log_min_width = nn.Parameter(torch.tensor(math.log(brush.min_width_m)))
        self.log_max_width = nn.Parameter(torch.tensor(math.log(brush.max_width_m)))
        self.log_softness = nn.Parameter(torch.tensor(math.log(brush.softness_m)))
        self.logit_min_opacity = nn.Parameter(torch.logit(torch.tensor(brush.min_opacity * 0.98)))
        self.logit_max_opacity = nn.Parameter(torch.logit(torch.tensor(brush.max_opacity * 0.98)))
        # Command -> realised path (identity at start). Offsets in mm keep Adam's steps O(1).
        self.log_length_gain = nn.Parameter(torch.tensor(0.0))
        self.length_bias_mm = nn.Parameter(torch.tensor(0.0))
        self.log_bend_gain = nn.Parameter(torch.tensor(0.0))
        self.offset_mm = nn.Parameter(torch.zeros(2))
        self.rotation_mrad = nn.Parameter(torch.tensor(0.0))  # of the whole mark about its start
        h, w = self.residual_size
        # Outputs: the residual map (h * w) + a shape-dependent move (dx mm, dy mm, 10 mrad).
        self.mlp = nn.Sequential(
            nn.Linear(3, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
            nn.Linear(hidden, h * w + 3),
        )  # fmt: skip
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def _normalised_shape(self, length, bend, pressure) -> torch.Tensor:
        b = self.brush
        return torch.stack(
            [length / b.max_length_m * 2 - 1, bend / max(b.max_bend_m, 1e-6), pressure * 2 - 1], -1
        )

    def realised_shape(self, length, bend):
        """The (length, bend) the brush really paints for a commanded one (m, differentiable)."""
        eff_length = length * self.log_length_gain.exp() + self.length_bias_mm * 1e-3
        return eff_length.clamp(min=1e-5), bend * self.log_bend_gain.exp()

    def forward(self, length, bend, pressure, frame=None):
        frame = frame or self.frame
        xy = frame.grid(device=length.device, dtype=length.dtype) - self.offset_mm * 1e-3
        eff_length, eff_bend = self.realised_shape(length, bend)
        base = analytic_opacity(
            xy, eff_length, eff_bend, pressure,
            self.log_min_width.exp(), self.log_max_width.exp(), self.log_softness.exp(),
            torch.sigmoid(self.logit_min_opacity), torch.sigmoid(self.logit_max_opacity),
            self.brush.taper,
        )  # fmt: skip
        n = length.shape[0]
        h, w = self.residual_size
        out = self.mlp(self._normalised_shape(length, bend, pressure))  # (N, h * w + 3)
        coarse = out[:, : h * w].view(n, 1, h, w)
        # Path coordinates of every pixel: t of its closest path point, signed distance (y down).
        x, y = xy[..., 0][None], xy[..., 1][None]  # (1, H, W)
        L = eff_length.detach().clamp(min=1e-4)[:, None, None]  # (N, 1, 1)
        k = 3.0 * eff_bend.detach()[:, None, None] / (L * L)
        t = _closest_t(x, y, L, k)  # (N, H, W)
        s = t * L
        dist = torch.sqrt((x - s) ** 2 + (y - k * s * (s - L)) ** 2 + 1e-12)
        signed = torch.where(y >= k * s * (s - L), dist, -dist) / self.residual_reach_m
        grid = torch.stack([t * 2 - 1, signed], -1)  # (N, H, W, 2) in grid_sample's [-1, 1]
        residual = F.grid_sample(coarse, grid, mode="bilinear", align_corners=True)[:, 0]
        logit = torch.logit(base.clamp(1e-4, 1 - 1e-4))
        opacity = torch.sigmoid(logit + residual)
        angle = (self.rotation_mrad + 10 * out[:, h * w + 2]) * 1e-3  # (N,) radians
        return _move(opacity, frame, angle, out[:, h * w : h * w + 2] * 1e-3)

    def config(self) -> dict:
        return {
            **super().config(),
            "hidden": self.hidden,
            "residual_size": list(self.residual_size),
            "residual_reach_m": self.residual_reach_m,
        }


STROKE_MODELS: dict[str, type[StrokeModel]] = {
    "analytic": AnalyticStrokeModel,
    "learned": LearnedStrokeModel,
}


def load_stroke_model(directory: str | Path) -> StrokeModel:
    """Load a model written by `StrokeModel.save` (safetensors only, never pickle)."""
    directory = Path(directory)
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"no stroke model at {directory}: {config_path.name} is missing")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{config_path}: invalid JSON ({e})") from None
    kind = config.pop("type", None)
    if kind not in STROKE_MODELS:
        raise ValueError(f"{config_path}: unknown stroke model type {kind!r}")
    brush = Brush.from_dict(config.pop("brush"))
    frame = StrokeFrame(**config.pop("frame"))
    if "residual_size" in config:
        config["residual_size"] = tuple(config["residual_size"])
    model = STROKE_MODELS[kind](brush, frame, **config)
    weights = directory / "model.safetensors"
    if weights.is_file():
        model.load_state_dict(load_file(str(weights)))
    elif len(model.state_dict()):  # a learned model without its weights would paint untrained
        raise FileNotFoundError(
            f"stroke model at {directory} has no {weights.name}: its {kind} model's weights are "
            "missing (copy the whole folder, or calibrate again)"
        )
    return model
