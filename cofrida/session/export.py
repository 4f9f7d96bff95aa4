"""Export a session: every image, a time-lapse GIF (and MP4 when OpenCV is there), and the
JSON record of turns, prompts, proposals, choices, plans and the execution log."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from PIL import Image

from cofrida.session.store import SessionStore

TIMELAPSE_FRAME_MS = 120  # ms per time-lapse frame (canvas snapshots)
TIMELAPSE_HOLD_MS = 1500  # ms the last frame stays


def session_record(store: SessionStore) -> dict:
    """The whole session as JSON-able data; image paths relative to the session folder."""

    def rel(p: Path | None) -> str | None:
        return None if p is None else str(p.relative_to(store.folder))

    turns = []
    for t in store.turns():
        plan = json.loads(t.plan) if t.plan else None
        turns.append({
            "id": t.id, "kind": t.kind, "prompt": t.prompt, "state": t.state,
            "created": t.created, "finished": t.finished,
            "canvas_before": rel(t.canvas_before), "canvas_after": rel(t.canvas_after),
            "proposals": [{"image": rel(p), "score": s} for p, s in t.proposals],
            "chosen": t.chosen, "target": rel(t.target),
            "strokes_total": t.progress.total, "strokes_done": t.progress.done,
            "strokes_painted": store.painted_strokes(t.id),
            "plan": plan,
            "events": store.events(t.id),
        })  # fmt: skip
    config = store.config
    return {"format": "cofrida-session/1", "model": config.get("model"), "config": config,
            "turns": turns}  # fmt: skip


def _write_atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_timelapse(frames: list[Path], gif: Path, mp4: Path | None = None) -> list[Path]:
    """A GIF (and an MP4 when OpenCV can write one) of the canvas snapshots; returns what was
    written (nothing without frames)."""
    if not frames:
        return []
    images = []
    for f in frames:
        with Image.open(f) as img:
            images.append(img.convert("RGB"))
    durations = [TIMELAPSE_FRAME_MS] * (len(images) - 1) + [TIMELAPSE_HOLD_MS]
    palette_images = [im.quantize(colors=255, method=Image.Quantize.MEDIANCUT) for im in images]
    _write_atomic(gif, lambda tmp: palette_images[0].save(
        tmp, format="GIF", save_all=True, append_images=palette_images[1:],
        duration=durations, loop=0,
    ))  # fmt: skip
    written = [gif]
    if mp4 is not None:
        try:
            import cv2
            import numpy as np
        except ImportError:
            return written
        w, h = images[0].size

        def write_mp4(tmp: str) -> None:
            out = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*"mp4v"), 8, (w, h))
            if not out.isOpened():
                raise OSError("OpenCV cannot write MP4 here")
            for im in images + [images[-1]] * 12:
                out.write(cv2.cvtColor(np.asarray(im.resize((w, h))), cv2.COLOR_RGB2BGR))
            out.release()

        try:
            _write_atomic(mp4, write_mp4)
            written.append(mp4)
        except OSError:
            pass
    return written


def export_session(store: SessionStore, folder: str | Path) -> Path:
    """Write ``images/`` (a copy, unless `folder` is the session folder), ``timelapse.gif``,
    ``timelapse.mp4`` (when possible), ``final.png`` and ``session.json`` into `folder`."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    source = store.folder / "images"
    if out.resolve() != store.folder.resolve() and source.exists():
        shutil.copytree(
            source, out / "images", dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*")
        )
    write_timelapse(store.snapshots(), out / "timelapse.gif", out / "timelapse.mp4")
    canvas = store.current_canvas()
    if canvas is not None:
        from cofrida.session.images import write_png_atomic

        write_png_atomic(canvas, out / "final.png")
    text = json.dumps(session_record(store), indent=1, ensure_ascii=False)
    _write_atomic(out / "session.json", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return out
