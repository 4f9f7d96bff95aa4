"""What `EditModel.propose` accepts and returns: canvases, region masks, sizes, blending.

A canvas is one of
    * a (3, H, W) float tensor in 0..1 (or a uint8 tensor in 0..255),
    * an (H, W, 3) uint8 numpy array (or a float array in 0..1),
    * a PIL image (converted to RGB).
Proposals come back in the same kind: (n, 3, H, W) float tensor, (n, H, W, 3) uint8 array, or
a list of n PIL images, always at the canvas' own size.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

MIN_SIZE = 8  # px; smaller canvases are almost certainly a mistake (a thumbnail, a 1-D array)


def canvas_to_tensor(canvas) -> tuple[torch.Tensor, str]:
    """Validate a canvas and return it as a (3, H, W) float32 tensor in 0..1 and its kind.

    Returns:
        (image, kind) with kind one of ``"tensor"``, ``"numpy"``, ``"pil"``.

    Raises:
        ValueError: wrong type, number of dimensions or channels, too small, NaN/inf, or
            values outside 0..1 (floats) — the message names the problem.
    """
    kind = "tensor"
    if not isinstance(canvas, (torch.Tensor, np.ndarray)):
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover - pillow is a dependency
            Image = None
        if Image is None or not isinstance(canvas, Image.Image):
            raise ValueError(
                "canvas must be a (3, H, W) torch tensor, an (H, W, 3) numpy array or a PIL "
                f"image, got {type(canvas).__name__}"
            )
        canvas, kind = np.array(canvas.convert("RGB")), "pil"
    if isinstance(canvas, np.ndarray):
        kind = "numpy" if kind == "tensor" else kind
        if canvas.ndim != 3 or canvas.shape[2] != 3:
            raise ValueError(f"canvas array must have shape (H, W, 3), got {canvas.shape}")
        image = torch.from_numpy(np.ascontiguousarray(canvas)).permute(2, 0, 1)
    else:
        image = canvas.detach().cpu()
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"canvas tensor must have shape (3, H, W), got {tuple(image.shape)}")
    if image.dtype == torch.uint8:
        image = image.float() / 255.0
    elif image.is_floating_point():
        image = image.float()
        if not torch.isfinite(image).all():
            raise ValueError("canvas contains NaN or infinite values")
        lo, hi = image.min().item(), image.max().item()
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"canvas values must lie in 0..1, got min {lo:.4g} max {hi:.4g}")
    else:
        raise ValueError(f"canvas dtype must be uint8 or floating point, got {image.dtype}")
    if min(image.shape[1:]) < MIN_SIZE:
        raise ValueError(f"canvas is {tuple(image.shape[1:])} px; both sides must be >= {MIN_SIZE}")
    return image.contiguous(), kind


def region_to_mask(region, height: int, width: int) -> torch.Tensor:
    """Validate a region mask and return it as a (1, H, W) float tensor in 0..1.

    Args:
        region: (H, W) bool or float tensor/array in 0..1, or a uint8 array/tensor: 0/1, or
            0..255 (a painted mask image) when any value exceeds 1.
        height, width: the canvas size it must match.

    Raises:
        ValueError: wrong shape, NaN, values out of range, or an empty region.
    """
    mask = torch.as_tensor(np.asarray(region)) if not isinstance(region, torch.Tensor) else region
    mask = mask.detach().cpu()
    if mask.dim() == 3 and mask.shape[0] == 1:
        mask = mask[0]
    if tuple(mask.shape) != (height, width):
        raise ValueError(
            f"region must have the canvas' shape {(height, width)}, got {tuple(mask.shape)}"
        )
    if mask.dtype == torch.bool:
        mask = mask.float()
    elif mask.dtype == torch.uint8:
        mask = mask.float() / (255.0 if mask.max() > 1 else 1.0)
    else:
        mask = mask.float()
        if not torch.isfinite(mask).all():
            raise ValueError("region contains NaN or infinite values")
        if mask.min() < 0 or mask.max() > 1:
            raise ValueError("region values must lie in 0..1")
    if not (mask > 0).any():
        raise ValueError("region is empty: mark where the proposal may change the canvas")
    return mask.unsqueeze(0)


def feather_inside(mask: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """Soften a (1, H, W) mask's edge inward only: zero stays exactly zero outside the region."""
    k = 2 * radius + 1
    blurred = F.avg_pool2d(mask[None], k, stride=1, padding=radius, count_include_pad=False)[0]
    return mask * blurred


def model_size(height: int, width: int, resolution: int, multiple: int) -> tuple[int, int]:
    """Size the model computes at: shorter side ``resolution``, aspect kept (long side at most
    2x), both sides rounded to a multiple of ``multiple`` (VAE downsampling x UNet levels)."""
    short, long = min(height, width), max(height, width)
    long_px = min(resolution * long / short, 2 * resolution)
    s = max(multiple, round(resolution / multiple) * multiple)
    lg = max(multiple, round(long_px / multiple) * multiple)
    return (s, lg) if height <= width else (lg, s)


def resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, *size), bilinear, antialiased when shrinking; identity if equal."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)


def to_output(images: torch.Tensor, kind: str):
    """(n, 3, H, W) float 0..1 -> the canvas' kind (tensor, uint8 array, list of PIL images)."""
    images = images.clamp(0, 1)
    if kind == "tensor":
        return images
    arr = (images.permute(0, 2, 3, 1) * 255.0).round().to(torch.uint8).numpy()  # (n, H, W, 3)
    if kind == "numpy":
        return arr
    from PIL import Image

    return [Image.fromarray(a) for a in arr]
