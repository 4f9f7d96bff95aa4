"""`cofrida session`: list, resume and export co-painting sessions.

Examples:
    cofrida session list                          # the UI's sessions (user data directory)
    cofrida session list --dir out/demo --json    # every session folder under a folder
    cofrida session resume out/demo/session       # paint an interrupted turn to its end
    cofrida session export out/demo/session --out out/demo-export

A session is a folder with ``session.sqlite`` (`cofrida.session.SessionStore`). ``list`` shows
each session's first prompt, its turns, when it was last changed and whether it is open in a
process now (and which). ``resume`` opens a simulated session and paints the turn a crash or a
stop interrupted, from its first stroke not recorded; a session whose last turn waits for a
choice or a plan is continued in the browser (``cofrida ui --session-dir`` its parent folder,
then open it under *Sessions*, or let a reloaded tab reattach). ``export`` writes the images,
``timelapse.gif``, ``final.png`` and ``session.json``; it only reads the session, so it works
while the session is open elsewhere. The last line on stdout is one JSON object.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from cofrida.commands import parser_from_doc
from cofrida.commands._output import prepare_output_dir, write_error_message
from cofrida.session.lock import LOCK_NAME, SessionInUse, describe_holder, is_locked
from cofrida.session.store import SessionStore


def session_folders(root: Path) -> list[Path]:
    """`root` itself when it is a session, else the session folders directly under it, most
    recently changed first."""
    if (root / "session.sqlite").is_file():
        return [root]
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if (p / "session.sqlite").is_file()]
    return sorted(found, key=lambda p: (p / "session.sqlite").stat().st_mtime, reverse=True)


def describe(folder: Path) -> dict:
    """What ``list`` shows of one session (read-only: safe while it is open elsewhere)."""
    with SessionStore(folder, readonly=True) as store:
        turns = store.turns()
        config = store.config
    first = next((t.prompt for t in turns if t.prompt), None)
    last = turns[-1] if turns else None
    state = "empty" if last is None else "ready"
    if last is not None and last.state not in ("done", "undone", "cancelled"):
        state = f"interrupted ({last.state}"
        if last.progress.total:
            state += f", {last.progress.done}/{last.progress.total} strokes"
        state += ")"
    changed = (folder / "session.sqlite").stat().st_mtime
    for wal in (folder / "session.sqlite-wal",):
        if wal.exists():
            changed = max(changed, wal.stat().st_mtime)
    return {
        "folder": str(folder),
        "first_prompt": first,
        "turns": len(turns),
        "robot_turns": sum(t.kind == "robot" for t in turns),
        "state": state,
        "changed": time.strftime("%Y-%m-%d %H:%M", time.localtime(changed)),
        "open_by": describe_holder(folder / LOCK_NAME) if is_locked(folder) else None,
        "model": config.get("model"),
        "arm": config.get("arm", {}).get("type"),
    }


def _list(args) -> int:
    root = Path(args.dir) if args.dir else _default_dir()
    rows = [describe(f) for f in session_folders(root)]
    if not args.json:
        if not rows:
            print(f"no sessions in {root}", file=sys.stderr)
        for r in rows:
            prompt = repr(r["first_prompt"]) if r["first_prompt"] else "(no prompt yet)"
            busy = f"  OPEN: {r['open_by']}" if r["open_by"] else ""
            print(f"{r['changed']}  {r['folder']}")
            print(f"    {prompt}, {r['turns']} turns, {r['state']}{busy}")
    print(json.dumps({"dir": str(root), "sessions": rows}, ensure_ascii=False))
    return 0


def _default_dir() -> Path:
    from sim.user_data import user_data_dir

    return user_data_dir("sessions", create=False)


def _open_sim(folder: Path):
    """The session in `folder` on the sim arm, with the settings it was recorded with."""
    from cofrida.session import SceneProposer, SessionConfig, open_sim_session
    from planner import PlannerConfig
    from sim.palette import PALETTE_PRESETS, Palette

    with SessionStore(folder, readonly=True) as store:
        record = store.config
    if record.get("arm", {}).get("type") not in (None, "sim"):
        raise ValueError(
            f"{folder} was painted by a {record['arm']['type']!r} arm: resume it with that arm "
            "(`cofrida ui --robot real` with the same --arm/--camera options, then open it)"
        )
    names = list(record.get("palette", []))
    palette = next((p for p, paints in PALETTE_PRESETS.items() if list(paints) == names), None)
    if palette is None:
        raise ValueError(f"{folder}: its paints {names} are not a known palette preset")
    planner = PlannerConfig.from_dict(record.get("planner", {}))
    # Painting an interrupted turn needs no proposals: the stand-in keeps resuming fast.
    return open_sim_session(
        folder,
        SessionConfig(**record.get("session", {})),
        planner,
        canvas_px=int(record.get("canvas", {}).get("width_px", 256)),
        palette=palette,
        proposer=SceneProposer(Palette.preset(palette)),
        scorer=False,
    )


def _resume(args) -> int:
    folder = Path(args.folder)
    if not (folder / "session.sqlite").is_file():
        raise FileNotFoundError(
            f"no session in {folder}: `cofrida session list --dir FOLDER` shows the sessions"
        )
    session = _open_sim(folder)
    try:
        last = session.store.unfinished_turn()

        def progress(done: int, total: int) -> None:
            if done == total or done % 10 == 0:
                print(f"  painted {done}/{total} strokes", file=sys.stderr, flush=True)

        turn = session.resume(on_progress=progress)
        if turn is None:
            what = "nothing was interrupted; continue painting in it with `cofrida ui`"
        elif last.kind == "human":
            what = f"turn {turn.id} (the person's, never recorded) was cancelled"
        elif turn.state == "done":
            what = f"turn {turn.id} ({turn.prompt!r}) is painted: {turn.progress.total} strokes"
        else:
            what = (
                f"turn {turn.id} ({turn.prompt!r}) waits for a choice or a plan: continue "
                "it in the browser (`cofrida ui`, open the session)"
            )
        print(f"{folder}: {what}", file=sys.stderr)
        print(json.dumps({"folder": str(folder), "turn": None if turn is None else turn.id,
                          "state": None if turn is None else turn.state}))  # fmt: skip
        return 0
    finally:
        session.close()


def _export(args) -> int:
    from cofrida.session.export import export_session

    folder = Path(args.folder)
    if not (folder / "session.sqlite").is_file():
        raise FileNotFoundError(f"no session in {folder}")
    out = prepare_output_dir(args.out)
    if out.resolve() == folder.resolve() or out.resolve().is_relative_to(folder.resolve()):
        raise ValueError("--out must not be inside the session folder")
    with SessionStore(folder, readonly=True) as store:
        export_session(store, out)
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    print(json.dumps({"folder": str(folder), "out": str(out), "written": written}))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = parser_from_doc("cofrida session", __doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("list", help="the sessions in a folder, newest first")
    p.add_argument("--dir", default=None, help="folder of sessions (default: the UI's)")
    p.add_argument("--json", action="store_true", help="only the JSON line")
    p = sub.add_parser("resume", help="paint a simulated session's interrupted turn")
    p.add_argument("folder", help="the session folder")
    p = sub.add_parser("export", help="images, time-lapse and session.json of a session")
    p.add_argument("folder", help="the session folder")
    p.add_argument("--out", required=True, help="folder to export into")
    args = parser.parse_args(argv)
    try:
        return {"list": _list, "resume": _resume, "export": _export}[args.action](args)
    except (SessionInUse, ValueError, FileNotFoundError) as e:
        print(f"cofrida session {args.action}: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"cofrida session {args.action}: {write_error_message(e, '.')}", file=sys.stderr)
        return 1
