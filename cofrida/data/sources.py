"""Sources of (image, caption) pairs: procedural scenes, a folder of images, a HF dataset.

Every source follows the `Source` protocol: `len(source)`, `source[i] -> SourceItem` and
`iter(source)`. A record whose image is unusable (a corrupt or missing file, an image smaller
than `min_side`, a flat one such as a grey frame) or whose caption is empty makes `source[i]`
raise `SkippedImage` with the reason; iterating skips it and counts the reason in
`source.skipped`, so one bad file never stops data generation.

Example:
    src = FolderSource("my_paintings/", size=(256, 256))  # beside captions.jsonl or .csv
    for item in src:
        item.image, item.caption
    print(src.skipped)  # Counter({'corrupt': 1, 'tiny': 2})
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from cofrida.data.scenes import SceneGenerator

MIN_SIDE = 64  # px; smaller images carry too little to paint from
MIN_STD = 4.0  # std of 0..255 values below which an image counts as flat (blank, grey)
MAX_SIDE_PX = 8192  # px; larger images are skipped unread (a 20000 px PNG needs GBs decoded)
_TRAIN_HINT = "pip install 'cofrida[train]'  (or: pip install datasets)"


@dataclass
class SourceItem:
    """One (image, caption) pair.

    Attributes:
        image: (H, W, 3) uint8 sRGB.
        caption: what the image shows, non-empty.
        source_id: a stable id of the record, e.g. 'scene-0-17' or 'cats/tom.png'.
        meta: anything else the source knows (a scene's objects and label map, a row's index).
    """

    image: np.ndarray
    caption: str
    source_id: str
    meta: dict[str, Any] = field(default_factory=dict)


class SkippedImage(Exception):
    """A record that cannot be used; `reason` is a short key such as 'corrupt' or 'tiny'."""

    def __init__(self, reason: str, source_id: str, detail: str = "") -> None:
        super().__init__(f"{source_id}: {reason}{f' ({detail})' if detail else ''}")
        self.reason, self.source_id, self.detail = reason, source_id, detail


@runtime_checkable
class Source(Protocol):
    """What data generation reads (image, caption) pairs from."""

    skipped: Counter[str]

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> SourceItem: ...

    def __iter__(self) -> Iterator[SourceItem]: ...


# ---- images -------------------------------------------------------------------------------------
def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode as RGB: transparency over white, 16-bit and float rescaled to 8 bits."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        image = Image.fromarray(arr.round().astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def check_image(
    image: Image.Image | np.ndarray, min_side: int = MIN_SIDE, min_std: float = MIN_STD
) -> str | None:
    """Why an image is unusable, or None when it is fine.

    Args:
        image: a PIL image (any mode) or an (H, W, 3) / (H, W) uint8 array.
        min_side: the smallest allowed side in pixels.
        min_std: the smallest allowed spatial standard deviation of the 0..255 values, taken
            per channel (the largest of the three counts), so one-colour images are flat too.
    Returns:
        'tiny' (a side below `min_side`), 'flat' (near-uniform: blank, grey, one colour) or
        None.
    """
    arr = np.asarray(to_rgb(image) if isinstance(image, Image.Image) else image)
    if arr.ndim < 2 or min(arr.shape[:2]) < min_side:
        return "tiny"
    step = max(1, min(arr.shape[:2]) // 128)  # subsample large images; the std barely moves
    pixels = arr[::step, ::step].reshape(-1, arr.shape[2] if arr.ndim == 3 else 1)
    if float(pixels.astype(np.float64).std(axis=0).max()) < min_std:  # spatial, per channel
        return "flat"
    return None


def fit_image(image: Image.Image, size: tuple[int, int] | None) -> np.ndarray:
    """Scale `image` to cover (H, W) and crop the centre; None keeps its size. -> uint8 HxWx3."""
    image = to_rgb(image)
    if size is not None:
        h, w = size
        image = ImageOps.fit(image, (w, h), Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    return np.asarray(image, dtype=np.uint8).copy()


def _load(data: Any, source_id: str) -> Image.Image:
    """A decoded PIL image from a path, bytes, a PIL image, an array or a HF image dict."""
    try:
        if isinstance(data, dict):
            data = data.get("bytes") or data.get("path")
        if isinstance(data, Image.Image):
            image = data
        elif isinstance(data, np.ndarray):
            image = Image.fromarray(data.astype(np.uint8) if data.dtype != np.uint8 else data)
        elif isinstance(data, (bytes, bytearray)):
            image = Image.open(io.BytesIO(data))
        elif isinstance(data, (str, Path)):
            if not Path(data).is_file():
                raise SkippedImage("missing", source_id, str(data))
            image = Image.open(data)
        else:
            raise SkippedImage("corrupt", source_id, f"not an image: {type(data).__name__}")
        if max(image.size) > MAX_SIDE_PX:  # refused before decoding: memory
            raise SkippedImage("too large", source_id, f"{image.width}x{image.height} px")
        image.load()  # decode now: truncated files fail here, not later
        return image
    except SkippedImage:
        raise
    except Image.DecompressionBombError as e:
        raise SkippedImage("too large", source_id, str(e)) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, TypeError) as e:
        raise SkippedImage("corrupt", source_id, str(e)) from None


class _Base:
    """Iteration and skip counting shared by the sources."""

    skipped: Counter[str]

    def __len__(self) -> int:  # pragma: no cover - every source overrides
        raise NotImplementedError

    def __getitem__(self, i: int) -> SourceItem:  # pragma: no cover
        raise NotImplementedError

    def __iter__(self) -> Iterator[SourceItem]:
        """Every usable item in order; unusable ones are counted in `skipped`."""
        for i in range(len(self)):
            try:
                yield self[i]
            except SkippedImage as e:
                self.skipped[e.reason] += 1

    def _item(self, raw: Any, caption: Any, source_id: str, meta: dict) -> SourceItem:
        if isinstance(caption, (list, tuple)):
            caption = next((c for c in caption if isinstance(c, str) and c.strip()), "")
        if not isinstance(caption, str) or not caption.strip():
            raise SkippedImage("no caption", source_id)
        image = to_rgb(_load(raw, source_id))
        reason = check_image(image, self.min_side, self.min_std)
        if reason is not None:
            raise SkippedImage(reason, source_id, f"{image.width}x{image.height}")
        return SourceItem(fit_image(image, self.size), caption.strip(), source_id, meta)

    def _index(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {type(self).__name__} of {n}")
        return i % n


# ---- implementations ----------------------------------------------------------------------------
class ProceduralSource(_Base):
    """`num` scenes of a `SceneGenerator`, indices `start` .. `start + num - 1`.

    `meta` holds the scene's metadata (`SceneSample.meta()`) and its `label_map`.
    """

    def __init__(self, generator: SceneGenerator, num: int, start: int = 0) -> None:
        if num < 0 or start < 0:
            raise ValueError(f"ProceduralSource: num and start must be >= 0, got {num}, {start}")
        self.generator, self.num, self.start = generator, int(num), int(start)
        self.skipped: Counter[str] = Counter()

    def __len__(self) -> int:
        return self.num

    def __getitem__(self, i: int) -> SourceItem:
        index = self.start + self._index(i)
        scene = self.generator.generate(index)
        meta = {**scene.meta(), "label_map": scene.label_map}
        return SourceItem(scene.image, scene.caption, f"scene-{self.generator.seed}-{index}", meta)


class FolderSource(_Base):
    """A folder of images with `captions.jsonl` or `captions.csv` beside them.

    `captions.jsonl` has one object per line, `{"file": "a.png", "caption": "a red boat"}`;
    `captions.csv` has a header with the columns `file` and `caption`. File paths are relative
    to the folder. Records that cannot be read (bad JSON, a missing field, a path outside the
    folder) are counted in `skipped['bad record']` when the folder is opened.

    Args:
        path: the folder.
        size: (H, W) to scale and centre-crop every image to; None keeps each image's size.
        min_side: smaller images are skipped as 'tiny'.
        min_std: flatter images are skipped as 'flat'.
    """

    def __init__(
        self,
        path: str | Path,
        size: tuple[int, int] | None = None,
        min_side: int = MIN_SIDE,
        min_std: float = MIN_STD,
    ) -> None:
        self.root = Path(path)
        self.size, self.min_side, self.min_std = size, min_side, min_std
        self.skipped: Counter[str] = Counter()
        jsonl, csv_path = self.root / "captions.jsonl", self.root / "captions.csv"
        if jsonl.is_file():
            rows = self._read_jsonl(jsonl)
        elif csv_path.is_file():
            rows = self._read_csv(csv_path)
        else:
            raise FileNotFoundError(
                f"FolderSource: {self.root} has neither captions.jsonl nor captions.csv"
            )
        self.records: list[tuple[str, str]] = []
        root = self.root.resolve()
        for file, caption in rows:
            if (
                not isinstance(file, str)
                or not file
                or not root.joinpath(file).resolve().is_relative_to(root)
            ):
                self.skipped["bad record"] += 1
                continue
            self.records.append((file, caption))

    def _read_jsonl(self, path: Path) -> list[tuple[Any, Any]]:
        rows = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows.append((row["file"], row["caption"]))
            except (json.JSONDecodeError, KeyError, TypeError):
                self.skipped["bad record"] += 1
        return rows

    def _read_csv(self, path: Path) -> list[tuple[Any, Any]]:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"file", "caption"} - set(reader.fieldnames or [])
            if missing:
                raise ValueError(
                    f"FolderSource: {path} needs the columns 'file' and 'caption', "
                    f"missing {sorted(missing)} (found {reader.fieldnames})"
                )
            return [(row["file"], row["caption"]) for row in reader]

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> SourceItem:
        file, caption = self.records[self._index(i)]
        return self._item(self.root / file, caption, file, {"file": file})


def _import_datasets():
    try:
        import datasets
    except ImportError:
        raise ImportError(
            f"HFDatasetSource needs the Hugging Face `datasets` package: {_TRAIN_HINT}"
        ) from None
    return datasets


class HFDatasetSource(_Base):
    """Any Hugging Face `datasets` dataset with an image column and a text column.

    Args:
        dataset_or_name: a `datasets.Dataset` (or a `DatasetDict`, then `split` picks one) or a
            hub id / local path for `datasets.load_dataset(name, split=split, **load_kwargs)`.
        image_column: column of images (PIL images, HF image dicts, bytes, paths or arrays).
        text_column: column of captions (a string, or a list of strings: the first non-empty).
        split: the split to use.
        size, min_side, min_std: as for `FolderSource`.
        **load_kwargs: passed to `datasets.load_dataset` when a name is given.
    Raises:
        ImportError: a name was given and `datasets` is not installed (`cofrida[train]`).
        ValueError: a column is missing.
    """

    def __init__(
        self,
        dataset_or_name: Any,
        image_column: str = "image",
        text_column: str = "text",
        split: str = "train",
        size: tuple[int, int] | None = None,
        min_side: int = MIN_SIDE,
        min_std: float = MIN_STD,
        **load_kwargs: Any,
    ) -> None:
        if isinstance(dataset_or_name, (str, Path)):
            datasets = _import_datasets()
            self.name = str(dataset_or_name)
            ds = datasets.load_dataset(self.name, split=split, **load_kwargs)
        else:
            ds = dataset_or_name
            self.name = getattr(getattr(ds, "info", None), "dataset_name", None) or "dataset"
            if not hasattr(ds, "column_names") or isinstance(ds.column_names, dict):
                ds = ds[split]  # a DatasetDict
        columns = list(ds.column_names)
        for role, col in (("image_column", image_column), ("text_column", text_column)):
            if col not in columns:
                raise ValueError(f"HFDatasetSource: {role}={col!r} is not a column; {columns}")
        self.dataset, self.split = ds, split
        self.image_column, self.text_column = image_column, text_column
        self.size, self.min_side, self.min_std = size, min_side, min_std
        self.skipped: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> SourceItem:
        i = self._index(i)
        source_id = f"{self.name}:{self.split}:{i}"
        try:
            row = self.dataset[i]  # decoding a broken image can fail here already
        except (OSError, ValueError, SyntaxError) as e:
            raise SkippedImage("corrupt", source_id, str(e)) from None
        meta = {"dataset": self.name, "split": self.split, "row": i}
        return self._item(row[self.image_column], row[self.text_column], source_id, meta)
