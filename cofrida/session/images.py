"""Image files that are either complete or absent: write to a temp file, fsync, rename."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, H, W) float tensor in 0..1 or (H, W, 3) uint8 array -> (H, W, 3) uint8 array."""
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"image tensor must have shape (3, H, W), got {tuple(image.shape)}")
        arr = image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        return (arr * 255 + 0.5).astype(np.uint8)
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"image array must be (H, W, 3) uint8, got {arr.shape} {arr.dtype}")
    return arr


def write_png_atomic(image: torch.Tensor | np.ndarray, path: str | Path) -> Path:
    """Write a PNG so that a crash at any moment leaves either the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(to_uint8(image)).save(f, format="PNG")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # make the rename itself durable
    finally:
        os.close(dir_fd)
    return path


def read_png(path: str | Path) -> torch.Tensor:
    """PNG -> (3, H, W) float tensor in 0..1."""
    with Image.open(path) as img:
        arr = np.asarray(img.convert("RGB")).copy()
    return torch.from_numpy(arr).permute(2, 0, 1).float() / 255
