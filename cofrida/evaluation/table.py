"""Presenting an evaluation: the Markdown table, a contact sheet of examples, the files.

`write_outputs(out, result, settings)` writes into `out`:

    results.json   settings, metric definitions, rows, comparisons, per-record metrics
    table.md       the table and the comparisons (what the README shows)
    examples.png   per example record: canvas | reference | each row's first proposal, and
                   below each proposal its execution by the sim robot (when painted)
"""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from cofrida.evaluation.runner import EvalResult

COLUMNS = (  # (key, header, format)
    ("mode", "mode", "{}"),
    ("precision", "weights", "{}"),
    ("text_alignment", "text alignment ↑", "{:.3f}"),
    ("preservation", "preservation ↑", "{:.3f}"),
    ("paint_error_de", "paint error ΔE ↓", "{:.2f}"),
    ("diversity", "diversity", "{:.3f}"),
    ("latency_ms", "ms / set", "{:.0f}"),
    ("latency_ms_per_proposal", "ms / proposal", "{:.0f}"),
)
OBJECT_COLUMNS = (  # on held-out object partials (cofrida.evaluation.objects)
    ("object_recall", "object recall (mean) ↑", "{:.2f}"),
    ("object_recall_best", "recall (best of n) ↑", "{:.2f}"),
    ("placement", "placement ↑", "{:.2f}"),
    ("damage", "damage ↓", "{:.3f}"),
    ("hole_restore", "hole restore ↑", "{:.2f}"),
    ("diversity", "diversity ↑", "{:.3f}"),
    ("placements", "placements / n", "{:.2f}"),
    ("multi_placement", ">= 2 placements", "{:.2f}"),
)
DEFINITIONS = {
    "text_alignment": "scorer cosine similarity of each proposal with the caption (mean)",
    "preservation": "fraction of protected pixels (painted on the canvas and kept by the "
    "record's finished painting) whose colour the proposal keeps within the Delta-E "
    "tolerance (CIE76) of the canvas; records without protected pixels left out",
    "paint_error_de": "mean CIE76 Delta-E of the sim robot's execution of the co-painting "
    "plan against the proposal (lower = more paintable)",
    "paint_gap_de": "mean CIE76 Delta-E of the canvas against the proposal (what there was "
    "to paint)",
    "diversity": "mean pairwise mean-absolute pixel difference of the n proposals",
    "latency_ms": "median wall time of one propose call (n proposals)",
    "latency_ms_per_proposal": "latency_ms / n",
    "psnr_db": "PSNR of a row's proposals against the compared row's (same inputs, seeds)",
    "object_recall": "share of proposals whose new paint of the removed object's colour "
    "(within 15 Delta-E, where the canvas was not, off other objects) covers half the "
    "object's painted area inside a zone allowed for its kind (object partials only)",
    "object_recall_best": "share of records where at least one of the n proposals recalls",
    "object_painted": "share of proposals with that much new paint anywhere",
    "placement": "of the proposals that painted the object, the share in an allowed zone",
    "damage": "share of the canvas outside the removed region and the painted-back object "
    "that the proposal changes by more than 10 Delta-E",
    "hole_restore": "share of the removed region's pixels the proposal brings within 10 "
    "Delta-E of the reference",
    "placements": "distinct places (centres more than half the object's size apart) where "
    "the n proposals recall the object",
    "multi_placement": "share of records whose proposals recall the object at >= 2 places",
}


def _cell(value, fmt: str) -> str:
    if value is None or value == "" or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return fmt.format(value)


