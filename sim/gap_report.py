"""The sim-to-real gap: how far a stroke model's strokes are from captured real ones.

Figures, per stroke then averaged (darkness 0..1, 1 = intensity 255):

- ``iou``: intersection over union of the ink masks, ink = darkness > `INK_THRESHOLD` (fixed, the
  same for real and predicted; 1 when both are empty), strict: no re-registration;
- ``iou_aligned``: the same after moving the real mask by the best whole-pixel shift within
  +-`ALIGN_PX` px (the capture's own registration error, ~0.4 mm, not a stroke-shape error);
- ``l1``: mean |predicted - real| darkness over the whole image;
- ``centroid_mm``: distance between the darkness-weighted centroids (mm);
- ``extent_x_mm``, ``extent_y_mm``: |difference| of the ink masks' bounding-box width / height (mm).

A model predicts darkness as ``ink_darkness * opacity``: ``ink_darkness`` is how dark fully opaque
ink photographs (a property of the capture, `ink_darkness` below, the same for every model).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sim.stroke_dataset import StrokeDataset
from sim.stroke_model import StrokeModel

INK_THRESHOLD = 0.25  # darkness above which a pixel counts as ink (intensity > 64 of 255)
ALIGN_PX = 2  # registration tolerance of ``iou_aligned`` (pixels each way)


def ink_darkness(darkness: torch.Tensor) -> float:
    """How dark full ink photographs: the 90th percentile of all ink pixels' darkness (0..1)."""
    ink = darkness[darkness > INK_THRESHOLD]
    return float(torch.quantile(ink[:1_000_000], 0.9)) if ink.numel() else 1.0


@torch.no_grad()
def predict_darkness(
    model: StrokeModel, data: StrokeDataset, index, ink: float, chunk: int = 32
) -> torch.Tensor:
    """Predicted darkness (n, H, W) of the strokes at `index`, in the dataset's image frame."""
    length, bend, pressure = data.shapes(index)
    out = [
        model(length[i : i + chunk], bend[i : i + chunk], pressure[i : i + chunk], data.frame)
        for i in range(0, len(length), chunk)
    ]
    return torch.cat(out) * ink


def stroke_metrics(pred: torch.Tensor, real: torch.Tensor, m_per_px: float) -> dict:
    """Per-stroke figures (see the module docstring) for (n, H, W) darkness maps, as lists."""
    mp, mr = pred > INK_THRESHOLD, real > INK_THRESHOLD
    inter = (mp & mr).flatten(1).sum(1).float()
    union = (mp | mr).flatten(1).sum(1).float()
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
    aligned = iou.clone()
    for dy in range(-ALIGN_PX, ALIGN_PX + 1):
        for dx in range(-ALIGN_PX, ALIGN_PX + 1):
            moved = torch.roll(mr, (dy, dx), (1, 2))
            i = (mp & moved).flatten(1).sum(1).float()
            u = (mp | moved).flatten(1).sum(1).float()
            aligned = torch.maximum(aligned, torch.where(u > 0, i / u.clamp(min=1), aligned))
    l1 = (pred - real).abs().flatten(1).mean(1)
    n, h, w = pred.shape
    ys = torch.arange(h, dtype=torch.float32)[None, :, None]
    xs = torch.arange(w, dtype=torch.float32)[None, None, :]

    def centroid(d):
        mass = d.flatten(1).sum(1).clamp(min=1e-6)
        return (
            torch.stack([(d * xs).flatten(1).sum(1), (d * ys).flatten(1).sum(1)], 1) / mass[:, None]
        )

    mm = m_per_px * 1000
    centroid_mm = (centroid(pred) - centroid(real)).norm(dim=1) * mm

    def bbox_size(mask):
        cols, rows = mask.any(1), mask.any(2)  # (n, W), (n, H)
        ix = torch.arange(w)[None].expand(n, -1)
        iy = torch.arange(h)[None].expand(n, -1)
        wx = torch.where(cols, ix, -1).amax(1) - torch.where(cols, ix, w).amin(1) + 1
        wy = torch.where(rows, iy, -1).amax(1) - torch.where(rows, iy, h).amin(1) + 1
        return wx.clamp(min=0).float(), wy.clamp(min=0).float()

    pw, ph = bbox_size(mp)
    rw, rh = bbox_size(mr)
    return {
        "iou": iou.tolist(),
        "iou_aligned": aligned.tolist(),
        "l1": l1.tolist(),
        "centroid_mm": centroid_mm.tolist(),
        "extent_x_mm": ((pw - rw).abs() * mm).tolist(),
        "extent_y_mm": ((ph - rh).abs() * mm).tolist(),
    }


def gap_report(
    models: dict[str, StrokeModel], data: StrokeDataset, real: torch.Tensor, index, ink: float
) -> dict:
    """Mean figures of each model against `real` darkness (n, H, W) of the strokes at `index`.

    Returns ``{"<figure>_<name>": mean, ...}`` plus ``"strokes": n`` and ``"per_stroke"``
    (``{name: {figure: [...]}}``) for the caller to keep or drop.
    """
    report: dict = {"strokes": len(index), "ink_darkness": ink, "per_stroke": {}}
    for name, model in models.items():
        per = stroke_metrics(predict_darkness(model, data, index, ink), real, data.meters_per_pixel)
        report["per_stroke"][name] = per
        for key, values in per.items():
            report[f"{key}_{name}"] = float(np.mean(values)) if values else float("nan")
    return report


def save_comparison(path: str | Path, panels: list[torch.Tensor], gap_px: int = 2) -> Path:
    """PNG of strokes side by side: row i = (panels[0][i] | panels[1][i] | ...), ink dark.

    Args:
        panels: each (n, H, W) darkness 0..1 (e.g. real, analytic, fitted).
    """
    n, h, w = panels[0].shape
    cols = len(panels)
    sheet = np.full((n * (h + gap_px) - gap_px, cols * (w + gap_px) - gap_px), 128, np.uint8)
    for i in range(n):
        for j, p in enumerate(panels):
            tile = 255 - np.clip(p[i].numpy() * 255, 0, 255).astype(np.uint8)
            y, x = i * (h + gap_px), j * (w + gap_px)
            sheet[y : y + h, x : x + w] = tile
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(path)
    return path
