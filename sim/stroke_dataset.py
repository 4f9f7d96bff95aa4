"""Captured stroke datasets: real strokes with the parameters the robot was given.

One file format, written by the capture procedure and by `import_frida_library`, read by the
fitting and the gap report (see ``../shared/data/README.md``): an ``.npz`` without pickles holding

- ``intensity`` (N, H, W) uint8: ink darkness, 0 = bare paper, 255 = darkest;
- ``params`` (N, 4) float32: length (m), bend (m), z (pressure 0..1), alpha (tilt);
- ``meters_per_pixel``: scalar;
- ``start_xy_px`` (2,): pixel (x, y) where every stroke starts (pixel edges at integers);
  strokes run towards +x;
- ``capture_file`` (N,) int, optional: which capture batch a stroke came from.

The images are the strokes' local frames: `StrokeDataset.frame` is the `StrokeFrame` they cover.
"""

from __future__ import annotations

import gzip
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sim.stroke_model import StrokeFrame

MAX_STROKE_LENGTH_M = 1.0  # m: no brush stroke on a robot's canvas is longer; a recorded length
# (or bend) beyond it is a unit or recording error, and fitting to it gives a useless model


@dataclass
class StrokeDataset:
    """N captured strokes, each an image of its local frame plus its commanded shape.

    Args:
        intensity: (N, H, W) uint8 ink darkness (0 = paper, 255 = darkest).
        params: (N, 4) float32 (length m, bend m, z 0..1, alpha).
        meters_per_pixel: image resolution (m).
        start_xy_px: (x, y) pixel of every stroke's start.
        capture_file: (N,) int capture batch of each stroke (zeros if unknown).
    """

    intensity: np.ndarray
    params: np.ndarray
    meters_per_pixel: float
    start_xy_px: tuple[float, float]
    capture_file: np.ndarray

    def __len__(self) -> int:
        return int(self.intensity.shape[0])

    @property
    def frame(self) -> StrokeFrame:
        """The stroke-local rectangle (meters) the images cover, at their resolution."""
        _, h, w = self.intensity.shape
        m, (sx, sy) = self.meters_per_pixel, self.start_xy_px
        return StrokeFrame(-sx * m, (w - sx) * m, -sy * m, (h - sy) * m, w, h)

    def darkness(self, index=None) -> torch.Tensor:
        """Ink darkness (n, H, W) float32 in 0..1 of the strokes at `index` (all if None)."""
        images = self.intensity if index is None else self.intensity[np.asarray(index)]
        return torch.from_numpy(images.astype(np.float32) / 255.0)

    def shapes(self, index=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(length m, bend m, pressure 0..1) tensors (n,) of the strokes at `index`."""
        p = self.params if index is None else self.params[np.asarray(index)]
        p = torch.from_numpy(np.ascontiguousarray(p, dtype=np.float32))
        return p[:, 0], p[:, 1], p[:, 2]

    def subset(self, index) -> StrokeDataset:
        index = np.asarray(index)
        return StrokeDataset(
            self.intensity[index], self.params[index], self.meters_per_pixel,
            self.start_xy_px, self.capture_file[index],
        )  # fmt: skip


def save_stroke_dataset(
    path: str | Path,
    intensity: np.ndarray,
    params: np.ndarray,
    meters_per_pixel: float,
    start_xy_px: tuple[float, float] | np.ndarray,
    capture_file: np.ndarray | None = None,
) -> Path:
    """Write a stroke dataset ``.npz`` (compressed, no pickles); atomically (temp file + rename).

    Args:
        path: output file (``.npz`` appended by numpy if missing is *not* done: pass the name).
        intensity: (N, H, W) ink darkness, uint8 (or floats in 0..1, converted).
        params: (N, 4) (length m, bend m, z 0..1, alpha) or (N, 3) without alpha (set to 0).
        meters_per_pixel: image resolution (m).
        start_xy_px: (x, y) pixel where every stroke starts.
        capture_file: (N,) capture batch of each stroke (default zeros).
    Returns:
        The path written.
    """
    intensity = np.asarray(intensity)
    if intensity.dtype != np.uint8:
        intensity = np.clip(np.round(intensity.astype(np.float64) * 255.0), 0, 255)
        intensity = intensity.astype(np.uint8)
    params = np.asarray(params, dtype=np.float32)
    if params.ndim == 2 and params.shape[1] == 3:
        params = np.concatenate([params, np.zeros((len(params), 1), np.float32)], 1)
    n = len(intensity)
    capture_file = np.zeros(n, np.int64) if capture_file is None else np.asarray(capture_file)
    data = StrokeDataset(
        intensity, params, float(meters_per_pixel),
        tuple(float(v) for v in np.asarray(start_xy_px).reshape(2)),
        capture_file.astype(np.int64),
    )  # fmt: skip
    validate_stroke_dataset(data, str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(
            f, intensity=data.intensity, params=data.params,
            capture_file=data.capture_file,
            meters_per_pixel=np.float64(data.meters_per_pixel),
            start_xy_px=np.asarray(data.start_xy_px, np.float64),
        )  # fmt: skip
    os.replace(tmp, path)
    return path


def load_stroke_dataset(path: str | Path) -> StrokeDataset:
    """Read a stroke dataset ``.npz`` (never unpickles); raises ValueError on a malformed file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no stroke dataset at {path}")
    with np.load(path, allow_pickle=False) as z:
        missing = {"intensity", "params", "meters_per_pixel", "start_xy_px"} - set(z.files)
        if missing:
            raise ValueError(f"{path}: not a stroke dataset, missing {sorted(missing)}")
        n = z["intensity"].shape[0]
        data = StrokeDataset(
            z["intensity"], z["params"].astype(np.float32), float(z["meters_per_pixel"]),
            tuple(float(v) for v in z["start_xy_px"].reshape(2)),
            z["capture_file"].astype(np.int64) if "capture_file" in z.files
            else np.zeros(n, np.int64),
        )  # fmt: skip
    validate_stroke_dataset(data, str(path))
    return data


def validate_stroke_dataset(data: StrokeDataset, where: str = "stroke dataset") -> None:
    """Raise ValueError naming the problem: shapes, non-finite values, and parameters no brush
    can paint (length outside (0, MAX_STROKE_LENGTH_M], |bend| over it, pressure outside 0..1)."""
    i, p = data.intensity, data.params
    if i.ndim != 3 or i.dtype != np.uint8 or min(i.shape) < 1:
        raise ValueError(f"{where}: intensity must be (N, H, W) uint8, got {i.shape} {i.dtype}")
    if p.shape != (i.shape[0], 4):
        raise ValueError(f"{where}: params must be ({i.shape[0]}, 4), got {p.shape}")
    bad = np.flatnonzero(~np.isfinite(p).all(1))
    if len(bad):
        raise ValueError(f"{where}: params of stroke {int(bad[0])} are not finite")
    for col, name, bad, allowed in (
        (0, "length", (p[:, 0] <= 0) | (p[:, 0] > MAX_STROKE_LENGTH_M),
         f"(0, {MAX_STROKE_LENGTH_M}] m"),
        (1, "bend", np.abs(p[:, 1]) > MAX_STROKE_LENGTH_M, f"|bend| <= {MAX_STROKE_LENGTH_M} m"),
        (2, "z (pressure)", (p[:, 2] < 0) | (p[:, 2] > 1), "0..1"),
    ):  # fmt: skip
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{where}: stroke {k} has {name}={float(p[k, col])!r}, not a stroke a brush can "
                f"paint ({allowed}); {int(bad.sum())} such strokes"
            )
    if not (np.isfinite(data.meters_per_pixel) and data.meters_per_pixel > 0):
        raise ValueError(f"{where}: meters_per_pixel must be > 0")
    if data.capture_file.shape != (i.shape[0],):
        raise ValueError(f"{where}: capture_file must have shape ({i.shape[0]},)")


