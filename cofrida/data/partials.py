"""Partial paintings by removing strokes: which strokes of a full painting to keep.

Every function returns the kept stroke indices (sorted int32 indices into the painting order);
the partial painting is the renderer's picture of exactly those strokes, so a removed stroke is
truly absent (no background is pasted over anything). Kinds:

- ``random``: a random subset, keeping a fraction drawn from [0.1, 0.9].
- ``region``: remove the strokes whose centre falls in a random rectangle or canvas half.
- ``object``: remove the strokes that mostly lie on one scene object (label map); without a
  label map (folder and HF sources) this falls back to ``region``.
- ``first_k``: the first k strokes of the painting order (how the painting grows).
- ``blank``: keep none (the model learns to paint from an empty canvas).

Example:
    rng = np.random.default_rng(0)
    kinds = choose_kinds(rng, 4)
    kept = keep_strokes(kinds[0], strokes, canvas, rng, label_map)
"""

from __future__ import annotations

import numpy as np
import torch

from sim import Canvas, Strokes
from sim.brush_path import local_to_canvas, stroke_local_path

KINDS = ("random", "region", "object", "first_k", "blank")
# How often each kind is drawn: blank canvases are useful but carry one image per caption.
KIND_WEIGHTS = {"random": 0.3, "region": 0.2, "object": 0.2, "first_k": 0.2, "blank": 0.1}
_PATH_POINTS = 9  # samples along each stroke's path for centres and object membership


def path_points_px(strokes: Strokes, canvas: Canvas) -> np.ndarray:
    """Points along every stroke's centre line in canvas pixels, (N, K, 2) float (x, y)."""
    s = strokes.detach().to("cpu", torch.float32)
    t = torch.linspace(0.0, 1.0, _PATH_POINTS)
    xy = local_to_canvas(stroke_local_path(s.length, s.bend, t), s.position, s.angle)
    return canvas.m_to_px(xy).numpy()


def choose_kinds(rng: np.random.Generator, n: int, kinds=KINDS) -> list[str]:
    """`n` partial kinds drawn with `KIND_WEIGHTS` (renormalised over `kinds`)."""
    kinds = list(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"unknown partial kinds {unknown}; choose from {list(KINDS)}")
    p = np.array([KIND_WEIGHTS[k] for k in kinds], dtype=np.float64)
    return [kinds[i] for i in rng.choice(len(kinds), size=n, p=p / p.sum())]


def keep_random(n: int, rng: np.random.Generator) -> np.ndarray:
    """A random subset keeping round(f * n) of n strokes, f uniform in [0.1, 0.9]."""
    k = round(float(rng.uniform(0.1, 0.9)) * n)
    return np.sort(rng.choice(n, size=k, replace=False)).astype(np.int32)


def keep_first_k(n: int, rng: np.random.Generator) -> np.ndarray:
    """The first k strokes in painting order, k uniform in [0.1 n, 0.9 n]."""
    k = int(rng.integers(max(1, round(0.1 * n)), max(2, round(0.9 * n)) + 1))
    return np.arange(min(k, n), dtype=np.int32)


def keep_outside_region(
    points_px: np.ndarray, size_px: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Strokes whose centre lies outside a random rectangle (half the time a canvas half).

    Args:
        points_px: (N, K, 2) path points in pixels (`path_points_px`).
        size_px: (H, W) of the canvas.
    """
    h, w = size_px
    centre = points_px.mean(1)  # (N, 2)
    if rng.random() < 0.5:
        side = int(rng.integers(4))  # left, right, top, bottom half
        x0, x1, y0, y1 = [(0, w / 2, 0, h), (w / 2, w, 0, h), (0, w, 0, h / 2), (0, w, h / 2, h)][
            side
        ]
    else:
        rw, rh = rng.uniform(0.25, 0.6) * w, rng.uniform(0.25, 0.6) * h
        x0, y0 = rng.uniform(0, w - rw), rng.uniform(0, h - rh)
        x1, y1 = x0 + rw, y0 + rh
    inside = (centre[:, 0] >= x0) & (centre[:, 0] < x1) & (centre[:, 1] >= y0) & (centre[:, 1] < y1)
    return np.nonzero(~inside)[0].astype(np.int32)


def keep_without_object(
    points_px: np.ndarray, label_map: np.ndarray, rng: np.random.Generator, share: float = 0.5
) -> np.ndarray | None:
    """Strokes that do not mostly lie on one randomly chosen scene object.

    A stroke belongs to object j when more than `share` of its path points fall on pixels
    labelled j. Objects that own no stroke are not chosen.

    Args:
        points_px: (N, K, 2) path points in pixels.
        label_map: (H, W) int, object id per pixel, 0 = background.
    Returns:
        Kept indices, or None when no object owns a stroke (the caller falls back).
    """
    h, w = label_map.shape
    xi = np.clip(np.floor(points_px[..., 0]).astype(np.int64), 0, w - 1)
    yi = np.clip(np.floor(points_px[..., 1]).astype(np.int64), 0, h - 1)
    labels = label_map[yi, xi]  # (N, K)
    ids = [int(i) for i in np.unique(labels) if i != 0]
    owner = np.zeros(len(points_px), dtype=np.int64)
    for j in ids:
        owner[(labels == j).mean(1) > share] = j
    candidates = sorted(set(owner.tolist()) - {0})
    if not candidates:
        return None
    removed = candidates[int(rng.integers(len(candidates)))]
    return np.nonzero(owner != removed)[0].astype(np.int32)


def keep_strokes(
    kind: str,
    strokes: Strokes,
    canvas: Canvas,
    rng: np.random.Generator,
    label_map: np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
    """The kept indices for one partial of `kind`, and the kind actually used.

    Args:
        kind: one of `KINDS`.
        strokes: the full painting's N strokes in painting order.
        canvas: their canvas (meters -> pixels).
        rng: the record's generator (every draw comes from it).
        label_map: (H, W) object ids at the canvas' pixel size, or None.
    Returns:
        (sorted int32 indices, kind) where kind is 'region' when 'object' had to fall back.
    """
    n = len(strokes)
    if kind == "blank":
        return np.zeros(0, dtype=np.int32), kind
    if kind == "random":
        return keep_random(n, rng), kind
    if kind == "first_k":
        return keep_first_k(n, rng), kind
    points = path_points_px(strokes, canvas)
    if kind == "object" and label_map is not None:
        if tuple(label_map.shape) != canvas.size_px:
            raise ValueError(
                f"label_map must have the canvas' size {canvas.size_px}, got {label_map.shape}"
            )
        kept = keep_without_object(points, label_map, rng)
        if kept is not None:
            return kept, kind
    if kind in ("object", "region"):
        return keep_outside_region(points, canvas.size_px, rng), "region"
    raise ValueError(f"unknown partial kind {kind!r}; choose from {list(KINDS)}")
