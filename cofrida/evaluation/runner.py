"""Running the evaluation: held-out records in, one row of metrics per candidate out.

    records, _ = load_records("data/heldout", count=32, size=128)
    result = evaluate(records, candidates, scorer, EvalSettings(n=4), on_progress=print)
    result.rows  # one dict of mean metrics per candidate, in order

Every candidate proposes for every record with the same seed (``settings.seed + i`` for the
i-th record), so rows are paired comparisons. Metric definitions are in `metrics`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from cofrida.evaluation import metrics
from cofrida.evaluation.candidates import Candidate, EvalRecord
from cofrida.evaluation.objects import object_scores
from cofrida.model.diversity import proposal_diversity

METRICS = (
    "text_alignment",
    "preservation",
    "paint_error_de",
    "diversity",
    "latency_ms",
    "latency_ms_per_proposal",
)
OBJECT_METRICS = (  # cofrida.evaluation.objects, on records with an object target
    "object_recall",
    "object_recall_best",
    "object_painted",
    "placement",
    "damage",
    "hole_restore",
    "placements",
    "multi_placement",
)


def evenly_spaced(total: int, count: int) -> list[int]:
    """`count` distinct indices spread evenly over range(total) (all of them if count >= total)."""
    if count >= total:
        return list(range(total))
    if count == 1:
        return [0]
    return sorted({round(i * (total - 1) / (count - 1)) for i in range(count)})


def load_records(
    data_dir: str | Path,
    count: int,
    size: int,
    calibration: int = 0,
    objects: bool = False,
) -> tuple[list[EvalRecord], list[EvalRecord]]:
    """Held-out records (evenly spaced over the folder) and calibration records.

    Args:
        data_dir: a `cofrida make-data` folder (``data/*.parquet``), not used in training.
        count: records to evaluate on.
        size: px of the square crop every canvas is read at (`cofrida.train.ShardDataset`).
        calibration: records for W4A4 calibration, taken from those not evaluated on when the
            folder has enough, else from the evaluated ones.
        objects: evaluate only the folder's ``object`` partials whose removed object can be
            scored, each with its `EvalRecord.target` (procedural data only; see
            `cofrida.evaluation.objects`).

    Returns:
        (eval records, calibration records).

    Raises:
        FileNotFoundError: no folder or no shards. ValueError: the shards lack columns or rows;
        `objects` and the folder has no scorable object partial.
    """
    from cofrida.train.data import ShardDataset

    data = ShardDataset(data_dir, size)

    def record(i: int) -> EvalRecord:
        item = data[i]
        return EvalRecord(i, item["partial"], item["full"], item["caption"])

    pool = list(range(len(data)))
    scene_objects = None
    if objects:
        from cofrida.evaluation.objects import MIN_AREA_PX, SceneObjects

        scene_objects = SceneObjects(data_dir)
        pool = scene_objects.object_indices()
        if not pool:
            raise ValueError(f"{data_dir} holds no 'object' partials (make-data --kinds object)")
    chosen = [pool[j] for j in evenly_spaced(len(pool), count)]
    records = []
    if scene_objects is None:
        records = [record(i) for i in chosen]
    else:  # the first `count` scorable ones, in order, topped up from the rest of the pool
        order = chosen + [i for i in pool if i not in set(chosen)]
        for i in order:
            r = record(i)
            r.target = scene_objects.target(i, r.partial, r.full)
            if r.target is not None and r.target.area >= MIN_AREA_PX:
                records.append(r)
            if len(records) == count:
                break
        if not records:
            raise ValueError(f"no object partial in {data_dir} can be scored")
        records.sort(key=lambda r: r.index)
    taken = {r.index for r in records}
    rest = [i for i in range(len(data)) if i not in taken]
    calib = (rest if len(rest) >= calibration else sorted(taken))[:calibration]
    return records, [record(i) for i in calib]


@dataclass(frozen=True)
class EvalSettings:
    """How each record is evaluated.

    Attributes:
        n: proposals per record (diversity needs >= 2).
        seed: record i proposes with seed ``seed + i`` (the same for every candidate).
        preserve_delta_e: CIE76 tolerance of the preservation metric.
        paint: paintability set-up; None skips paintability (it is the slow metric).
        paint_proposals: proposals per record that are painted (the first ones).
        examples: records whose proposals (and paintings) are kept for the contact sheet.
        warm_up: one untimed proposal call per candidate before timing.
    """

    n: int = 4
    seed: int = 0
    preserve_delta_e: float = metrics.PRESERVE_DELTA_E
    paint: metrics.PaintabilityConfig | None = field(default_factory=metrics.PaintabilityConfig)
    paint_proposals: int = 1
    examples: int = 4
    warm_up: bool = True

    def __post_init__(self) -> None:
        if self.n < 1 or self.paint_proposals < 0 or self.examples < 0:
            raise ValueError("n >= 1, paint_proposals >= 0 and examples >= 0")


@dataclass
class EvalResult:
    """What `evaluate` measured.

    Attributes:
        rows: per candidate, its identity and mean metrics (None where not measured).
        per_record: per candidate name, one dict of metrics per record.
        comparisons: per compared pair, the differences (see `compare`).
        examples: per candidate name, per example record, (proposals (k, 3, H, W),
            executed paintings (m, 3, H, W) or None).
        records: the evaluated records, in order (the first `examples` are the examples).
    """

    rows: list[dict]
    per_record: dict[str, list[dict]]
    comparisons: list[dict]
    examples: dict[str, list[tuple[torch.Tensor, torch.Tensor | None]]]
    records: list[EvalRecord]


def _mean(values) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def evaluate(
    records: Sequence[EvalRecord],
    candidates: Sequence[Candidate],
    scorer=None,
    settings: EvalSettings | None = None,
    pairs: Sequence[tuple[str, str]] = (),
    on_progress: Callable[[str], None] | None = None,
) -> EvalResult:
    """Evaluate every candidate on every record.

    Args:
        records: held-out records (same size).
        candidates: the rows, unique names.
        scorer: a `cofrida.scorer.Scorer`; None leaves text alignment unmeasured.
        settings: see `EvalSettings`.
        pairs: (row, base) names to compare (one-step vs its teacher, W4A4 vs fp32, ...).
        on_progress: called with one line of text per record and candidate.

    Raises:
        ValueError: no records or candidates, duplicate names, a pair naming no row.
    """
    settings = settings or EvalSettings()
    say = on_progress or (lambda _line: None)
    names = [c.name for c in candidates]
    if not records or not candidates:
        raise ValueError("evaluation needs at least one record and one candidate")
    if len(set(names)) != len(names):
        raise ValueError(f"candidate names must be unique, got {names}")
    for row, base in pairs:
        if row not in names or base not in names:
            raise ValueError(f"cannot compare {row!r} with {base!r}: rows are {names}")
    paint = None
    if settings.paint is not None and settings.paint_proposals > 0:
        paint = metrics.Paintability(settings.paint, tuple(records[0].partial.shape[1:]))
    protected = [
        metrics.protected_pixels(r.partial, r.full, agree_delta_e=settings.preserve_delta_e)
        for r in records
    ]

    # Compared rows keep their proposals (for the PSNR between them).
    bases = {name for pair in pairs for name in pair}
    kept: dict[str, list[torch.Tensor]] = {}
    per_record: dict[str, list[dict]] = {}
    examples: dict[str, list[tuple[torch.Tensor, torch.Tensor | None]]] = {}
    for c in candidates:
        if c.timed and settings.warm_up:
            c.propose(records[0], settings.n, settings.seed)  # untimed: first-call costs
        per_record[c.name], sets = [], []
        for i, record in enumerate(records):
            row, props, paintings = _evaluate_record(
                c, record, settings.seed + i, protected[i], scorer, paint, settings
            )
            per_record[c.name].append(row)
            sets.append(props)
            if i < settings.examples:
                examples.setdefault(c.name, []).append((props, paintings))
            values = " ".join(f"{k}={v:.3f}" for k, v in row.items() if isinstance(v, float))
            say(f"[eval] {c.name}: record {i + 1}/{len(records)} {values}")
        if c.name in bases:
            kept[c.name] = sets

    summary = {c.name: _summarise(c, per_record[c.name]) for c in candidates}
    comparisons = [
        compare(summary[row], summary[base], _paired_psnr(kept[row], kept[base]))
        for row, base in pairs
    ]
    return EvalResult(list(summary.values()), per_record, comparisons, examples, list(records))


def _evaluate_record(
    candidate: Candidate,
    record: EvalRecord,
    seed: int,
    protected: torch.Tensor,
    scorer,
    paint: metrics.Paintability | None,
    settings: EvalSettings,
) -> tuple[dict, torch.Tensor, torch.Tensor | None]:
    """One candidate on one record.

    Returns:
        (metrics dict, proposals (k, 3, H, W), executed paintings (m, 3, H, W) or None).
    """
    t0 = time.perf_counter()
    props = candidate.propose(record, settings.n, seed).detach().float().cpu()
    latency = (time.perf_counter() - t0) * 1000.0
    if tuple(props.shape[1:]) != tuple(record.partial.shape):
        raise ValueError(
            f"{candidate.name}: proposals have shape {tuple(props.shape)}; expected "
            f"(k, *{tuple(record.partial.shape)}), the canvas' size"
        )
    alignment = None
    if scorer is not None:
        alignment = metrics.text_alignment(scorer, props, record.caption)
    preserved = [
        metrics.preservation(record.partial, p, protected, settings.preserve_delta_e) for p in props
    ]
    row = {
        "text_alignment": alignment,
        "preservation": _mean(preserved),
        "protected_px": int(protected.sum()),
        "diversity": proposal_diversity(props) if props.shape[0] >= 2 else None,
    }
    if record.target is not None:
        scores = object_scores(record.target, record.partial, record.full, props)
        if scores is not None:
            scores["multi_placement"] = float(scores["placements"] >= 2)
            row.update(scores)
    if candidate.timed:
        row["latency_ms"] = latency
        row["latency_ms_per_proposal"] = latency / props.shape[0]
    paintings = None
    if paint is not None:
        painted = [paint(record.partial, p, seed) for p in props[: settings.paint_proposals]]
        row["paint_error_de"] = _mean(r.error_de for r in painted)
        row["paint_gap_de"] = _mean(r.gap_de for r in painted)
        paintings = torch.stack([r.painting for r in painted])
    return row, props, paintings


def _paired_psnr(a: list[torch.Tensor], b: list[torch.Tensor]) -> float | None:
    """PSNR of one row's proposals against another's (same records, seeds), if comparable."""
    if [x.shape for x in a] != [y.shape for y in b]:
        return None  # e.g. the reference's one painting against n proposals
    return metrics.psnr_db(torch.cat(a), torch.cat(b))


def _summarise(candidate: Candidate, rows: list[dict]) -> dict:
    """A candidate's identity and the mean of each metric (latency: the median)."""
    out = candidate.describe()
    for key in METRICS:
        values = [r.get(key) for r in rows]
        if key.startswith("latency"):
            kept = [v for v in values if v is not None]
            out[key] = statistics.median(kept) if kept else None
        else:
            out[key] = _mean(values)
    out["paint_gap_de"] = _mean(r.get("paint_gap_de") for r in rows)
    scored = [r for r in rows if "object_recall" in r]
    for key in OBJECT_METRICS:
        out[key] = _mean(r.get(key) for r in scored)
    out["object_records"] = len(scored)
    out["records_with_protected_paint"] = sum(r["preservation"] is not None for r in rows)
    out["records"] = len(rows)
    return out


def compare(row: dict, base: dict, psnr: float | None = None) -> dict:
    """How `row` differs from the row it is compared with (`base`).

    Returns:
        ``{row, vs, speedup (base latency / row latency), d_<metric> (row - base) ...,
        psnr_db}`` (psnr of the row's proposals against the base's, same seeds and inputs).
    """

    def diff(key: str) -> float | None:
        a, b = row.get(key), base.get(key)
        return None if a is None or b is None else a - b

    speed = None
    if row.get("latency_ms") and base.get("latency_ms"):
        speed = base["latency_ms"] / row["latency_ms"]
    return {
        "row": row["name"],
        "vs": base["name"],
        "speedup": speed,
        "d_text_alignment": diff("text_alignment"),
        "d_preservation": diff("preservation"),
        "d_paint_error_de": diff("paint_error_de"),
        "d_diversity": diff("diversity"),
        "d_object_recall": diff("object_recall"),
        "d_damage": diff("damage"),
        "psnr_db": psnr,
    }
