"""Robot profiles: what one robot set-up can paint, by name, for data generation.

A profile fixes the robot's limits (brush, paints, stroke budget, canvas) and the style it
paints in, plus a *fast* planner schedule: data generation paints thousands of images, so it
plans at low resolution for a few dozen steps instead of the interactive planner's
200 coarse + 40 fine steps. Measured with the round brush and acrylic paints, 256 px, 100
strokes, 6 procedural scenes, one torch thread; loss = mean squared sRGB error of the painting
against the source; CPU seconds of `Painter.paint` (planning + the full render) per painting:

| coarse schedule (64 px, no fine steps)  | CPU s / painting | loss  |
|-----------------------------------------|------------------|-------|
| 20 steps                                | 0.9              | 0.110 |
| 30 steps                                | 1.4              | 0.080 |
| 40 steps (the profiles' choice)         | 1.6              | 0.070 |
| 60 steps                                | 2.2              | 0.060 |
| interactive default: 128 px x 200 + 40 fine | ~40 (wall)   | ~0.05 |

Dropping the structure (edge) term and one pyramid level cost nothing measurable at 64 px and
saved ~35% per step; 96 px instead of 64 gained 0.004 loss for +40% time. With 40 steps a
painting and its four partials take ~1.6-2.3 CPU s (26-38 paintings per minute per core),
above the 20 the data budget needs, with room for a calibrated (learned) stroke model.

Example:
    profile = get_profile("acrylic")
    profile = profile.with_overrides(canvas_px=64, strokes=20)  # a tiny one for tests
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from planner import PlannerConfig
from sim import AnalyticStrokeModel, Brush, Canvas, StrokeModel
from sim.calibration_store import find_calibrated_stroke_model
from sim.palette import Palette

STYLES = ("painting", "drawing")

# The fast data-generation schedule (see the module docstring for the measured trade-off).
FAST_PLANNER = PlannerConfig(
    coarse_px=64,  # px: a step costs ~1/10 of one at 256 px; strokes are >= 2 px wide there
    coarse_steps=40,  # Adam steps with soft paint choice; loss .080 / .070 / .060 at 30/40/60
    fine_steps=0,  # full-size steps cost ~10x more and gain little for training data
    structure_weight=0.0,  # the edge term only helps at full resolution
    pixel_scales=2,  # 64 and 32 px: the coarse level still pulls strokes to empty regions
)


@dataclass(frozen=True)
class RobotProfile:
    """One robot set-up for data generation.

    Args:
        name: the profile's name (recorded in every data record).
        brush: `sim.Brush` preset name; its ranges bound every stroke.
        palette: `sim.palette.Palette` preset name: the paints the robot has.
        scene_palette: palette preset the procedural scenes are drawn with (a one-colour
            marker cannot draw distinguishable scene objects, so the sharpie draws scenes made
            with a marker pack).
        strokes: stroke budget per painting.
        style: 'painting' (fill areas with the paints) or 'drawing' (trace the source's
            outlines in the marker's colour, see `cofrida.data.painting.line_drawing`).
        canvas_m: (width, height) of the physical canvas in meters.
        canvas_px: render width in pixels (height keeps the aspect ratio).
        planner: the planner schedule and weights for data (seed is set per painting).
        robot: robot name whose calibrated stroke model is used when one is saved.
    """

    name: str
    brush: str
    palette: str
    scene_palette: str
    strokes: int
    style: str = "painting"
    canvas_m: tuple[float, float] = (0.25, 0.25)
    canvas_px: int = 256
    planner: PlannerConfig = field(default_factory=lambda: FAST_PLANNER)
    robot: str = "default"

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"RobotProfile.style must be one of {STYLES}, got {self.style!r}")
        if not (isinstance(self.strokes, int) and self.strokes >= 1):
            raise ValueError(f"RobotProfile.strokes must be an integer >= 1, got {self.strokes!r}")
        Brush.preset(self.brush)  # raise early on unknown presets
        Palette.preset(self.palette)
        Palette.preset(self.scene_palette)

    # ---- what the profile builds --------------------------------------------------------------
    def canvas(self) -> Canvas:
        """The canvas in meters, rendered `canvas_px` wide."""
        return Canvas(float(self.canvas_m[0]), float(self.canvas_m[1]), int(self.canvas_px))

    def brush_preset(self) -> Brush:
        return Brush.preset(self.brush)

    def palette_preset(self) -> Palette:
        return Palette.preset(self.palette)

    def stroke_model(self) -> tuple[StrokeModel, str]:
        """(stroke model, 'calibrated' | 'analytic'): the robot's calibration when saved."""
        model = find_calibrated_stroke_model(self.brush, self.robot)
        if model is not None:
            return model, "calibrated"
        return AnalyticStrokeModel(self.brush_preset()), "analytic"

    def with_overrides(self, **changes) -> RobotProfile:
        """A copy with fields changed; planner fields may be given as `planner={...}`."""
        planner = changes.pop("planner", None)
        if isinstance(planner, dict):
            changes["planner"] = replace(self.planner, **planner)
        elif planner is not None:
            changes["planner"] = planner
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["canvas_m"] = list(self.canvas_m)
        d["planner"] = self.planner.to_dict()
        return d


PROFILES: dict[str, RobotProfile] = {
    # A fine-point Sharpie in a plotter or arm: black outlines of the scene (FRIDA's set-up).
    "sharpie": RobotProfile(
        name="sharpie",
        brush="sharpie",
        palette="sharpie",
        scene_palette="markers",
        strokes=100,
        style="drawing",
        canvas_m=(0.2, 0.2),  # m: 256 px -> 0.8 mm/px; the marker's line is 2-5 px wide
    ),
    # A four-marker pack: coloured drawings that fill shapes with hatching-like strokes.
    "markers": RobotProfile(
        name="markers",
        brush="sharpie",
        palette="markers",
        scene_palette="markers",
        strokes=150,
        canvas_m=(0.2, 0.2),
    ),
    # A size-8 round brush with the student acrylic set: painted areas.
    "acrylic": RobotProfile(
        name="acrylic",
        brush="round",
        palette="acrylic",
        scene_palette="acrylic",
        strokes=150,
    ),
}


def get_profile(name: str) -> RobotProfile:
    """The named profile; ValueError listing the known ones otherwise."""
    if name not in PROFILES:
        raise ValueError(f"unknown robot profile {name!r}; choose one of {sorted(PROFILES)}")
    return PROFILES[name]
