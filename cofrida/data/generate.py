"""Self-supervised data generation: paint sources, remove strokes, write records in shards.

`generate_shard` runs one process's share of a dataset, step by step per chunk:

1. The shard's source indices are those with ``index % num_shards == shard`` (round robin:
   every shard gets a similar mix even when the source's order is not random), cut into
   chunks of `DataConfig.chunk` indices; chunk k is written as part file k.
2. A chunk whose part file exists is skipped (resume).
3. Per source index: load the item (an unusable image is counted by reason and skipped), seed
   from ``np.random.SeedSequence([seed, index])``, paint it with the profile
   (`Painter.paint`), draw `DataConfig.partials` partial kinds and kept stroke subsets, and
   render each partial from the kept strokes.
4. Write the chunk's records as one Parquet part, atomically, and rebuild the manifest.

Every record depends only on (source item, profile, config, seed, index): the same arguments
give the same bytes on any machine with the same library versions and thread count.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cofrida.data.painting import Painter, compact_strokes_json
from cofrida.data.partials import KINDS, choose_kinds, keep_strokes
from cofrida.data.shards import (
    part_path,
    png_bytes,
    shard_name,
    update_manifest,
    write_part,
)
from cofrida.data.sources import SkippedImage, Source


@dataclass(frozen=True)
class DataConfig:
    """How records are made from paintings.

    Args:
        partials: records (partial paintings) per full painting.
        kinds: partial kinds to draw from (`cofrida.data.partials.KINDS`).
        chunk: source indices per part file: the unit of resume (a killed run redoes at most
            one chunk) and of file count (16 sources x 4 partials ~ 64 records, a few MB).
        physical: paint with the physical brush model instead of the differentiable renderer.
    """

    partials: int = 4
    kinds: tuple[str, ...] = KINDS
    chunk: int = 16
    physical: bool = False

    def __post_init__(self) -> None:
        if self.partials < 1 or self.chunk < 1:
            raise ValueError("DataConfig needs partials >= 1 and chunk >= 1")
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"DataConfig.kinds: unknown {unknown}; choose from {list(KINDS)}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kinds"] = list(self.kinds)
        return d


def shard_indices(num: int, shard: int, num_shards: int) -> list[int]:
    """Source indices of `shard` out of `num_shards`: ``range(num)[shard::num_shards]``."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard must be in 0..{num_shards - 1}, got {shard}")
    return list(range(shard, num, num_shards))


def record_seeds(seed: int, index: int) -> tuple[int, np.random.Generator]:
    """(planner seed, partial generator) of source `index`, from SeedSequence([seed, index])."""
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(2)
    return int(state[0]), np.random.default_rng(int(state[1]))


def check_compatible(out: Path, run: dict) -> None:
    """Refuse to add records to a folder made with other settings (profile, seed, ...)."""
    path = Path(out) / "manifest.json"
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    diff = sorted(k for k in run if k in old and old[k] != run[k])
    if diff:
        raise ValueError(
            f"{out} holds data made with other settings ({', '.join(diff)}: "
            f"{[old[k] for k in diff]} != {[run[k] for k in diff]}); use another --out"
        )


def remove_stale_temporaries(out: Path, shard: int, num_shards: int) -> None:
    """Delete temporary part files a killed run of this shard left behind."""
    for tmp in (Path(out) / "data").glob(f".{shard_name(shard, num_shards)}-part-*.tmp"):
        tmp.unlink(missing_ok=True)


def make_records(
    painter: Painter, item, index: int, seed: int, config: DataConfig
) -> tuple[list[dict], float]:
    """The records of one source item and its painting's loss vs the target.

    Args:
        painter: paints for the profile.
        item: a `SourceItem` at the canvas' pixel size.
        index: the source index (seeds everything).
        seed: the run's seed.
    """
    planner_seed, rng = record_seeds(seed, index)
    painting = painter.paint(item.image, planner_seed)
    strokes = painting.strokes
    label_map = item.meta.get("label_map")
    full_png = png_bytes(painting.image)
    source_png = png_bytes(item.image)
    strokes_json = compact_strokes_json(strokes)
    records = []
    for k, kind in enumerate(choose_kinds(rng, config.partials, config.kinds)):
        kept, used = keep_strokes(kind, strokes, painter.canvas, rng, label_map)
        partial = painter.render(strokes, kept, planner_seed)
        records.append(
            {
                "id": f"{index}-{k}",
                "source_index": int(index),
                "partial": png_bytes(partial),
                "full": full_png,
                "source": source_png,
                "caption": item.caption,
                "strokes": strokes_json,
                "kept": kept.tolist(),
                "partial_kind": used,
                "source_id": item.source_id,
                "profile": painter.profile.name,
                "seed": planner_seed,
            }
        )
    return records, painting.loss


