"""Training-data shards: Parquet part files written atomically, and the manifest.

Layout of a data folder::

    DIR/data/shard-00003-of-00016-part-00000.parquet   records of shard 3's first chunk
    DIR/manifest.json                                   all parts' counts, profile, seed, config

Each part file holds the records of one chunk of a shard's source indices; it is written to a
temporary name, fsynced and renamed, so it either exists whole or not at all, and a rerun skips
the chunks whose file exists. Part files carry their chunk's counts (sources, paintings,
skipped-by-reason, losses) in the Parquet key-value metadata under ``cofrida``; the manifest is
rebuilt from them after every part (by whichever process wrote it; any rerun rebuilds it again).
``datasets.load_dataset("parquet", data_files=f"{DIR}/data/*.parquet")`` reads the records.

Record columns (`SCHEMA`):

| column         | type         | meaning                                                      |
|----------------|--------------|--------------------------------------------------------------|
| id             | string       | ``{source_index}-{k}``, k = partial number                   |
| source_index   | int64        | index into the source                                        |
| partial        | binary       | PNG of the partial painting (kept strokes on white)          |
| full           | binary       | PNG of the full painting                                     |
| source         | binary       | PNG of the source image (at the canvas size)                 |
| caption        | string       | the source's caption                                         |
| strokes        | string       | JSON `sim.Strokes` of the full painting, in painting order   |
| kept           | list<int32>  | indices into that order present in the partial               |
| partial_kind   | string       | random / region / object / first_k / blank                   |
| source_id      | string       | the source's id of the image                                 |
| profile        | string       | robot profile name                                           |
| seed           | int64        | planner seed of the painting (from the run seed + index)     |
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

_HINT = "pip install 'cofrida[train]'  (or: pip install pyarrow)"
META_KEY = b"cofrida"


def _pa():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(f"writing training-data shards needs pyarrow: {_HINT}") from None
    return pa, pq


def schema():
    """The record schema (pyarrow.Schema); see the module docstring."""
    pa, _ = _pa()
    return pa.schema(
        [
            ("id", pa.string()),
            ("source_index", pa.int64()),
            ("partial", pa.binary()),
            ("full", pa.binary()),
            ("source", pa.binary()),
            ("caption", pa.string()),
            ("strokes", pa.string()),
            ("kept", pa.list_(pa.int32())),
            ("partial_kind", pa.string()),
            ("source_id", pa.string()),
            ("profile", pa.string()),
            ("seed", pa.int64()),
        ]
    )


def png_bytes(image) -> bytes:
    """PNG bytes of a (3, H, W) float tensor in 0..1 or an (H, W, 3) uint8 array.

    Deterministic: the same pixels always give the same bytes (no timestamps, fixed level).
    """
    if not isinstance(image, np.ndarray):
        image = image.detach().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255 + 0.5
        image = image.astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def png_image(data: bytes) -> np.ndarray:
    """(H, W, 3) uint8 from PNG bytes."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def shard_name(shard: int, num_shards: int) -> str:
    return f"shard-{shard:05d}-of-{num_shards:05d}"


def part_path(out: Path, shard: int, num_shards: int, part: int) -> Path:
    """``out/data/shard-{i:05d}-of-{n:05d}-part-{k:05d}.parquet``."""
    return Path(out) / "data" / f"{shard_name(shard, num_shards)}-part-{part:05d}.parquet"


def _fsync_replace(tmp: Path, path: Path) -> None:
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:  # pragma: no cover - some file systems refuse directory fsync
        pass


def write_part(path: Path, records: list[dict], stats: dict) -> None:
    """Write `records` (dicts with the `schema` columns) as one Parquet file, atomically.

    Args:
        path: the final file name (`part_path`); a temporary sibling is written first.
        records: rows, possibly none (a chunk whose sources were all skipped).
        stats: JSON-able chunk counts stored in the file's metadata under ``cofrida``.
    """
    pa, pq = _pa()
    sch = schema().with_metadata({META_KEY: json.dumps(stats, sort_keys=True).encode()})
    columns = {name: [r[name] for r in records] for name in sch.names}
    table = pa.Table.from_pydict(columns, schema=sch)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Images are PNG already: no compression; one row group per part keeps reads simple.
    pq.write_table(table, tmp, compression="none", row_group_size=max(1, len(records)))
    _fsync_replace(tmp, path)


def part_stats(path: Path) -> dict:
    """The chunk counts stored in a part file's metadata."""
    _, pq = _pa()
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(META_KEY, b"{}"))


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
    _fsync_replace(tmp, path)


def summarise(parts: list[Path]) -> dict:
    """Sum the counts of part files: sources, paintings, records, skipped by reason, loss."""
    total = Counter()
    skipped: Counter[str] = Counter()
    loss_sum = 0.0
    for p in parts:
        s = part_stats(p)
        for key in ("sources", "paintings", "records"):
            total[key] += int(s.get(key, 0))
        skipped.update(s.get("skipped", {}))
        loss_sum += float(s.get("loss_sum", 0.0))
    paintings = total["paintings"]
    return {
        "parts": len(parts),
        "sources": total["sources"],
        "paintings": paintings,
        "records": total["records"],
        "skipped": dict(sorted(skipped.items())),
        "mean_loss": loss_sum / paintings if paintings else None,
    }


def update_manifest(out: Path, run: dict) -> dict:
    """Rebuild ``manifest.json`` from every part file in `out` and write it atomically.

    Args:
        run: the run's settings (profile, seed, source, config) recorded beside the counts.
    """
    parts = sorted((Path(out) / "data").glob("shard-*-part-*.parquet"))
    manifest = {**run, **summarise(parts)}
    write_json(Path(out) / "manifest.json", manifest)
    return manifest


def read_records(out: Path, columns: list[str] | None = None) -> list[dict]:
    """Every record of a data folder as dicts, in file then row order (for tools and tests)."""
    _, pq = _pa()
    rows: list[dict] = []
    for p in sorted((Path(out) / "data").glob("shard-*-part-*.parquet")):
        rows.extend(pq.read_table(p, columns=columns).to_pylist())
    return rows
