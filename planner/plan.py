"""`Plan`: ordered, snapped strokes plus the paint and clean steps a robot executes.

A plan keeps the strokes as the optimiser indexed them and `order`, the painting order (a
permutation of stroke indices). `steps` spells the execution out: ``{"op": "clean"}`` before
each colour, ``{"op": "dip", "paint": p}`` at the first stroke of a colour and every
`dip_every` strokes after, and ``{"op": "stroke", "index": i, "position": k}`` for the k-th
stroke painted (stroke index i). A robot session resumes a plan at painting position k with
``plan.paths(start=k)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from planner.config import ArmSpeeds
from planner.ordering import endpoints, travel_m
from sim import Brush, BrushPath, Canvas, Strokes
from sim.dataclass_io import check_fields
from sim.palette import Palette

FORMAT_VERSION = 1
_FIELDS = ("version", "canvas", "brush", "palette", "strokes", "order", "dip_every", "margin_m")
_FIELDS = (*_FIELDS, "steps", "meta")


@dataclass
class Plan:
    """Strokes in painting order with paint handling, ready for a robot.

    Args:
        canvas: the canvas the strokes are in meters of.
        brush: the brush (its ranges bound every stroke: a stroke outside them, e.g. pressure
            50 or a negative length, raises ValueError naming it, when built or loaded).
        palette: the robot's paints; every stroke's colour is one of them.
        strokes: N snapped strokes (`palette_index` set, colour == palette colour).
        order: painting order, a permutation of range(N).
        dip_every: strokes painted per paint load (>= 1).
        margin_m: distance (m) kept clear of the canvas edge; `paths()` clips to it.
        meta: JSON-able extras (prompt, seed, losses).
    """

    canvas: Canvas
    brush: Brush
    palette: Palette
    strokes: Strokes
    order: list[int]
    dip_every: int = 5
    margin_m: float = 0.0
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.strokes)
        if self.strokes.palette_index is None:
            raise ValueError("Plan.strokes must be snapped to the palette (palette_index is None)")
        pi = self.strokes.palette_index
        if n and (int(pi.min()) < 0 or int(pi.max()) >= len(self.palette)):
            raise ValueError(f"Plan.strokes.palette_index must be in 0..{len(self.palette) - 1}")
        self.order = [int(i) for i in self.order]
        if sorted(self.order) != list(range(n)):
            raise ValueError(f"Plan.order must be a permutation of range({n})")
        if not (isinstance(self.dip_every, int) and self.dip_every >= 1):
            raise ValueError(f"Plan.dip_every must be an integer >= 1, got {self.dip_every!r}")
        self.strokes.check_ranges(self.brush, "Plan.strokes")  # nothing impossible is sent
        if not 0 <= self.margin_m < min(self.canvas.width_m, self.canvas.height_m) / 2:
            raise ValueError(f"Plan.margin_m={self.margin_m!r} leaves no canvas to paint on")

    def __len__(self) -> int:
        return len(self.strokes)

    # ---- painting order -------------------------------------------------------------------
    def ordered_strokes(self, start: int = 0) -> Strokes:
        """The strokes in painting order, from painting position `start`."""
        return self.strokes[torch.tensor(self.order[start:], dtype=torch.long)]

    @property
    def steps(self) -> list[dict]:
        """Execution steps: clean / dip / stroke dicts (see the module docstring)."""
        return self._steps(0)

    def _steps(self, start: int) -> list[dict]:
        steps: list[dict] = []
        pi = self.strokes.palette_index.tolist()
        current, since_dip = None, 0
        for k in range(start, len(self.order)):
            i = self.order[k]
            if pi[i] != current:
                steps.append({"op": "clean"})
                steps.append({"op": "dip", "paint": pi[i]})
                current, since_dip = pi[i], 0
            elif since_dip >= self.dip_every:
                steps.append({"op": "dip", "paint": pi[i]})
                since_dip = 0
            steps.append({"op": "stroke", "index": i, "position": k})
            since_dip += 1
        return steps

    def paths(self, start: int = 0, points_per_stroke: int = 16) -> list[BrushPath]:
        """`BrushPath`s in painting order from painting position `start`.

        ``meta["clean_before"]`` is set on the first path of each colour and
        ``meta["dip_before"]`` where the brush must take paint (the first path of a colour, then
        every `dip_every` paths). A resumed plan (`start` > 0) begins with a clean and a dip,
        since the brush's state is unknown. Paths are cut to the canvas minus `margin_m`
        (`clip_to_box`). ``meta`` also holds ``stroke_index``, ``position`` and ``paint`` (name).
        """
        if not 0 <= start <= len(self.order):
            raise ValueError(f"Plan.paths: start must be in 0..{len(self.order)}, got {start}")
        s = self.strokes
        paths = BrushPath.from_strokes(s, points_per_stroke)
        lo = torch.tensor([self.margin_m, self.margin_m])
        hi = torch.tensor(
            [self.canvas.width_m - self.margin_m, self.canvas.height_m - self.margin_m]
        )
        out: list[BrushPath] = []
        pending: dict = {}
        for step in self._steps(start):
            if step["op"] == "clean":
                pending["clean_before"] = True
            elif step["op"] == "dip":
                pending["dip_before"] = True
            else:
                path = paths[step["index"]]
                path.points = clip_to_box(path.points, lo, hi)
                path.meta.update(pending)
                path.meta.update(
                    stroke_index=step["index"],
                    position=step["position"],
                    paint=self.palette.names[int(path.palette_index)],
                )
                out.append(path)
                pending = {}
        return out

    # ---- figures ----------------------------------------------------------------------------
    @property
    def paint_changes(self) -> int:
        """Times the brush takes a new colour (cleans), including the first load."""
        return sum(1 for s in self.steps if s["op"] == "clean")

    @property
    def colours_used(self) -> int:
        """Distinct paints the plan uses."""
        return int(torch.unique(self.strokes.palette_index).numel()) if len(self) else 0

    def travel_m(self, order: list[int] | None = None) -> float:
        """Lifted brush travel (m) between strokes in `order` (default: the painting order)."""
        starts, ends = endpoints(self.strokes)
        return travel_m(self.order if order is None else order, starts, ends)

    def estimate_seconds(self, speeds: ArmSpeeds | None = None) -> float:
        """Time (s) for an arm with `speeds` to paint the plan: strokes, travel, lifts, dips,
        cleans. Travel to and from the paint station is inside `dip_s` and `clean_s`."""
        sp = speeds or ArmSpeeds()
        steps = self.steps
        paint_len = sum(p.length_m for p in BrushPath.from_strokes(self.strokes, 16))
        return (
            paint_len / sp.paint_m_s
            + self.travel_m() / sp.travel_m_s
            + len(self) * sp.lift_s
            + sum(s["op"] == "dip" for s in steps) * sp.dip_s
            + sum(s["op"] == "clean" for s in steps) * sp.clean_s
        )

    # ---- JSON -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "version": FORMAT_VERSION,
            "canvas": self.canvas.to_dict(),
            "brush": self.brush.to_dict(),
            "palette": self.palette.to_dict(),
            "strokes": self.strokes.to_dict(),
            "order": list(self.order),
            "dip_every": self.dip_every,
            "margin_m": self.margin_m,
            "steps": self.steps,
            "meta": self.meta,
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        required = ("canvas", "brush", "palette", "strokes", "order")
        check_fields("Plan", data, _FIELDS, required=required)
        if data.get("version", FORMAT_VERSION) != FORMAT_VERSION:
            raise ValueError(f"Plan: unsupported format version {data['version']!r}")
        plan = cls(
            canvas=Canvas.from_dict(data["canvas"]),
            brush=Brush.from_dict(data["brush"]),
            palette=Palette.from_dict(data["palette"]),
            strokes=Strokes.from_dict(data["strokes"]),
            order=list(data["order"]),
            dip_every=int(data.get("dip_every", 5)),
            margin_m=float(data.get("margin_m", 0.0)),
            meta=dict(data.get("meta") or {}),
        )
        if "steps" in data and data["steps"] != plan.steps:
            raise ValueError("Plan: 'steps' do not match the order, paints and dip_every")
        return plan

    @classmethod
    def from_json(cls, text: str) -> Plan:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"Plan: invalid JSON ({e})") from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> Path:
        """Write the plan as JSON (atomically: a temp file renamed into place)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.to_json(indent=1))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        return cls.from_json(Path(path).read_text())

    # ---- exports (see planner.svg, planner.gcode, planner.animation) -----------------------
    def to_svg(self, **kwargs) -> str:
        from planner.svg import plan_to_svg

        return plan_to_svg(self, **kwargs)

    def to_gcode(self, config=None) -> str:
        from planner.gcode import plan_to_gcode

        return plan_to_gcode(self, config)