def generate_shard(
    source: Source,
    painter: Painter,
    out: str | Path,
    num: int,
    shard: int = 0,
    num_shards: int = 1,
    seed: int = 0,
    config: DataConfig | None = None,
    run_info: dict | None = None,
    on_progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Make this shard's records of the first `num` source indices into `out`; resumable.

    Args:
        source: (image, caption) items whose images are at the canvas' pixel size.
        painter: the robot profile's painter.
        out: the data folder (``out/data/*.parquet``, ``out/manifest.json``).
        num: how many source indices the whole dataset covers (all shards together).
        shard, num_shards: this process's share (see `shard_indices`).
        seed: the run's seed.
        config: partials per painting, kinds, chunk size.
        run_info: settings recorded in the manifest (profile, source, ...).
        on_progress: called after every source with {sources_done, sources_total, records,
            paintings, skipped, seconds, resumed}.
        should_stop: polled after every source; True stops before writing the unfinished
            chunk (finished chunks stay; nothing is half-written).
    Returns:
        This call's counts: {sources, paintings, records, skipped, parts_written,
        parts_resumed, seconds, stopped, mean_loss}.
    """
    config = config or DataConfig()
    out = Path(out)
    indices = shard_indices(min(num, len(source)), shard, num_shards)
    chunks = [indices[i : i + config.chunk] for i in range(0, len(indices), config.chunk)]
    run = json.loads(json.dumps({"seed": seed, "data": config.to_dict(), **(run_info or {})}))
    check_compatible(out, run)
    remove_stale_temporaries(out, shard, num_shards)
    totals: Counter = Counter()
    skipped_all: Counter[str] = Counter()
    loss_sum = 0.0
    start = time.perf_counter()
    stopped = False
    resumed = 0
    for k, chunk in enumerate(chunks):
        path = part_path(out, shard, num_shards, k)
        if path.exists():
            resumed += len(chunk)
            totals["parts_resumed"] += 1
            continue
        records: list[dict] = []
        chunk_skipped: Counter[str] = Counter()
        chunk_loss, chunk_paintings = 0.0, 0
        for index in chunk:
            try:
                item = source[index]
            except SkippedImage as e:
                chunk_skipped[e.reason] += 1
            else:
                new, loss = make_records(painter, item, index, seed, config)
                records.extend(new)
                chunk_loss += loss
                chunk_paintings += 1
            totals["sources"] += 1
            if on_progress is not None:
                on_progress(
                    {
                        "sources_done": resumed + totals["sources"],
                        "sources_total": len(indices),
                        "records": totals["records"] + len(records),
                        "paintings": totals["paintings"] + chunk_paintings,
                        "new_sources": totals["sources"],
                        "skipped": sum((skipped_all + chunk_skipped).values()),
                        "seconds": time.perf_counter() - start,
                    }
                )
            if should_stop is not None and should_stop():
                stopped = True
                break
        if stopped:  # the unfinished chunk is dropped: it is redone on the next run
            break
        stats = {
            "sources": len(chunk),
            "paintings": chunk_paintings,
            "records": len(records),
            "skipped": dict(sorted(chunk_skipped.items())),
            "loss_sum": chunk_loss,
            "indices": [chunk[0], chunk[-1]],
        }
        write_part(path, records, stats)
        update_manifest(out, run)
        totals["parts_written"] += 1
        totals["paintings"] += chunk_paintings
        totals["records"] += len(records)
        skipped_all.update(chunk_skipped)
        loss_sum += chunk_loss
    manifest = update_manifest(out, run)
    paintings = totals["paintings"]
    return {
        "sources": totals["sources"],
        "paintings": paintings,
        "records": totals["records"],
        "skipped": dict(skipped_all),
        "parts_written": totals["parts_written"],
        "parts_resumed": totals["parts_resumed"],
        "seconds": time.perf_counter() - start,
        "stopped": stopped,
        "mean_loss": loss_sum / paintings if paintings else None,
        "manifest": manifest,
    }
