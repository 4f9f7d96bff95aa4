"""Images between the browser and the session: editor values, masks, the photomontage
composite, plan previews, thumbnails and animations.

Conventions: the session's images are (3, H, W) float tensors in 0..1 (sRGB); the browser's are
(H, W, 3) or (H, W, 4) uint8 arrays. ``size_px`` is always (height, width) in pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from cofrida.session.images import read_png, to_uint8
from cofrida.session.inputs import resize
from planner import Plan
from planner.animation import plan_frames, save_animation

ALPHA_MARKED = 0.5  # a brushed layer pixel counts as marked above this opacity (0..1)

# Brush colours of the photomontage editor: brushing with colour k takes proposal k there.
MONTAGE_COLOURS = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (128, 128, 0),
)
MONTAGE_NAMES = ("red", "green", "blue", "orange", "purple", "cyan", "magenta", "olive")


def hex_colour(rgb) -> str:
    """(r, g, b) sRGB in 0..1 -> '#rrggbb'."""
    r, g, b = (round(min(max(float(v), 0.0), 1.0) * 255) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def display(image: torch.Tensor, width_px: int | None = None) -> np.ndarray:
    """(3, H, W) 0..1 -> (H', W', 3) uint8 for the browser, resized to `width_px` wide."""
    if width_px is not None and width_px != image.shape[2]:
        h = round(image.shape[1] * width_px / image.shape[2])
        image = resize(image, (h, width_px))
    return to_uint8(image)


def editor_value(canvas: torch.Tensor, width_px: int) -> dict:
    """An ImageEditor value with `canvas` as its background and no marks on it."""
    arr = display(canvas, width_px)
    return {"background": arr, "layers": [], "composite": arr}


def _rgba(arr) -> np.ndarray | None:
    """An editor image (None, (H, W), (H, W, 3) or (H, W, 4), uint8) -> (H, W, 4) float 0..1."""
    if arr is None:
        return None
    a = np.asarray(arr)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"an editor image must be (H, W, 3|4), got shape {a.shape}")
    a = a.astype(np.float32) / 255.0
    if a.shape[2] == 3:
        a = np.concatenate([a, np.ones_like(a[..., :1])], axis=2)
    return a


def _layers(value) -> list[np.ndarray]:
    if not isinstance(value, dict):
        return []
    return [x for x in (_rgba(layer) for layer in value.get("layers") or []) if x is not None]


def _to_size(arr: np.ndarray, size_px: tuple[int, int]) -> np.ndarray:
    """(H, W, C) float -> (h, w, C) float at size_px (area average when shrinking)."""
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).float()
    return resize(t, size_px).permute(1, 2, 0).numpy()


def drawing_from_editor(value, size_px: tuple[int, int]) -> torch.Tensor | None:
    """The canvas the person painted in the editor: background with their layers on top.

    Args:
        value: the ImageEditor value ({"background", "layers", "composite"}, numpy images).
        size_px: the session's canvas size.
    Returns:
        (3, H, W) float 0..1, or None when nothing was drawn (every layer transparent).
    """
    layers = _layers(value)
    if not any((layer[..., 3] > 0).any() for layer in layers):
        return None
    background = _rgba(value.get("background"))
    if background is None:
        background = np.ones_like(layers[0])
    out = background[..., :3] * background[..., 3:] + (1 - background[..., 3:])  # on white
    for layer in layers:
        if layer.shape != background.shape:
            raise ValueError("the editor's layers and background differ in size")
        out = out * (1 - layer[..., 3:]) + layer[..., :3] * layer[..., 3:]
    return torch.from_numpy(np.ascontiguousarray(_to_size(out, size_px))).permute(2, 0, 1)


def marks_mask(value, size_px: tuple[int, int]) -> np.ndarray | None:
    """Where the person brushed in an editor (any layer), as (H, W) bool at `size_px`;
    None when nothing is marked."""
    layers = _layers(value)
    if not layers:
        return None
    alpha = np.max(np.stack([layer[..., 3] for layer in layers]), axis=0)
    mask = _to_size(alpha[..., None], size_px)[..., 0] > ALPHA_MARKED
    return mask if mask.any() else None


def montage(proposals: list[torch.Tensor], base: int, value) -> tuple[torch.Tensor, list[int]]:
    """Generative-photomontage style composite, mask based: brushing with montage colour k
    takes proposal k there; everywhere else shows proposal `base`.

    Args:
        proposals: the turn's proposals, each (3, H, W) 0..1, best first.
        base: index of the proposal shown where nothing is brushed.
        value: the montage ImageEditor value (its layers hold the brushed colours).
    Returns:
        (composite (3, H, W) 0..1, indices of the proposals used besides `base`).
    Raises:
        ValueError: a bad base index, or marks in a colour with no proposal.
    """
    if not 0 <= base < len(proposals):
        raise ValueError(f"choose a base proposal 1..{len(proposals)}")
    size = tuple(proposals[base].shape[1:])
    out = proposals[base].clone()
    layers = _layers(value)
    if not layers:
        return out, []
    top = np.zeros((*size, 4), np.float32)  # the marks of all layers, last on top
    for layer in layers:
        small = _to_size(layer, size)
        top = np.where(small[..., 3:] > ALPHA_MARKED, small, top)
    marked = top[..., 3] > ALPHA_MARKED
    if not marked.any():
        return out, []
    palette = np.array(MONTAGE_COLOURS, np.float32) / 255.0  # (8, 3)
    dist = ((top[..., None, :3] - palette[None, None]) ** 2).sum(-1)  # (H, W, 8)
    nearest = dist.argmin(-1)
    used = sorted({int(k) for k in np.unique(nearest[marked])})
    missing = [k for k in used if k >= len(proposals)]
    if missing:
        names = ", ".join(MONTAGE_NAMES[k] for k in missing)
        raise ValueError(
            f"marks in {names}, but there are only {len(proposals)} proposals: brush with the "
            f"colours of proposals 1..{len(proposals)}"
        )
    for k in used:
        take = torch.from_numpy(marked & (nearest == k))[None]
        out = torch.where(take, proposals[k], out)
    return out, [k for k in used if k != base]


def stroke_overlay(canvas: torch.Tensor, plan: Plan, width_px: int | None = None) -> np.ndarray:
    """The canvas faded, with every planned stroke drawn as its brush path in its paint.

    Returns (H, W, 3) uint8, `width_px` wide (default: the canvas width): a map of where the
    robot will paint.
    """
    img = Image.fromarray(display(0.45 * canvas + 0.55, width_px))  # faded towards white
    draw = ImageDraw.Draw(img)
    w_px = img.width
    scale = w_px / plan.canvas.width_m  # px per meter
    brush = plan.brush
    for path in plan.paths():
        pts = path.points.detach().cpu().numpy()  # (K, 3): x m, y m, z press 0..1
        press = float(np.clip(pts[:, 2].mean(), 0, 1))
        width_m = brush.min_width_m + press * (brush.max_width_m - brush.min_width_m)
        colour = tuple(round(float(c) * 255) for c in path.color.clamp(0, 1))
        xy = [(float(x) * scale, float(y) * scale) for x, y in pts[:, :2]]
        draw.line(xy, fill=colour, width=max(1, round(width_m * scale)), joint="curve")
    return np.asarray(img)


def _upscale(frame: np.ndarray, width_px: int | None) -> np.ndarray:
    """(H, W, 3) uint8 -> `width_px` wide (aspect kept); unchanged for None."""
    if width_px is None or frame.shape[1] == width_px:
        return frame
    h = round(frame.shape[0] * width_px / frame.shape[1])
    return np.asarray(Image.fromarray(frame).resize((width_px, h), Image.Resampling.BILINEAR))


def plan_preview(
    plan: Plan, canvas: torch.Tensor, gif_path: Path, frames: int = 12, width_px: int | None = None
):
    """The painting the plan should give and a GIF of it being painted stroke by stroke.

    Args:
        plan: the planned strokes; canvas: (3, H, W) 0..1 at the plan's canvas size.
        gif_path: where the animation is written (atomically).
        frames: animation frames after the first.
        width_px: width of the GIF's frames (default: the canvas width).
    Returns:
        (final (H, W, 3) uint8 at the canvas size, gif_path).
    """
    shots = plan_frames(plan, background=canvas, frames=max(1, min(frames, len(plan))))
    save_animation([_upscale(f, width_px) for f in shots], gif_path, fps=6.0)
    return shots[-1], gif_path


def replay_gif(
    frames: list[Path], gif_path: Path, max_frames: int = 40, width_px: int | None = None
) -> Path | None:
    """A GIF of saved canvas snapshots (PNG paths, time order), at most `max_frames` of them
    (evenly picked, first and last kept), `width_px` wide; None without frames."""
    if not frames:
        return None
    if len(frames) > max_frames:
        idx = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames = [frames[i] for i in sorted(set(idx.tolist()))]
    shots = [_upscale(to_uint8(read_png(f)), width_px) for f in frames]
    return save_animation(shots, gif_path, fps=8.0)


def thumbnail(image: torch.Tensor | Path, width_px: int = 160) -> np.ndarray:
    """A small (h, width_px, 3) uint8 copy of an image or a PNG file."""
    if isinstance(image, str | Path):
        image = read_png(image)
    return display(image, width_px)
