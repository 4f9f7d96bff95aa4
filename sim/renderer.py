"""`Renderer`: differentiable compositing of N strokes over a background, in order.

How it avoids touching the whole canvas once per stroke:

1. The stroke model rasterises every stroke's local opacity map at the canvas' resolution
   (one batched call).
2. Each map is warped (rotation + translation, `grid_sample`) into a small canvas-aligned
   *patch* of P x P pixels around the stroke (P from the brush's largest footprint), batched.
3. The canvas is cut into T x T tiles. Every (tile, stroke) pair where a patch overlaps a tile
   is listed, sorted by tile then stroke order, and packed as (K, tiles, T, T) with K the most
   strokes on any tile, and composited in order by `sim.compositing.composite` (one running
   sum along K, closed-form backward). No loop over strokes anywhere.

The result equals `ReferenceRenderer` (per-stroke, full canvas) up to float rounding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sim.brush_path import local_to_canvas
from sim.canvas import Canvas
from sim.compositing import composite
from sim.stroke_model import StrokeModel
from sim.strokes import Strokes


class Renderer:
    """Differentiable renderer for one canvas size and stroke model.

    Args:
        canvas: physical size and render size; all stroke geometry is in its meters.
        stroke_model: shapes -> local opacity maps (analytic or learned).
        tile: tile edge in pixels for compositing (memory/speed trade-off, 16-64).
        oversample: local raster resolution relative to the canvas pixel size.
    """

    def __init__(
        self, canvas: Canvas, stroke_model: StrokeModel, tile: int = 32, oversample: float = 1.0
    ):
        self.canvas = canvas
        self.stroke_model = stroke_model
        self.tile = tile
        self.frame = stroke_model.frame.at(canvas.m_per_px / oversample)
        sx, sy = canvas.px_per_m
        # Patch edge: the frame's diagonal in pixels (any rotation fits) plus a pixel each side.
        self.patch = math.ceil(self.frame.diagonal_m * max(sx, sy)) + 2

    def render(
        self,
        strokes: Strokes,
        background: torch.Tensor | None = None,
        subset: torch.Tensor | slice | None = None,
        return_coverage: bool = False,
    ):
        """Composite strokes in order over a background.

        Args:
            strokes: N strokes (any may require grad).
            background: (3, H, W) image in 0..1 at the canvas' pixel size; white if None.
            subset: render only these strokes (index tensor, bool mask or slice), order kept.
            return_coverage: also return (H, W) total stroke opacity 1 - prod(1 - a).
        Returns:
            (3, H, W) image, or (image, coverage) when `return_coverage`.
        """
        h, w = self.canvas.size_px
        if subset is not None:
            strokes = strokes[subset]
        dtype, device = strokes.position.dtype, strokes.device
        if background is None:
            background = torch.ones(3, h, w, dtype=dtype, device=device)
        elif tuple(background.shape) != (3, h, w):
            raise ValueError(
                f"background must have shape (3, {h}, {w}) for this canvas, "
                f"got {tuple(background.shape)}"
            )
        if len(strokes) == 0:
            cov = torch.zeros(h, w, dtype=dtype, device=device)
            return (background, cov) if return_coverage else background

        patches, ox, oy = self._patches(strokes)  # (N, P, P), (N,), (N,)
        box = self._support_px(strokes, ox, oy)  # (N, 4) pixel box (x0, x1, y0, y1), exclusive
        return self._composite(patches, ox, oy, box, strokes.color, background, return_coverage)

    def _support_px(self, strokes: Strokes, ox, oy) -> torch.Tensor:
        """Each stroke's nonzero area as a canvas pixel box, clipped to its patch."""
        with torch.no_grad():
            s = strokes.detach()
            x0, x1, y0, y1 = self.stroke_model.support(s.length, s.bend, s.pressure).unbind(-1)
            corners = torch.stack(
                [torch.stack([x, y], -1) for x in (x0, x1) for y in (y0, y1)], 1
            )  # (N, 4, 2) local meters
            xy = self.canvas.m_to_px(local_to_canvas(corners, s.position, s.angle))  # (N, 4, 2)
            lo = torch.floor(xy.amin(1)).long()
            hi = torch.floor(xy.amax(1)).long() + 1
            P = self.patch
            return torch.stack(
                [
                    torch.maximum(lo[:, 0], ox),
                    torch.minimum(hi[:, 0], ox + P),
                    torch.maximum(lo[:, 1], oy),
                    torch.minimum(hi[:, 1], oy + P),
                ],
                -1,
            )

    # ---- 1 + 2: local maps warped into canvas-aligned patches ------------------------------
    def _patches(self, strokes: Strokes):
        P = self.patch
        sx, sy = self.canvas.px_per_m
        local = self.stroke_model(strokes.length, strokes.bend, strokes.pressure, self.frame)
        # Patch placement: centred on the frame centre's canvas pixel (integer offsets).
        cx, cy = self.frame.center_m
        ang = strokes.angle.detach()
        pos = strokes.position.detach()
        center_x = (pos[:, 0] + cx * torch.cos(ang) - cy * torch.sin(ang)) * sx
        center_y = (pos[:, 1] + cx * torch.sin(ang) + cy * torch.cos(ang)) * sy
        ox = torch.floor(center_x - P / 2).long()  # (N,) patch's first column
        oy = torch.floor(center_y - P / 2).long()
        # Patch pixel (normalised n in -1..1, align_corners=False) -> canvas meters
        # x = (ox + P/2)/sx + P/(2 sx) n_x -> stroke-local (u, v) -> the frame's normalised
        # coordinates: all affine, so one (2, 3) matrix per stroke and `affine_grid`.
        f = self.frame
        cos, sin = torch.cos(strokes.angle), torch.sin(strokes.angle)
        dx = (ox.to(cos.dtype) + P / 2) / sx - strokes.position[:, 0]  # patch centre - start
        dy = (oy.to(cos.dtype) + P / 2) / sy - strokes.position[:, 1]
        hx, hy = P / (2 * sx), P / (2 * sy)  # meters per unit of normalised patch coordinate
        kx, ky = 2 / (f.x_max - f.x_min), 2 / (f.y_max - f.y_min)
        theta = torch.stack(
            [
                torch.stack(
                    [kx * hx * cos, kx * hy * sin, kx * (dx * cos + dy * sin - f.x_min) - 1], -1
                ),
                torch.stack(
                    [-ky * hx * sin, ky * hy * cos, ky * (-dx * sin + dy * cos - f.y_min) - 1], -1
                ),
            ],
            1,
        )  # (N, 2, 3)
        grid = F.affine_grid(theta, [len(strokes), 1, P, P], align_corners=False)  # (N, P, P, 2)
        patches = F.grid_sample(local[:, None], grid, align_corners=False)[:, 0]  # (N, P, P)
        return patches, ox, oy

    # ---- 3: tiled, ordered compositing -------------------------------------------------------
    def _composite(self, patches, ox, oy, box, color, background, return_coverage):
        n, P, T = patches.shape[0], self.patch, self.tile
        h, w = self.canvas.size_px
        device = patches.device
        tiles_y, tiles_x = -(-h // T), -(-w // T)
        span = (P - 1) // T + 2  # most tiles a patch can overlap along one axis
        steps = torch.arange(span, device=device)
        bx0, bx1, by0, by1 = box.unbind(-1)
        tx = torch.div(bx0, T, rounding_mode="floor")[:, None] + steps  # (N, span)
        ty = torch.div(by0, T, rounding_mode="floor")[:, None] + steps
        ok_x = (tx >= 0) & (tx < tiles_x) & (tx * T < bx1[:, None])
        ok_y = (ty >= 0) & (ty < tiles_y) & (ty * T < by1[:, None])
        ok = ok_y[:, :, None] & ok_x[:, None, :]  # (N, span, span)
        stroke_id = torch.arange(n, device=device)[:, None, None].expand_as(ok)[ok]
        tile_y = ty[:, :, None].expand_as(ok)[ok]
        tile_x = tx[:, None, :].expand_as(ok)[ok]
        tile_id = tile_y * tiles_x + tile_x
        if stroke_id.numel() == 0:  # every stroke is off the canvas
            cov = torch.zeros(h, w, dtype=background.dtype, device=device)
            return (background, cov) if return_coverage else background

        # Sort pairs by (tile, stroke); only tiles with strokes are composited ("used" tiles).
        order = torch.argsort(tile_id * n + stroke_id)
        stroke_id, tile_id = stroke_id[order], tile_id[order]
        tile_y, tile_x = tile_y[order], tile_x[order]
        used, used_idx, counts = torch.unique_consecutive(
            tile_id, return_inverse=True, return_counts=True
        )
        k_max = int(counts.max())
        first = torch.cumsum(counts, 0) - counts
        rank = torch.arange(stroke_id.numel(), device=device) - first[used_idx]
        slot = rank * used.numel() + used_idx  # position in the packed (K, used tiles) layout

        # Each pair's T x T window of its stroke's patch (zero outside the patch).
        padded = F.pad(patches, (T, T, T, T))  # (N, P + 2T, P + 2T)
        ar = torch.arange(T, device=device)
        rows = (tile_y * T - oy[stroke_id] + T)[:, None] + ar  # (M, T)
        cols = (tile_x * T - ox[stroke_id] + T)[:, None] + ar
        windows = padded[stroke_id[:, None, None], rows[:, :, None], cols[:, None, :]]  # (M,T,T)

        n_used = used.numel()
        alpha = patches.new_zeros(k_max * n_used, T, T).index_copy(0, slot, windows)
        rgb = color.new_zeros(k_max * n_used, 3).index_copy(0, slot, color[stroke_id])

        # Background as tiles; composite the used tiles; put them back.
        bg = F.pad(background, (0, tiles_x * T - w, 0, tiles_y * T - h))
        bg = bg.view(3, tiles_y, T, tiles_x, T).permute(1, 3, 0, 2, 4).reshape(-1, 3, T, T)
        out_used, cov_used = composite(
            alpha.view(k_max, n_used, T, T), rgb.view(k_max, n_used, 3), bg[used]
        )
        out = bg.index_copy(0, used, out_used)
        image = out.view(tiles_y, tiles_x, 3, T, T).permute(2, 0, 3, 1, 4)
        image = image.reshape(3, tiles_y * T, tiles_x * T)[:, :h, :w]
        if not return_coverage:
            return image
        cov = patches.new_zeros(tiles_y * tiles_x, T, T).index_copy(0, used, cov_used)
        cov = cov.view(tiles_y, tiles_x, T, T).permute(0, 2, 1, 3).reshape(tiles_y * T, -1)
        return image, cov[:h, :w]
