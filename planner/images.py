"""Loading and checking target and canvas images, with errors that say what is wrong.

Images inside the planner are (3, H, W) float32 tensors, sRGB in 0..1, at the canvas' pixel
size. `load_image` accepts a file path, a (3, H, W) float tensor or an (H, W, 3) uint8 array.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from sim import Canvas

ASPECT_TOLERANCE = 0.03  # relative aspect-ratio mismatch a file may have and still be resized


def load_image(
    source: str | Path | torch.Tensor | np.ndarray,
    canvas: Canvas,
    what: str = "target",
    allow_grey: bool = False,
) -> torch.Tensor:
    """An image as a (3, H, W) float32 tensor in 0..1 at `canvas.size_px`.

    Args:
        source: an image file (PNG, JPEG, ...), a (3, H, W) float tensor in 0..1 or an
            (H, W, 3) uint8 array.
        canvas: the canvas whose pixel size the image must have. Files are resized to it when
            their aspect ratio matches within 3%; tensors and arrays must already match.
        what: the image's role, used in error messages ("target", "canvas").
        allow_grey: accept single-channel (grey-only) images by repeating the channel; the
            default refuses them, since a planner with colour paints would silently paint grey.
    Raises:
        ValueError: unreadable or corrupt file, wrong shape or size, grey-only image, values
            outside 0..1, NaN/inf. FileNotFoundError: no such file.
    """
    h, w = canvas.size_px
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"{what} image not found: {path}")
        try:
            with Image.open(path) as img:
                img.load()
                mode = img.mode
                if mode in ("1", "L", "LA", "I", "I;16", "F") and not allow_grey:
                    raise ValueError(
                        f"{what} image {path} is grey-only (mode {mode}); the planner paints "
                        "colour targets: convert it to RGB first or pass allow_grey=True"
                    )
                rgb = img.convert("RGB")
                aspect_file, aspect_canvas = rgb.width / rgb.height, w / h
                if abs(aspect_file / aspect_canvas - 1) > ASPECT_TOLERANCE:
                    raise ValueError(
                        f"{what} image {path} is {rgb.width}x{rgb.height} px (aspect "
                        f"{aspect_file:.3f}) but the canvas is {w}x{h} px (aspect "
                        f"{aspect_canvas:.3f}); crop it to the canvas' aspect ratio"
                    )
                if rgb.size != (w, h):
                    rgb = rgb.resize((w, h), Image.Resampling.LANCZOS)
                arr = np.asarray(rgb).copy()
        except (UnidentifiedImageError, OSError, SyntaxError) as e:
            raise ValueError(f"{what} image {path} is not a readable image file ({e})") from None
        return torch.from_numpy(arr).permute(2, 0, 1).float() / 255.0
    if isinstance(source, np.ndarray):
        if source.ndim == 2 or (source.ndim == 3 and source.shape[2] == 1):
            if not allow_grey:
                raise ValueError(
                    f"{what} array is grey-only with shape {source.shape}; pass an (H, W, 3) "
                    "uint8 colour image or allow_grey=True"
                )
            source = np.repeat(source.reshape(source.shape[0], source.shape[1], 1), 3, axis=2)
        if source.ndim != 3 or source.shape[2] != 3 or source.dtype != np.uint8:
            raise ValueError(
                f"{what} array must be (H, W, 3) uint8, got {source.shape} {source.dtype}"
            )
        source = torch.from_numpy(source.copy()).permute(2, 0, 1).float() / 255.0
    if not isinstance(source, torch.Tensor):
        raise ValueError(
            f"{what} must be an image path, a (3, H, W) float tensor or an (H, W, 3) uint8 "
            f"array, got {type(source).__name__}"
        )
    image = source.detach()
    if image.dim() == 2 or (image.dim() == 3 and image.shape[0] == 1):
        if not allow_grey:
            raise ValueError(
                f"{what} tensor is grey-only with shape {tuple(image.shape)}; pass a (3, H, W) "
                "colour image or allow_grey=True"
            )
        image = image.reshape(1, *image.shape[-2:]).expand(3, -1, -1)
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"{what} must have shape (3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"{what} tensor must be float in 0..1, got {image.dtype}")
    if tuple(image.shape[1:]) != (h, w):
        raise ValueError(
            f"{what} is {image.shape[2]}x{image.shape[1]} px (W x H) but the canvas renders at "
            f"{w}x{h} px; resize it or plan on Canvas(..., width_px={image.shape[2]})"
        )
    if not bool(torch.isfinite(image).all()):
        raise ValueError(f"{what} contains NaN or infinite values")
    lo, hi = float(image.min()), float(image.max())
    if lo < -1e-4 or hi > 1 + 1e-4:
        raise ValueError(f"{what} values must be in 0..1, got {lo:.3g}..{hi:.3g}")
    return image.to("cpu", torch.float32).clamp(0, 1).contiguous()


def resize(image: torch.Tensor, canvas: Canvas) -> torch.Tensor:
    """A (C, H, W) image resampled (area-averaged when shrinking) to `canvas.size_px`."""
    if tuple(image.shape[-2:]) == canvas.size_px:
        return image
    out = F.interpolate(image[None], size=canvas.size_px, mode="area")  # (1, C, h, w)
    return out[0]
