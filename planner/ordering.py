"""Painting order: colour groups to minimise paint changes, brush travel within each colour.

Strokes of one colour composite to the same image in any order (over-compositing one colour is
commutative: out = c (1 - prod(1 - a)) + bg prod(1 - a)), so only the order of the colour groups
changes the picture. Groups keep the order the optimiser gave them on average (their mean
index), which keeps the layering the optimisation relied on; within a group, strokes are ordered
by nearest neighbour and improved by 2-opt on the exact (directed) travel: from one stroke's end
to the next stroke's start.
"""

from __future__ import annotations

import numpy as np
import torch

from sim import Strokes
from sim.brush_path import local_to_canvas, stroke_local_path


def endpoints(strokes: Strokes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end points (N, 2) in canvas meters, float64."""
    s = strokes.detach().to("cpu", torch.float64)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    xy = local_to_canvas(stroke_local_path(s.length, s.bend, t), s.position, s.angle)  # (N, 2, 2)
    return xy[:, 0].numpy(), xy[:, 1].numpy()


def travel_m(order, starts: np.ndarray, ends: np.ndarray) -> float:
    """Total lifted travel (m) from each stroke's end to the next one's start, in `order`."""
    order = np.asarray(order, dtype=np.int64)
    if order.size < 2:
        return 0.0
    return float(np.linalg.norm(starts[order[1:]] - ends[order[:-1]], axis=1).sum())


def _nearest_neighbour(idx: np.ndarray, starts, ends, here: np.ndarray | None) -> list[int]:
    left = list(idx)
    route: list[int] = []
    pos = here
    while left:
        cand = np.asarray(left)
        if pos is None:
            k = int(np.argmin(np.linalg.norm(starts[cand], axis=1)))  # nearest the origin
        else:
            k = int(np.argmin(np.linalg.norm(starts[cand] - pos, axis=1)))
        route.append(int(cand[k]))
        pos = ends[cand[k]]
        left.pop(k)
    return route


def two_opt(route: list[int], starts, ends, here: np.ndarray | None, max_passes: int = 200):
    """Improve an open, directed route by segment reversals while any reduces travel.

    The cost of a reversal is exact for directed strokes: every move inside the reversed
    segment changes direction too (prefix sums make each candidate O(1); a pass is O(n^2)).
    """
    r = np.asarray(route, dtype=np.int64)
    n = r.size
    if n < 3:
        return list(r)
    for _ in range(max_passes):
        d_fwd = np.linalg.norm(starts[r[1:]] - ends[r[:-1]], axis=1)  # move k -> k+1
        d_bwd = np.linalg.norm(starts[r[:-1]] - ends[r[1:]], axis=1)  # move k+1 -> k
        pf = np.concatenate([[0.0], np.cumsum(d_fwd)])
        pb = np.concatenate([[0.0], np.cumsum(d_bwd)])
        i, j = np.triu_indices(n, k=1)  # reverse positions i..j
        inner = (pb[j] - pb[i]) - (pf[j] - pf[i])
        # the move into the segment (from the previous stroke, or from `here`)
        if here is None:
            into_old = np.where(i > 0, np.linalg.norm(starts[r[i]] - ends[r[i - 1]], axis=1), 0.0)
            into_new = np.where(i > 0, np.linalg.norm(starts[r[j]] - ends[r[i - 1]], axis=1), 0.0)
        else:
            prev = np.where(i[:, None] > 0, ends[r[np.maximum(i - 1, 0)]], here[None])
            into_old = np.linalg.norm(starts[r[i]] - prev, axis=1)
            into_new = np.linalg.norm(starts[r[j]] - prev, axis=1)
        last = j == n - 1
        nxt = r[np.minimum(j + 1, n - 1)]
        out_old = np.where(last, 0.0, np.linalg.norm(starts[nxt] - ends[r[j]], axis=1))
        out_new = np.where(last, 0.0, np.linalg.norm(starts[nxt] - ends[r[i]], axis=1))
        delta = inner + into_new - into_old + out_new - out_old
        k = int(np.argmin(delta))
        if delta[k] > -1e-9:
            break
        r[i[k] : j[k] + 1] = r[i[k] : j[k] + 1][::-1].copy()
    return list(r)


def colour_groups(palette_index: torch.Tensor) -> list[int]:
    """Paint indices in painting order: by each paint's mean position in the given order."""
    pi = palette_index.cpu()
    paints = torch.unique(pi).tolist()
    pos = torch.arange(pi.numel(), dtype=torch.float64)
    mean = {p: float(pos[pi == p].mean()) for p in paints}
    return sorted(paints, key=lambda p: (mean[p], p))


def group_order(palette_index: torch.Tensor) -> list[int]:
    """Stroke indices grouped by paint (groups as in `colour_groups`), original order inside."""
    order: list[int] = []
    pi = palette_index.cpu()
    for p in colour_groups(pi):
        order.extend(torch.nonzero(pi == p).flatten().tolist())
    return order


def painting_order(strokes: Strokes, groups: list[int] | None = None) -> list[int]:
    """The painting order of snapped strokes: colour groups, then short travel within each.

    Args:
        strokes: N strokes with `palette_index` set.
        groups: paint indices in painting order; default `colour_groups(palette_index)`.
    Returns:
        A permutation of range(N) (stroke indices in painting order).
    """
    if strokes.palette_index is None:
        raise ValueError("painting_order needs snapped strokes (palette_index is None)")
    starts, ends = endpoints(strokes)
    pi = strokes.palette_index.cpu().numpy()
    order: list[int] = []
    here = None
    for p in groups if groups is not None else colour_groups(strokes.palette_index):
        idx = np.nonzero(pi == p)[0]
        if idx.size == 0:
            continue
        route = _nearest_neighbour(idx, starts, ends, here)
        route = two_opt(route, starts, ends, here)
        order.extend(route)
        here = ends[route[-1]]
    return order
