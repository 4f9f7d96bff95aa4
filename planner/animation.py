"""An animation of a plan being painted, for previews: GIF (Pillow) or MP4 (only when the
optional imageio-ffmpeg package is installed).

Frames are rendered by the differentiable renderer (no gradients), stroke by stroke in painting
order over the canvas image; the last frame is the finished plan and is held a little longer.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from planner.plan import Plan
from planner.progress import ProgressFn, StopFn, check_stop, report
from sim import AnalyticStrokeModel, Renderer


def plan_frames(
    plan: Plan,
    background: torch.Tensor | None = None,
    frames: int = 24,
    width_px: int | None = None,
    renderer: Renderer | None = None,
    on_progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> list[np.ndarray]:
    """Frames (H, W, 3) uint8 of the plan being painted: the canvas, then `frames` steps.

    Args:
        background: (3, H, W) canvas image in 0..1 at the render size; white if None.
        frames: number of frames after the first (strokes are split evenly among them).
        width_px: render width (default: the plan's canvas width); ignored with `renderer`.
        renderer: render with this (e.g. a calibrated stroke model) instead of an analytic one.
    """
    if not (isinstance(frames, int) and frames >= 1):
        raise ValueError(f"frames must be an integer >= 1, got {frames!r}")
    if renderer is None:
        canvas = plan.canvas if width_px is None else plan.canvas.at(width_px)
        renderer = Renderer(canvas, AnalyticStrokeModel(plan.brush))
    h, w = renderer.canvas.size_px
    bg = torch.ones(3, h, w) if background is None else background
    strokes = plan.ordered_strokes()
    cuts = sorted({round(len(strokes) * (k + 1) / frames) for k in range(frames)})
    out = [_to_uint8(bg)]
    with torch.no_grad():
        for i, k in enumerate(cuts):
            check_stop(should_stop, "animation")
            out.append(_to_uint8(renderer.render(strokes, bg, subset=slice(0, k))))
            report(on_progress, phase="animation", step=i + 1, total=len(cuts))
    return out


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    arr = image.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return (arr * 255 + 0.5).astype(np.uint8)


def save_animation(
    frames: list[np.ndarray], path: str | Path, fps: float = 8.0, hold_last_s: float = 1.5
) -> Path:
    """Write frames as .gif (always available) or .mp4 (needs imageio-ffmpeg).

    The file is written to a temporary name and renamed, so a failure leaves no half file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not frames:
        raise ValueError("save_animation: no frames")
    hold = max(1, round(hold_last_s * fps))
    seq = list(frames) + [frames[-1]] * (hold - 1)
    tmp = path.with_name(f".{path.stem}.tmp{suffix}")
    if suffix == ".gif":
        images = [Image.fromarray(f) for f in seq]
        images[0].save(
            tmp, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0
        )
    elif suffix == ".mp4":
        if importlib.util.find_spec("imageio_ffmpeg") is None:
            raise ValueError("MP4 needs the optional imageio-ffmpeg package; write a .gif instead")
        import imageio_ffmpeg

        h, w = seq[0].shape[:2]
        writer = imageio_ffmpeg.write_frames(str(tmp), (w, h), fps=fps, macro_block_size=1)
        writer.send(None)
        for f in seq:
            writer.send(np.ascontiguousarray(f))
        writer.close()
    else:
        raise ValueError(f"save_animation: unsupported file type {suffix!r}; use .gif or .mp4")
    tmp.replace(path)
    return path
