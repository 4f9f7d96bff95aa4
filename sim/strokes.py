"""`Strokes`: a batch of N brush strokes as tensors.

Every field's first dimension is N (the stroke index, which is also the painting order):

| field         | shape  | unit / range                                             |
|---------------|--------|----------------------------------------------------------|
| position      | (N, 2) | canvas meters (x, y) of the stroke's start               |
| angle         | (N,)   | radians, direction of the stroke's chord (0 = +x, +pi/2 = +y, down) |
| length        | (N,)   | meters, chord length                                     |
| bend          | (N,)   | meters, Bezier control offset (see `sim.brush`)          |
| pressure      | (N,)   | 0..1, 1 = pressed hardest                                |
| color         | (N, 3) | sRGB in 0..1 (what `sim.palette` converts to Lab)        |
| palette_index | (N,) or None | long, index into the robot's palette when snapped  |
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields

import torch

from sim.brush import Brush
from sim.canvas import Canvas
from sim.dataclass_io import check_fields

_SHAPES = {
    "position": (2,),
    "angle": (),
    "length": (),
    "bend": (),
    "pressure": (),
    "color": (3,),
}
FIELDS = (*_SHAPES, "palette_index")


@dataclass
class Strokes:
    """A batch of strokes; see the module docstring for shapes and units."""

    position: torch.Tensor
    angle: torch.Tensor
    length: torch.Tensor
    bend: torch.Tensor
    pressure: torch.Tensor
    color: torch.Tensor
    palette_index: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.validate()

    # ---- checks ---------------------------------------------------------------------------
    def validate(self) -> Strokes:
        """Raise ValueError naming the field if a shape is wrong or a value is NaN/inf."""
        n = None
        for name, tail in _SHAPES.items():
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor):
                raise ValueError(f"Strokes.{name} must be a tensor, got {type(value).__name__}")
            if not value.is_floating_point():
                raise ValueError(f"Strokes.{name} must be floating point, got {value.dtype}")
            if value.dim() != 1 + len(tail) or tuple(value.shape[1:]) != tail:
                want = "(N" + "".join(f", {t}" for t in tail) + ")"
                raise ValueError(f"Strokes.{name} must have shape {want}, got {tuple(value.shape)}")
            n = value.shape[0] if n is None else n
            if value.shape[0] != n:
                raise ValueError(
                    f"Strokes.{name} has {value.shape[0]} strokes but position has {n}"
                )
            finite = torch.isfinite(value.detach())
            if not bool(finite.all()):
                bad = int((~finite).reshape(value.shape[0], -1).any(1).nonzero()[0, 0])
                raise ValueError(f"Strokes.{name} is NaN or infinite at stroke {bad}")
        if self.palette_index is not None:
            pi = self.palette_index
            if pi.dtype not in (torch.int64, torch.int32) or tuple(pi.shape) != (n,):
                raise ValueError(
                    f"Strokes.palette_index must be an integer tensor of shape ({n},), "
                    f"got {pi.dtype} {tuple(pi.shape)}"
                )
        return self

    # ---- basics ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.position.shape[0]

    def _map(self, fn) -> Strokes:
        return Strokes(
            **{
                f.name: (fn(getattr(self, f.name)) if getattr(self, f.name) is not None else None)
                for f in fields(self)
            }
        )

    def __getitem__(self, index) -> Strokes:
        """A subset of strokes (int, slice, bool mask or index tensor), order kept as given."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return self._map(lambda t: t[index])

    def to(self, device=None, dtype: torch.dtype | None = None) -> Strokes:
        """Move to a device and/or cast the float fields to a dtype."""
        return Strokes(
            **{name: getattr(self, name).to(device=device, dtype=dtype) for name in _SHAPES},
            palette_index=None if self.palette_index is None else self.palette_index.to(device),
        )

    def detach(self) -> Strokes:
        return self._map(lambda t: t.detach())

    def clone(self) -> Strokes:
        return self._map(lambda t: t.clone())

    @property
    def device(self) -> torch.device:
        return self.position.device

    @staticmethod
    def cat(batches: list[Strokes]) -> Strokes:
        """Concatenate batches in order (palette_index kept only if every batch has one)."""
        if not batches:
            raise ValueError("Strokes.cat needs at least one batch")
        out = {name: torch.cat([getattr(b, name) for b in batches]) for name in _SHAPES}
        if all(b.palette_index is not None for b in batches):
            out["palette_index"] = torch.cat([b.palette_index for b in batches])
        return Strokes(**out)

    # ---- construction ---------------------------------------------------------------------
    @classmethod
    def random(
        cls,
        n: int,
        brush: Brush,
        canvas: Canvas,
        generator: torch.Generator | None = None,
        colors: torch.Tensor | None = None,
    ) -> Strokes:
        """N strokes uniformly spread over the canvas within the brush's ranges.

        Args:
            colors: optional (P, 3) palette to draw colours from (sets palette_index).
        """
        g = generator
        u = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
        position = u(n, 2) * torch.tensor([canvas.width_m, canvas.height_m])
        length = brush.min_length_m + u(n) * (brush.max_length_m - brush.min_length_m)
        bend = (u(n) * 2 - 1) * brush.max_bend_m
        pressure = u(n)
        angle = (u(n) * 2 - 1) * math.pi
        palette_index = None
        if colors is not None:
            palette_index = torch.randint(0, colors.shape[0], (n,), generator=g)
            color = colors[palette_index].float()
        else:
            color = u(n, 3)
        s = cls(position, angle, length, bend, pressure, color, palette_index)
        return s.clamp(brush)

    def clamp(self, brush: Brush, canvas: Canvas | None = None, margin_m: float = 0.0) -> Strokes:
        """A copy with every parameter inside the brush's ranges (and the start point inside
        the canvas minus `margin_m`, when a canvas is given). Gradients pass where unclamped."""
        length = self.length.clamp(brush.min_length_m, brush.max_length_m)
        max_bend = torch.clamp(
            length / 3 * math.tan(math.radians(brush.max_angle_deg)), max=brush.max_bend_m
        )
        bend = torch.maximum(torch.minimum(self.bend, max_bend), -max_bend)
        position = self.position
        if canvas is not None:
            lo = torch.tensor([margin_m, margin_m], device=position.device, dtype=position.dtype)
            hi = torch.tensor(
                [canvas.width_m - margin_m, canvas.height_m - margin_m],
                device=position.device,
                dtype=position.dtype,
            )
            position = torch.maximum(torch.minimum(position, hi), lo)
        angle = torch.remainder(self.angle + math.pi, 2 * math.pi) - math.pi
        return Strokes(
            position=position,
            angle=angle,
            length=length,
            bend=bend,
            pressure=self.pressure.clamp(0.0, 1.0),
            color=self.color.clamp(0.0, 1.0),
            palette_index=self.palette_index,
        )

    def check_ranges(self, brush: Brush, what: str = "Strokes") -> Strokes:
        """Raise ValueError naming the stroke, field and value when a stroke is outside what
        ``brush`` can physically paint: length outside min..max_length_m, |bend| over the
        brush's limit for that length (`clamp`), pressure outside 0..1, colour outside 0..1.
        Float32 rounding (1e-5 relative) is allowed. Returns self."""
        tol = 1e-5
        length = self.length.detach().double()
        lo, hi = brush.min_length_m, brush.max_length_m
        max_bend = torch.clamp(
            length / 3 * math.tan(math.radians(brush.max_angle_deg)), max=brush.max_bend_m
        )
        checks = (
            ("length", length, (length < lo * (1 - tol)) | (length > hi * (1 + tol)),
             f"{lo}..{hi} m (Brush {brush.name!r} min_length_m..max_length_m)"),
            ("bend", self.bend.detach().double(),
             self.bend.detach().double().abs() > max_bend * (1 + tol) + 1e-9,
             f"|bend| <= {brush.max_bend_m} m and <= length/3*tan({brush.max_angle_deg} deg)"),
            ("pressure", self.pressure.detach().double(),
             (self.pressure < -tol) | (self.pressure > 1 + tol), "0..1"),
            ("color", self.color.detach().double(),
             ((self.color < -tol) | (self.color > 1 + tol)).any(1), "0..1"),
        )  # fmt: skip
        for name, value, bad, allowed in checks:
            if bool(bad.any()):
                i = int(bad.nonzero()[0, 0])
                v = value[i].tolist()
                v = [float(f"{c:.4g}") for c in v] if isinstance(v, list) else float(f"{v:.4g}")
                raise ValueError(
                    f"{what}: stroke {i} has {name}={v} outside what the brush can paint "
                    f"({allowed})"
                )
        return self

    # ---- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {name: getattr(self, name).detach().cpu().tolist() for name in _SHAPES}
        if self.palette_index is not None:
            d["palette_index"] = self.palette_index.cpu().tolist()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict) -> Strokes:
        check_fields("Strokes", data, FIELDS, required=_SHAPES)
        kwargs = {}
        for name in _SHAPES:
            try:
                kwargs[name] = torch.tensor(data[name], dtype=torch.float32)
            except (TypeError, ValueError) as e:
                raise ValueError(f"Strokes.{name}: not a numeric array ({e})") from None
            if kwargs[name].numel() == 0:
                kwargs[name] = kwargs[name].reshape(0, *_SHAPES[name])
        if data.get("palette_index") is not None:
            kwargs["palette_index"] = torch.tensor(data["palette_index"], dtype=torch.int64)
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> Strokes:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"Strokes: invalid JSON ({e})") from None
        return cls.from_dict(data)
