"""Configuration of the planner: what to optimise, how hard, and what the robot allows.

Three dataclasses, each field with its unit and the reason for its default:

- `PlannerConfig`: objective weights, optimisation schedule, co-painting thresholds.
- `ArmSpeeds`: how fast the arm moves, for the plan's time estimate.
- `RobotLimits` is not a class of its own: the robot's limits are the `sim.Brush` (stroke ranges),
  the `sim.palette.Palette` (paints it has), `PlannerConfig.margin_m` and the stroke budget
  passed to `Planner.plan`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from sim.dataclass_io import from_known_fields


@dataclass(frozen=True)
class PlannerConfig:
    """How the planner optimises strokes. Defaults plan 200 strokes at 256 px in ~20-40 s on
    two CPU cores.

    Objective weights are relative; 0 turns a term off.
    """

    # ---- objective weights ----
    rgb_weight: float = 1.0  # mean squared sRGB error (0..1 channels): the main pixel term
    lab_weight: float = 0.5  # mean squared Lab error / 100^2: perceptual colour distance
    pixel_scales: int = 3  # pyramid levels of the pixel loss (1 = full res only); coarse levels
    #   pull strokes towards regions they do not yet overlap
    structure_weight: float = 0.5  # multi-scale gradient (edge) L1 on luminance: an offline
    #   perceptual term (no pretrained network exists here)
    structure_scales: int = 3  # pyramid levels of the structure loss
    scorer_weight: float = 0.05  # weight of -score from an image(-text) scorer, when one is given
    keep_weight: float = 4.0  # penalty per unit mean coverage on protected (keep-mask) pixels
    margin_weight: float = 10.0  # penalty on stroke path points outside the canvas margin (per m)

    # ---- schedule: coarse-to-fine ----
    coarse_px: int = 128  # width (px) of the first phase: ~3x cheaper per step than 256
    coarse_steps: int = 200  # Adam steps at coarse_px, colours soft-assigned and annealed
    fine_steps: int = 40  # Adam steps at the full size, colours snapped, painting order fixed
    temperature_start: float = 1.0  # soft_assign temperature at the first step
    temperature_end: float = 0.05  # ... at the end of the coarse phase (near one-hot)
    lr_position_px: float = 1.0  # Adam step for positions, in full-size canvas pixels
    lr_angle: float = 0.05  # rad per step
    lr_shape: float = 0.03  # fraction of the brush's range per step (length, bend, pressure)
    lr_logits: float = 0.1  # paint-choice logits per step
    lr_decay: float = 0.1  # final lr as a fraction of the initial (cosine within each phase)

    # ---- robot limits that are not the brush or palette ----
    margin_m: float = 0.005  # m kept clear at the canvas edge: clamps and taped borders
    dip_every: int | None = None  # strokes per paint dip; None: as many as half a brush load
    #   paints (the brush's capacity from `PhysicalBrushConfig.for_brush`, strokes' mean area),
    #   1..20. A round acrylic brush needs a dip per stroke, a marker almost never.

    # ---- initialisation and co-painting ----
    init_length: tuple[float, float] = (0.3, 0.8)  # fraction of the brush's length range
    init_pressure: float = 0.5  # 0..1: mid width leaves room to grow and shrink
    paper_delta_e: float = 8.0  # CIE76: a canvas pixel farther than this from the paper colour
    #   is already painted (the person's work)
    agree_delta_e: float = 12.0  # CIE76: a painted pixel whose target is this close keeps it
    preserved_delta_e: float = 5.0  # CIE76: a protected pixel counts as preserved when the
    #   final painting stays this close to the canvas (~2 just-noticeable differences)

    seed: int = 0  # all randomness (initial strokes) comes from torch.Generator(seed)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "dip_every" and value is None:
                continue
            if f.name == "init_length":
                lo, hi = value
                if not 0 <= lo <= hi <= 1:
                    raise ValueError(
                        f"PlannerConfig.init_length must be 0 <= lo <= hi <= 1, got {value}"
                    )
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise ValueError(f"PlannerConfig.{f.name} must be a finite number, got {value!r}")
            if value < 0:
                raise ValueError(f"PlannerConfig.{f.name} must be >= 0, got {value!r}")
        for name in ("coarse_px", "pixel_scales", "structure_scales", "dip_every"):
            value = getattr(self, name)
            if name == "dip_every" and value is None:
                continue
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"PlannerConfig.{name} must be an integer >= 1")
        for name in ("coarse_steps", "fine_steps", "seed"):
            if not isinstance(getattr(self, name), int):
                raise ValueError(f"PlannerConfig.{name} must be an integer")
        if not 0 < self.temperature_end <= self.temperature_start:
            raise ValueError("PlannerConfig needs 0 < temperature_end <= temperature_start")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["init_length"] = list(self.init_length)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> PlannerConfig:
        extra = {"init_length": tuple(data["init_length"])} if "init_length" in data else {}
        return from_known_fields(cls, data, **extra)


@dataclass(frozen=True)
class ArmSpeeds:
    """How fast the arm works, for `Plan.estimate_seconds`. Defaults: a small desktop arm."""

    travel_m_s: float = 0.10  # m/s with the brush lifted
    paint_m_s: float = 0.04  # m/s while the brush touches the canvas (slower: paint flow)
    lift_s: float = 0.6  # s to lift and lower the brush around one travel move
    dip_s: float = 4.0  # s to go to the paint, load the brush and come back
    clean_s: float = 12.0  # s to wash and dry the brush on a colour change

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"ArmSpeeds.{f.name} must be a number >= 0, got {value!r}")
        if self.travel_m_s <= 0 or self.paint_m_s <= 0:
            raise ValueError("ArmSpeeds needs travel_m_s > 0 and paint_m_s > 0")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ArmSpeeds:
        return from_known_fields(cls, data)
