"""The differentiable painting simulator.

Owns canvas geometry (`Canvas`), brush ranges (`Brush`), stroke batches (`Strokes`), stroke
shape models (`AnalyticStrokeModel`, `LearnedStrokeModel`), the differentiable `Renderer` (and the
slow `ReferenceRenderer` it is checked against), `Palette`, `BrushPath`, and the
non-differentiable `PhysicalBrush` that stands in for the real world.

Geometry is in canvas meters: origin top-left, x right, y down.
"""

from sim.brush import BRUSH_PRESETS, Brush
from sim.brush_path import BrushPath
from sim.canvas import Canvas
from sim.reference_renderer import ReferenceRenderer
from sim.renderer import Renderer
from sim.stroke_model import (
    AnalyticStrokeModel,
    LearnedStrokeModel,
    StrokeFrame,
    StrokeModel,
    load_stroke_model,
)
from sim.strokes import Strokes

__all__ = [
    "BRUSH_PRESETS",
    "AnalyticStrokeModel",
    "Brush",
    "BrushPath",
    "Canvas",
    "LearnedStrokeModel",
    "ReferenceRenderer",
    "Renderer",
    "StrokeFrame",
    "StrokeModel",
    "Strokes",
    "load_stroke_model",
]
