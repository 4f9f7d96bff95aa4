"""What a person gives a session, checked with messages a person can act on.

`canvas_from_upload` accepts an uploaded file's bytes or an image array; `check_prompt`
accepts any unicode text that is not blank and not too long.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

MIN_SIDE_PX = 64  # smaller uploads hold too little of a canvas to plan strokes on
MAX_SIDE_PX = 8192  # larger ones are refused before decoding (decompression bombs)
MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # a phone photo is 2-10 MB
MAX_PROMPT_CHARS = 500  # the text encoders read ~77 tokens; a paragraph is a mistake


def check_prompt(prompt, max_chars: int = MAX_PROMPT_CHARS) -> str:
    """The prompt with surrounding whitespace removed.

    Raises:
        ValueError: not text, blank, or longer than `max_chars` characters.
    """
    if not isinstance(prompt, str):
        raise ValueError(f"the prompt must be text, got {type(prompt).__name__}")
    text = prompt.replace("\x00", "").strip()
    if not text:
        raise ValueError("the prompt is empty: type what the painting should become")
    if len(text) > max_chars:
        raise ValueError(
            f"the prompt is {len(text)} characters long; keep it under {max_chars} "
            "(a short description works best)"
        )
    return text


def _decode(data: bytes, max_bytes: int) -> np.ndarray:
    if len(data) == 0:
        raise ValueError("the uploaded file is empty")
    if len(data) > max_bytes:
        raise ValueError(
            f"the uploaded file is {len(data) / 2**20:.1f} MB; the limit is "
            f"{max_bytes / 2**20:.0f} MB"
        )
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            if max(w, h) > MAX_SIDE_PX:
                raise ValueError(
                    f"the uploaded image is {w}x{h} px; the largest side allowed is "
                    f"{MAX_SIDE_PX} px"
                )
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img.load()  # decodes everything: truncated files fail here
            return np.asarray(img.convert("RGB")).copy()
    except UnidentifiedImageError:
        raise ValueError(
            "the uploaded file is not an image that can be read (use PNG or JPEG)"
        ) from None
    except (OSError, SyntaxError, Image.DecompressionBombWarning) as exc:
        raise ValueError(f"the uploaded image is corrupt or truncated ({exc})") from None


def _as_rgb_array(image) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        if image.dim() == 3 and image.shape[0] in (3, 4) and image.shape[2] not in (3, 4):
            image = image.permute(1, 2, 0)
        image = image.detach().cpu().numpy()
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"the image must be (H, W, 3) RGB, got shape {arr.shape}")
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype.kind != "f" or not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
        raise ValueError("an image array must be uint8, or float with finite values in 0..1")
    return (arr * 255 + 0.5).astype(np.uint8)


def canvas_from_upload(
    upload, size_px: tuple[int, int], max_bytes: int = MAX_UPLOAD_BYTES
) -> torch.Tensor:
    """An uploaded canvas photo (already rectified) as the session's canvas image.

    Args:
        upload: the file's bytes (PNG, JPEG, ...), or an (H, W, 3) uint8 / float 0..1 array
            or tensor ((3, H, W) tensors too).
        size_px: (height, width) of the session's canvas; the image is resized to it.
        max_bytes: the largest file accepted.
    Returns:
        (3, height, width) float tensor in 0..1.
    Raises:
        ValueError: empty, too large, not an image, corrupt or truncated, too small.
    """
    if isinstance(upload, bytes | bytearray | memoryview):
        arr = _decode(bytes(upload), max_bytes)
    else:
        arr = _as_rgb_array(upload)
    h, w = arr.shape[:2]
    if min(h, w) < MIN_SIDE_PX:
        raise ValueError(
            f"the uploaded image is {w}x{h} px; it needs at least {MIN_SIDE_PX} px on each side"
        )
    return resize(torch.from_numpy(arr).permute(2, 0, 1).float() / 255, size_px)


def resize(image: torch.Tensor, size_px: tuple[int, int]) -> torch.Tensor:
    """(3, H, W) -> (3, *size_px); a copy either way (area filter when shrinking)."""
    if tuple(image.shape[1:]) == tuple(size_px):
        return image.clone()
    shrink = image.shape[1] >= size_px[0] and image.shape[2] >= size_px[1]
    mode = "area" if shrink else "bilinear"
    kwargs = {} if shrink else {"align_corners": False}
    return F.interpolate(image[None], size=tuple(size_px), mode=mode, **kwargs)[0].clamp(0, 1)
