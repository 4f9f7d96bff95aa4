"""`cofrida show-data`: write a contact sheet of a training-data folder.

Examples:
    cofrida show-data data/acrylic                       # writes data/acrylic/contact_sheet.png
    cofrida show-data data/acrylic --rows 16 --out sheet.png

One row per painting: source | full painting | partials (labelled with their kind and kept
stroke count) | caption. Prints the manifest's counts (records, skipped by reason, mean loss)
as one JSON object last.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cofrida.data.contact_sheet import contact_sheet


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="cofrida show-data", description=__doc__.splitlines()[0])
    p.add_argument("dir", help="data folder written by cofrida make-data")
    p.add_argument("--out", default=None, help="PNG to write (default DIR/contact_sheet.png)")
    p.add_argument("--rows", type=int, default=8, help="paintings to show")
    p.add_argument("--cell", type=int, default=128, help="cell size in pixels")
    p.add_argument("--partials", type=int, default=4, help="partial columns per row")
    args = p.parse_args(argv)
    folder = Path(args.dir)
    try:
        sheet = contact_sheet(folder, args.rows, args.cell, args.partials)
    except (FileNotFoundError, ImportError) as e:
        print(f"cofrida show-data: {e}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else folder / "contact_sheet.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.png")
    sheet.save(tmp)
    tmp.replace(out)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    summary = {k: manifest.get(k) for k in ("records", "paintings", "skipped", "mean_loss")}
    print(json.dumps({"sheet": str(out), **summary}))
    return 0
