"""Small, fast planning set-ups shared by the planner tests (48 px canvases, few steps)."""

from __future__ import annotations

import pytest
import torch

from planner import Planner, PlannerConfig
from sim import Brush, BrushPath, Canvas, Strokes
from sim.palette import Palette
from sim.physical_brush import PhysicalBrush

PX = 48


def small_canvas() -> Canvas:
    return Canvas(0.12, 0.12, PX, PX)


def fast_config(**overrides) -> PlannerConfig:
    base = dict(coarse_px=32, coarse_steps=40, fine_steps=15, seed=0, margin_m=0.003)
    base.update(overrides)
    return PlannerConfig(**base)


def two_blocks(canvas: Canvas) -> torch.Tensor:
    """White paper with a red block (left) and a blue block (right): (3, H, W)."""
    h, w = canvas.size_px
    img = torch.ones(3, h, w)
    img[:, h // 5 : 4 * h // 5, w // 8 : w // 2 - 2] = torch.tensor([0.84, 0.12, 0.15])[
        :, None, None
    ]
    img[:, h // 4 : 3 * h // 4, w // 2 + 4 : 7 * w // 8] = torch.tensor([0.10, 0.25, 0.70])[
        :, None, None
    ]
    return img


def person_canvas(canvas: Canvas, brush: Brush, seed: int = 3) -> torch.Tensor:
    """Paper with a few dark strokes a person painted (physical brush) in the top-left."""
    g = torch.Generator().manual_seed(seed)
    s = Strokes.random(4, brush, canvas, g)
    s.position = torch.tensor([[0.01, 0.015], [0.012, 0.03], [0.015, 0.045], [0.02, 0.02]])
    s.angle = torch.zeros(4)
    s.pressure = torch.full((4,), 0.9)
    s.color = torch.tensor([0.08, 0.55, 0.27]).expand(4, 3).clone()
    paths = BrushPath.from_strokes(s.clamp(brush, canvas, 0.003))
    return PhysicalBrush(brush, seed=seed).paint_many(
        torch.ones(3, *canvas.size_px), paths, canvas, dip_every=1
    )


@pytest.fixture(scope="package")
def setup():
    canvas = small_canvas()
    brush, palette = Brush.preset("round"), Palette.preset("markers")
    return canvas, brush, palette


@pytest.fixture(scope="package")
def planned(setup):
    """One plan of 40 strokes to `two_blocks` on blank paper, shared by the read-only tests."""
    canvas, brush, palette = setup
    planner = Planner(canvas, brush, palette, fast_config())
    target = two_blocks(canvas)
    plan, report = planner.plan(None, target, strokes=40)
    return planner, target, plan, report