# ---- FRIDA stroke library import -------------------------------------------------------------

# FRIDA records a stroke library as batches: ``stroke_intensities<k>.npy`` (gzip-compressed
# numpy array (n, H, W) uint8, each a photo of the whole stroke-library canvas, 255 = darkest)
# beside ``stroke_parameters<k>.npy`` ((n, 4) length, bend, z, alpha; gzip or plain). Every
# stroke starts at the centre of that canvas and runs towards +x.
_BATCH = re.compile(r"stroke_intensities(\d*)\.npy$")


def _load_npy(path: Path) -> np.ndarray:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except ValueError as e:
        raise ValueError(
            f"{path}: not a plain numpy array ({e}); pickles are never loaded"
        ) from None


def _box_resample(image: np.ndarray, x0: float, y0: float, step: float, w: int, h: int):
    """Area-average `image` over a (h, w) grid of `step`-pixel boxes from (x0, y0) (exact).

    Uses the integral image: between integer pixel edges it is bilinear, so interpolating it at
    fractional box corners gives each box's exact ink integral. Outside the image counts as 0.
    """
    xs, ys = x0 + step * np.arange(w + 1), y0 + step * np.arange(h + 1)
    # Only the part of the image the boxes reach (a full-resolution canvas is ~20 Mpx).
    ix0, iy0 = max(0, int(np.floor(xs[0]))), max(0, int(np.floor(ys[0])))
    ix1 = min(image.shape[1], int(np.ceil(xs[-1])))
    iy1 = min(image.shape[0], int(np.ceil(ys[-1])))
    if ix1 <= ix0 or iy1 <= iy0:
        return np.zeros((h, w))
    image = image[iy0:iy1, ix0:ix1]
    H, W = image.shape
    integral = np.zeros((H + 1, W + 1))
    integral[1:, 1:] = image.astype(np.float64).cumsum(0).cumsum(1)
    xs, ys = np.clip(xs - ix0, 0, W), np.clip(ys - iy0, 0, H)

    def interp(table: np.ndarray, coords: np.ndarray, axis: int) -> np.ndarray:
        lo = np.minimum(np.floor(coords).astype(int), table.shape[axis] - 2)
        frac = coords - lo
        a, b = np.take(table, lo, axis), np.take(table, lo + 1, axis)
        shape = [1, 1]
        shape[axis] = -1
        return a + (b - a) * frac.reshape(shape)

    corners = interp(interp(integral, ys, 0), xs, 1)  # (h + 1, w + 1) integral at box corners
    area = corners[1:, 1:] - corners[:-1, 1:] - corners[1:, :-1] + corners[:-1, :-1]
    return area / (step * step)