def clip_to_box(points: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Cut a path to the box lo..hi (x, y in m): the longest run of waypoints inside it, from
    and to where the path crosses the box's edge.

    Clamping each waypoint instead would fold the outside part onto the edge, and a bent
    stroke folded that way turns back on itself: a corner no arm can take at speed.

    Args:
        points: (K, 3) waypoints (x m, y m, pressure); K >= 2.
        lo, hi: (2,) corners of the box.
    Returns:
        (K', 3) waypoints, K' >= 2, all inside the box. A path with fewer than two waypoints
        inside becomes the straight segment between its clamped ends (on the edge).
    """
    xy = points[:, :2]
    inside = ((xy >= lo) & (xy <= hi)).all(1)
    if bool(inside.all()):
        return points.clone()
    best, run_start = (0, -1), None  # the longest inside run as (first, last) waypoint index
    for k, ok in enumerate([*inside.tolist(), False]):
        if ok and run_start is None:
            run_start = k
        elif not ok and run_start is not None:
            if k - run_start > best[1] - best[0] + 1:
                best = (run_start, k - 1)
            run_start = None
    first, last = best
    if last - first < 1:
        ends = points[[0, -1]].clone()
        ends[:, :2] = ends[:, :2].clamp(lo, hi)
        return ends
    run = [points[first : last + 1]]
    if first > 0:
        run.insert(0, _edge_crossing(points[first], points[first - 1], lo, hi)[None])
    if last < len(points) - 1:
        run.append(_edge_crossing(points[last], points[last + 1], lo, hi)[None])
    return torch.cat(run)


def _edge_crossing(p: torch.Tensor, q: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor):
    """Where the segment from `p` (inside the box) to `q` (outside) leaves it (all 3 columns
    interpolated)."""
    d = q[:2] - p[:2]
    t = torch.ones((), dtype=p.dtype)
    for axis in range(2):
        if d[axis] > 0:
            t = torch.minimum(t, (hi[axis] - p[axis]) / d[axis])
        elif d[axis] < 0:
            t = torch.minimum(t, (lo[axis] - p[axis]) / d[axis])
    out = p + t.clamp(0, 1) * (q - p)
    out[:2] = out[:2].clamp(lo, hi)  # float rounding
    return out
