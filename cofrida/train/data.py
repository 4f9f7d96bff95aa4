"""Training records from the data shards: (partial canvas, caption) -> full painting.

Shards are Parquet files ``<data_dir>/data/*.parquet`` written by ``cofrida make-data``. Training
reads three of their columns: ``partial`` (PNG bytes, the input canvas), ``caption`` (the prompt)
and ``full`` (PNG bytes, the finished painting to propose) -- or, for CoFRIDA's ablation,
``source`` (the unpainted source image) in place of ``full``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

REQUIRED_COLUMNS = ("partial", "full", "caption")


def shard_files(data_dir: str | Path) -> list[str]:
    """The sorted Parquet shards of a data folder.

    Raises:
        FileNotFoundError: the folder does not exist or holds no ``data/*.parquet``.
    """
    root = Path(data_dir)
    if not str(data_dir) or not root.is_dir():
        raise FileNotFoundError(f"training data folder {str(data_dir)!r} does not exist")
    files = sorted(str(p) for p in (root / "data").glob("*.parquet"))
    if not files:
        raise FileNotFoundError(
            f"no shards in {root}: expected {root / 'data'}/*.parquet "
            "(written by cofrida make-data)"
        )
    return files


def decode_png(data: bytes, resolution: int, crop_offset: tuple[float, float] | None = None):
    """PNG bytes -> (3, S, S) float in 0..1: shorter side resized to S, then a square crop.

    Args:
        data: PNG (or any PIL-readable) bytes.
        resolution: S.
        crop_offset: where the crop lies along the longer side, (y, x) in 0..1; None = centre.
    """
    with Image.open(io.BytesIO(data)) as im:
        rgb = np.asarray(im.convert("RGB"))
    image = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 255.0  # (3, H, W)
    h, w = image.shape[1:]
    scale = resolution / min(h, w)
    size = (max(resolution, round(h * scale)), max(resolution, round(w * scale)))
    if size != (h, w):
        image = F.interpolate(
            image[None], size=size, mode="bilinear", antialias=True, align_corners=False
        )[0]
    oy, ox = crop_offset or (0.5, 0.5)
    y0 = round((size[0] - resolution) * oy)
    x0 = round((size[1] - resolution) * ox)
    return image[:, y0 : y0 + resolution, x0 : x0 + resolution].clamp(0, 1)


class ShardDataset(torch.utils.data.Dataset):
    """The records of a data folder as dicts of tensors.

    Each item: ``partial`` and ``full`` (3, S, S) float in 0..1 (same crop and flip), ``caption``
    str, ``index`` int.

    Args:
        data_dir: folder with ``data/*.parquet``.
        resolution: S, px of the square crop.
        random_crop: random crop position along the longer side (else centred).
        random_flip: random horizontal flip (off by default: captions name left and right).
        seed: seeds the per-item crop/flip draws (item i always gets the same ones).
        target: the column the ``full`` item is read from: ``"full"`` (the sim painting) or
            ``"source"`` (the unpainted image the painting was made from).

    Raises:
        FileNotFoundError: no shards.
        ValueError: the shards lack a required column, or hold no records.
    """

    def __init__(
        self,
        data_dir: str | Path,
        resolution: int,
        random_crop: bool = False,
        random_flip: bool = False,
        seed: int = 0,
        target: str = "full",
    ) -> None:
        import datasets

        files = shard_files(data_dir)
        try:
            table = datasets.load_dataset("parquet", data_files=files, split="train")
        except Exception as e:  # a corrupt or foreign file: say which folder
            raise ValueError(f"could not read the shards in {data_dir}: {e}") from e
        needed = ["partial", target, "caption"]
        missing = [c for c in needed if c not in table.column_names]
        if missing:
            raise ValueError(
                f"shards in {data_dir} lack the columns {missing} (have {table.column_names}); "
                f"training needs {needed}"
            )
        if len(table) == 0:
            raise ValueError(f"shards in {data_dir} hold no records")
        self.table = table.select_columns(needed)
        self.target = target
        self.resolution, self.seed = resolution, seed
        self.random_crop, self.random_flip = random_crop, random_flip

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> dict:
        row = self.table[int(index)]
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(index))
        offset = tuple(torch.rand(2, generator=g).tolist()) if self.random_crop else None
        partial = decode_png(row["partial"], self.resolution, offset)
        full = decode_png(row[self.target], self.resolution, offset)
        if self.random_flip and torch.rand(1, generator=g).item() < 0.5:
            partial, full = partial.flip(-1), full.flip(-1)
        return {"partial": partial, "full": full, "caption": row["caption"], "index": int(index)}


def collate(items: list[dict]) -> dict:
    """Stack items: ``partial``/``full`` (B, 3, S, S), ``caption`` list[str], ``index`` (B,)."""
    return {
        "partial": torch.stack([it["partial"] for it in items]),
        "full": torch.stack([it["full"] for it in items]),
        "caption": [it["caption"] for it in items],
        "index": torch.tensor([it["index"] for it in items]),
    }
