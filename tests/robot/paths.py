"""Plans for the robot tests: seeded random `BrushPath`s inside (or outside) the workspace."""

from __future__ import annotations

import torch

from sim.brush_path import BrushPath


def stroke_paths(n: int, k: int = 10, seed: int = 0, colors: int = 3) -> list[BrushPath]:
    """n gentle curved strokes inside the default workspace; colour changes every few paths."""
    g = torch.Generator().manual_seed(seed)
    palette = torch.tensor([[0.1, 0.1, 0.1], [0.8, 0.1, 0.1], [0.1, 0.2, 0.7]])
    t = torch.linspace(0, 1, k)
    out = []
    for i in range(n):
        x0 = 0.02 + 0.2 * float(torch.rand(1, generator=g))
        y0 = 0.02 + 0.15 * float(torch.rand(1, generator=g))
        pts = torch.stack([x0 + 0.03 * t, y0 + 0.01 * t * t, 0.3 + 0.4 * t], dim=1)
        c = (i // 4) % colors
        out.append(BrushPath(pts, palette[c].clone(), palette_index=c, meta={"dip_before": True}))
    return out


def hostile_paths(n: int, seed: int) -> tuple[list[BrushPath], list[bool]]:
    """Random paths, some with waypoints far outside the canvas or a speed far over the limit.

    Returns (paths, bad) where bad[i] says path i violates the default workspace or limits.
    """
    g = torch.Generator().manual_seed(seed)
    paths, bad = [], []
    for _ in range(n):
        k = int(torch.randint(2, 12, (1,), generator=g))
        t = torch.linspace(0, 1, k)
        x0 = 0.03 + 0.2 * float(torch.rand(1, generator=g))
        y0 = 0.03 + 0.15 * float(torch.rand(1, generator=g))
        pts = torch.stack([x0 + 0.02 * t, y0 + 0.01 * t, torch.full((k,), 0.5)], dim=1)
        meta, is_bad = {}, False
        kind = int(torch.randint(0, 4, (1,), generator=g))
        if kind == 1:  # a waypoint off the canvas (beyond the table, or lifted into the air)
            j = int(torch.randint(0, k, (1,), generator=g))
            pts[j, int(torch.randint(0, 3, (1,), generator=g))] = float(
                torch.tensor([-0.5, 1.5, 3.0])[torch.randint(0, 3, (1,), generator=g)]
            )
            is_bad = True
        elif kind == 2:  # far too fast
            meta["speed_m_s"] = 2.0 + 10 * float(torch.rand(1, generator=g))
            is_bad = True
        paths.append(BrushPath(pts, torch.tensor([0.1, 0.1, 0.1]), palette_index=0, meta=meta))
        bad.append(is_bad)
    return paths, bad
