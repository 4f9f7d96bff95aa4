"""A contact sheet of a training-data folder: one row per painting, for a person to look at.

Row layout: source | full painting | partial 1 .. partial k | caption (wrapped), with each
partial labelled by its kind and kept-stroke count.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from PIL import Image, ImageDraw

from cofrida.data.shards import png_image, read_records

_PAD = 4  # px between cells
_LABEL = 12  # px of label text above each cell


def contact_sheet(
    out: str | Path, rows: int = 8, cell: int = 128, partials: int = 4, caption_px: int = 220
) -> Image.Image:
    """The contact sheet of the first `rows` paintings in a data folder.

    Args:
        out: the data folder (``out/data/*.parquet``).
        rows: paintings shown (one row each).
        cell: edge of each image cell in pixels.
        partials: partial columns per row (extra partials are left out).
        caption_px: width of the caption column in pixels.
    Returns:
        An RGB PIL image.
    Raises:
        FileNotFoundError: the folder holds no records.
    """
    columns = ["source_index", "partial", "full", "source", "caption", "kept", "partial_kind"]
    records = read_records(Path(out), columns)
    if not records:
        raise FileNotFoundError(f"no records in {out}/data/*.parquet")
    by_source: dict[int, list[dict]] = {}
    for r in records:
        by_source.setdefault(r["source_index"], []).append(r)
    chosen = sorted(by_source)[:rows]
    ncols = 2 + partials
    width = _PAD + ncols * (cell + _PAD) + caption_px
    height = _PAD + len(chosen) * (cell + _LABEL + _PAD)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)

    def put(data: bytes, col: int, row: int, label: str) -> None:
        x = _PAD + col * (cell + _PAD)
        y = _PAD + row * (cell + _LABEL + _PAD)
        draw.text((x, y), label, fill=(60, 60, 60))
        image = Image.fromarray(png_image(data)).resize((cell, cell), Image.Resampling.NEAREST)
        sheet.paste(image, (x, y + _LABEL))

    for row, index in enumerate(chosen):
        recs = by_source[index]
        put(recs[0]["source"], 0, row, f"source {index}")
        put(recs[0]["full"], 1, row, "full")
        for k, r in enumerate(recs[:partials]):
            put(r["partial"], 2 + k, row, f"{r['partial_kind']} ({len(r['kept'])})")
        x = _PAD + ncols * (cell + _PAD)
        y = _PAD + row * (cell + _LABEL + _PAD) + _LABEL
        text = "\n".join(textwrap.wrap(recs[0]["caption"], width=max(10, caption_px // 7)))
        draw.multiline_text((x, y), text, fill=(0, 0, 0))
    return sheet
