"""SVG export: the plan's strokes as exact cubic Beziers, in painting order, in millimetres.

Each stroke is a ``<path d="M start C c1 c2 end">`` with round caps, its paint as the stroke
colour, the brush's width and opacity at the stroke's pressure; strokes are grouped per paint
run (``<g>`` with the paint's name), so a plotter program or an editor sees the colour layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from xml.sax.saxutils import quoteattr

import torch

from sim.brush_path import local_to_canvas

if TYPE_CHECKING:
    from planner.plan import Plan


def _hex(rgb) -> str:
    r, g, b = (max(0, min(255, round(float(v) * 255))) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def plan_to_svg(plan: Plan, background: str | None = "#ffffff") -> str:
    """The plan as an SVG document (text). `background`: paper colour, None for transparent."""
    s = plan.ordered_strokes().detach().to("cpu", torch.float64)
    w_mm, h_mm = plan.canvas.width_m * 1000, plan.canvas.height_m * 1000
    # Control points of the Bezier in the stroke's frame (see sim.brush), then to canvas mm.
    zero = torch.zeros_like(s.length)
    local = torch.stack(
        [
            torch.stack([zero, zero], -1),
            torch.stack([s.length / 3, -s.bend], -1),
            torch.stack([2 * s.length / 3, -s.bend], -1),
            torch.stack([s.length, zero], -1),
        ],
        1,
    )  # (N, 4, 2) m
    pts = local_to_canvas(local, s.position, s.angle) * 1000  # (N, 4, 2) mm
    b = plan.brush
    width_mm = (b.min_width_m + (b.max_width_m - b.min_width_m) * s.pressure) * 1000
    opacity = b.min_opacity + (b.max_opacity - b.min_opacity) * s.pressure
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w_mm:.2f}mm" height="{h_mm:.2f}mm" '
        f'viewBox="0 0 {w_mm:.3f} {h_mm:.3f}">',
    ]
    if background:
        out.append(f'<rect width="{w_mm:.3f}" height="{h_mm:.3f}" fill={quoteattr(background)}/>')
    current = None
    for k in range(len(s)):
        paint = int(s.palette_index[k])
        if paint != current:
            if current is not None:
                out.append("</g>")
            name = plan.palette.names[paint]
            out.append(
                f'<g id="paint-{k}" data-paint={quoteattr(name)} fill="none" '
                f'stroke="{_hex(plan.palette.colors[paint])}" stroke-linecap="round">'
            )
            current = paint
        p = pts[k].tolist()
        d = "M {:.3f} {:.3f} C {:.3f} {:.3f} {:.3f} {:.3f} {:.3f} {:.3f}".format(
            *p[0], *p[1], *p[2], *p[3]
        )
        out.append(
            f'<path d="{d}" stroke-width="{float(width_mm[k]):.3f}" '
            f'stroke-opacity="{float(opacity[k]):.3f}"/>'
        )
    if current is not None:
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"