def import_frida_library(
    directory: str | Path,
    canvas_width_m: float,
    canvas_height_m: float,
    meters_per_pixel: float = 0.000216,
    size_px: tuple[int, int] = (255, 148),
    start_xy_px: tuple[float, float] = (46.25, 74.0),
    start_m: tuple[float, float] | None = None,
) -> StrokeDataset:
    """Read a FRIDA stroke library folder into a `StrokeDataset`.

    Each full-canvas stroke image is cropped around the stroke's start and area-averaged to
    `meters_per_pixel`, so the result matches ``frida_sharpie_strokes.npz`` by default.

    Args:
        directory: folder with ``stroke_intensities<k>.npy`` + ``stroke_parameters<k>.npy``.
        canvas_width_m, canvas_height_m: physical size of the library canvas the images show.
        meters_per_pixel: output resolution (m).
        size_px: output image (width, height).
        start_xy_px: where the start lands in the output image (pixel x, y).
        start_m: the strokes' start in canvas meters; default the canvas centre (FRIDA's).
    Returns:
        The dataset, batches in numeric order; ``capture_file`` holds each batch's number.
    """
    directory = Path(directory)
    batches = sorted(
        (int(m.group(1) or 0), f)
        for f in directory.glob("stroke_intensities*.npy")
        if (m := _BATCH.search(f.name))
    )
    if not batches:
        raise FileNotFoundError(f"{directory}: no stroke_intensities*.npy files")
    images, params, capture = [], [], []
    for number, file in batches:
        param_file = file.with_name(file.name.replace("intensities", "parameters"))
        if not param_file.is_file():
            raise FileNotFoundError(f"{param_file} is missing (pairs with {file.name})")
        stack, p = _load_npy(file), _load_npy(param_file).astype(np.float32)
        if stack.ndim == 2:
            stack = stack[None]
        if p.ndim == 1:
            p = p[None]
        if stack.ndim != 3 or p.shape[0] != stack.shape[0] or p.shape[1] not in (3, 4):
            raise ValueError(f"{file.name}: {stack.shape} images do not match {p.shape} params")
        if p.shape[1] == 3:
            p = np.concatenate([p, np.zeros((len(p), 1), np.float32)], 1)
        h_px, w_px = stack.shape[1:]
        in_mpp = canvas_width_m / w_px
        if abs(canvas_height_m / h_px - in_mpp) > 0.02 * in_mpp:
            raise ValueError(
                f"{file.name}: {w_px}x{h_px} px does not have the aspect of a "
                f"{canvas_width_m}x{canvas_height_m} m canvas"
            )
        sx_m, sy_m = start_m or (canvas_width_m / 2, canvas_height_m / 2)
        step = meters_per_pixel / in_mpp  # input pixels per output pixel
        x0 = sx_m / in_mpp - start_xy_px[0] * step
        y0 = sy_m / in_mpp - start_xy_px[1] * step
        for img in stack:
            crop = _box_resample(img, x0, y0, step, *size_px)
            images.append(np.clip(np.round(crop), 0, 255).astype(np.uint8))
        params.append(p)
        capture.append(np.full(len(p), number, np.int64))
    return StrokeDataset(
        np.stack(images), np.concatenate(params), float(meters_per_pixel),
        (float(start_xy_px[0]), float(start_xy_px[1])), np.concatenate(capture),
    )  # fmt: skip