def markdown_table(result: EvalResult) -> str:
    """The rows as a Markdown table, then one line per comparison."""
    header = ["row", *(h for _, h, _ in COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in result.rows:
        cells = [row["name"], *(_cell(row.get(k), f) for k, _, f in COLUMNS)]
        lines.append("| " + " | ".join(cells) + " |")
    if any(row.get("object_records") for row in result.rows):
        n = max(row.get("object_records") or 0 for row in result.rows)
        lines += ["", f"Objects ({n} held-out object partials):", ""]
        header = ["row", *(h for _, h, _ in OBJECT_COLUMNS)]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in result.rows:
            cells = [row["name"], *(_cell(row.get(k), f) for k, _, f in OBJECT_COLUMNS)]
            lines.append("| " + " | ".join(cells) + " |")
    if result.comparisons:
        lines.append("")
        for c in result.comparisons:
            parts = [f"**{c['row']}** vs **{c['vs']}**:"]
            if c["speedup"] is not None:
                parts.append(f"speedup {c['speedup']:.1f}x")
            for key, label, fmt in (
                ("d_text_alignment", "alignment", "{:+.3f}"),
                ("d_preservation", "preservation", "{:+.3f}"),
                ("d_paint_error_de", "paint error", "{:+.2f}"),
                ("d_diversity", "diversity", "{:+.3f}"),
                ("d_object_recall", "object recall", "{:+.3f}"),
                ("d_damage", "damage", "{:+.3f}"),
            ):
                if c.get(key) is not None:
                    parts.append(f"{label} {fmt.format(c[key])}")
            if c["psnr_db"] is not None:
                parts.append(f"PSNR {c['psnr_db']:.1f} dB")
            lines.append("- " + parts[0] + " " + ", ".join(parts[1:]))
    return "\n".join(lines) + "\n"


def _uint8(image: torch.Tensor, cell: int) -> Image.Image:
    array = (image.clamp(0, 1).permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    return Image.fromarray(np.ascontiguousarray(array)).resize(
        (cell, cell), Image.Resampling.NEAREST
    )


def contact_sheet(result: EvalResult, cell: int = 128, pad: int = 4, label: int = 12):
    """Example proposals: one block per example record (see the module docstring).

    Returns:
        An RGB PIL image, or None when no examples were kept.
    """
    names = [r["name"] for r in result.rows if r["kind"] != "reference"]
    count = min((len(v) for v in result.examples.values()), default=0)
    if count == 0:
        return None
    reference = next((r["name"] for r in result.rows if r["kind"] == "reference"), None)
    columns = ["canvas", *(["reference"] if reference else []), *names]
    painted = any(p is not None for v in result.examples.values() for _, p in v)
    block = (cell + label + pad) * (2 if painted else 1) + 2 * label
    width = pad + len(columns) * (cell + pad)
    sheet = Image.new("RGB", (width, pad + count * block), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    chars = max(8, cell // 7)
    for k in range(count):
        record = result.records[k]
        y = pad + k * block
        caption = textwrap.shorten(record.caption, width=max(20, width // 7), placeholder="...")
        draw.text((pad, y), f"#{record.index}: {caption}", fill=(0, 0, 0))
        y += 2 * label
        cells = [("canvas", record.partial, None)]
        if reference:
            proposals, paintings = result.examples[reference][k]
            cells.append(("reference", proposals[0], paintings))
        for name in names:
            proposals, paintings = result.examples[name][k]
            cells.append((name, proposals[0], paintings))
        for col, (name, image, paintings) in enumerate(cells):
            x = pad + col * (cell + pad)
            draw.text((x, y), name[:chars], fill=(60, 60, 60))
            sheet.paste(_uint8(image, cell), (x, y + label))
            if paintings is not None:
                y2 = y + label + cell + pad
                draw.text((x, y2), "painted in sim", fill=(60, 60, 60))
                sheet.paste(_uint8(paintings[0], cell), (x, y2 + label))
    return sheet


def results_json(result: EvalResult, settings: dict) -> dict:
    """Everything measured, JSON-ready."""
    return {
        "settings": settings,
        "definitions": DEFINITIONS,
        "records": [{"index": r.index, "caption": r.caption} for r in result.records],
        "rows": result.rows,
        "comparisons": result.comparisons,
        "per_record": result.per_record,
    }


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    write(tmp)
    tmp.replace(path)


def write_outputs(out: str | Path, result: EvalResult, settings: dict, cell: int = 128) -> dict:
    """Write results.json, table.md and examples.png into `out` (each atomically).

    Returns:
        {file kind: path} of what was written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.json", "table": out / "table.md"}
    payload = json.dumps(results_json(result, settings), indent=2) + "\n"
    _atomic_write(paths["results"], lambda p: p.write_text(payload))
    table = markdown_table(result)
    _atomic_write(paths["table"], lambda p: p.write_text(table))
    sheet = contact_sheet(result, cell)
    if sheet is not None:
        paths["examples"] = out / "examples.png"
        _atomic_write(paths["examples"], lambda p: sheet.save(p, format="PNG"))
    return {k: str(v) for k, v in paths.items()}
