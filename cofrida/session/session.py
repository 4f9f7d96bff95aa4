"""`Session`: one co-painting session, turn by turn, persisted as it happens, resumable.

The UI (or the demo) calls the steps one by one::

    session = Session("sessions/today", arm, None, proposer, planner)
    session.resume()                               # continue whatever a crash interrupted
    session.human_turn(paths=person_paths)         # or an uploaded photo / a captured canvas
    proposals = session.propose("a sunny meadow with a red house", n=4, seed=0)
    session.choose(0)                              # or a composite image the person made
    plan, report = session.plan(on_progress=print)  # additions only: the person's work is kept
    session.execute(on_progress=print)             # the arm paints; each stroke is recorded
    session.end_turn()                             # after a stop: keep the strokes painted
    session.undo()                                 # simulation only: take the robot's turn back
    session.export("out/")                         # images, time-lapse GIF, session.json

Every step goes through `SessionStore` before it returns: the canvas before a turn, the prompt,
the proposals and their scores, the choice, the plan (JSON), every painted stroke with the
canvas after it, and an event log. A process killed at any moment (``kill -9`` mid-stroke)
loses nothing that was committed: `resume` continues an interrupted execution from the first
stroke not recorded as done, after loading the last stroke snapshot into the simulated arm.

With a real arm a stroke painted in the instant between the arm finishing it and the store
committing it would be painted again on resume (the store cannot see the paper); with the sim
arm the canvas lives in the process, so a stroke not committed is a stroke not painted.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cofrida.session.images import read_png
from cofrida.session.inputs import (
    MAX_PROMPT_CHARS,
    MAX_UPLOAD_BYTES,
    canvas_from_upload,
    check_prompt,
    resize,
)
from cofrida.session.store import SessionStore, TurnRecord
from planner import Plan, Planner, PlanReport, keep_mask
from robot.arms.arm import Arm, ExecutionReport
from sim.brush import Brush
from sim.brush_path import BrushPath
from sim.physical_brush import PhysicalBrush


@dataclass(frozen=True)
class SessionConfig:
    """How a session runs; stored in the session on creation."""

    strokes: int = 200  # the robot's stroke budget per turn
    proposals: int = 4  # proposals per prompt
    seed: int = 0  # proposals and the person's simulated brush derive from it
    person_brush: str = "sharpie"  # sim.Brush preset of the person's simulated strokes
    max_prompt_chars: int = MAX_PROMPT_CHARS  # longer prompts are refused
    max_upload_bytes: int = MAX_UPLOAD_BYTES  # larger uploads are refused
    keep_every: int = 10  # keep every k-th stroke snapshot for the time-lapse

    def __post_init__(self) -> None:
        for name in ("strokes", "proposals", "max_prompt_chars", "max_upload_bytes", "keep_every"):
            if not (isinstance(getattr(self, name), int) and getattr(self, name) >= 1):
                raise ValueError(f"SessionConfig.{name} must be an int >= 1")
        Brush.preset(self.person_brush)


class Session:
    """One co-painting session in `folder` (created, or reopened as it was left).

    Args:
        folder: the session folder (`SessionStore` layout).
        arm: a connected `robot.arms.Arm`; the sim arm's canvas is the canvas in simulation.
        camera: a connected `robot.cameras.Camera`, or None (simulation, or uploads only).
        proposer: ``propose(canvas, prompt, n, seed, region) -> images`` with a ``model_name``
            (`cofrida.session.proposers.default_proposer`).
        planner: plans the robot's strokes; its canvas is the session's canvas (pixel size
            and meters).
        scorer: optional ``scorer(images (B, 3, H, W), prompt) -> (B,)``, higher is better;
            proposals are ranked by it.
        config: `SessionConfig`; a reopened session keeps the one it was created with.
        rectify: optional camera frame (H, W, 3) uint8 -> canvas image (H', W', 3) uint8, e.g.
            ``lambda f: color.apply(canvas_calibration.rectify(f))``.
    """

    def __init__(
        self,
        folder: str | Path,
        arm: Arm,
        camera=None,
        proposer=None,
        planner: Planner | None = None,
        scorer: Callable | None = None,
        config: SessionConfig | None = None,
        rectify: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        if planner is None or proposer is None:
            raise ValueError("a Session needs a planner and a proposer")
        self.arm, self.camera, self.proposer = arm, camera, proposer
        self.planner, self.scorer, self.rectify = planner, scorer, rectify
        self.model_name = getattr(proposer, "model_name", type(proposer).__name__)
        config = config or SessionConfig()
        record = {
            "session": dataclasses.asdict(config),
            "model": self.model_name,
            "canvas": planner.canvas.to_dict(),
            "palette": list(planner.palette.names),
            "planner": planner.config.to_dict(),
            "arm": {"type": arm.config.type, "name": arm.name},
        }
        self.store = SessionStore(folder, config=record, keep_every=config.keep_every)
        self.config = SessionConfig(**self.store.config.get("session", {}))
        self.size_px = planner.canvas.size_px
        self.canvas = self.store.current_canvas()  # None on a fresh session
        if self.canvas is not None:
            self.canvas = resize(self.canvas, self.size_px)
            self._load_into_arm(self.canvas)
        self._turn: int | None = None  # the robot turn in progress

    @property
    def simulated(self) -> bool:
        """Whether the arm's canvas is an image this process holds (the sim arm)."""
        return hasattr(self.arm, "load_canvas_image") and hasattr(self.arm, "canvas_image")

    def close(self) -> None:
        self.store.close()

    # ---- the canvas -------------------------------------------------------------------------
    def capture(self) -> torch.Tensor:
        """The canvas as it is now, (3, H, W) float in 0..1 at the planner's size: the camera
        (rectified), else the sim arm's canvas, else the last canvas the session knows."""
        if self.camera is not None:
            frame = self.camera.capture()
            if self.rectify is not None:
                frame = self.rectify(frame)
            image = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float() / 255
        elif self.simulated:
            image = self.arm.canvas_image()
        elif self.canvas is not None:
            image = self.canvas
        else:
            image = torch.ones(3, *self.size_px)
        self.canvas = resize(image, self.size_px)
        return self.canvas

    def set_canvas_from_upload(self, upload) -> int:
        """Start from an uploaded photo of the canvas (bytes or array): recorded as a human
        turn, and loaded into the sim arm. Returns the turn id.

        Raises:
            ValueError: the upload is empty, too large, not an image, corrupt or too small.
        """
        image = canvas_from_upload(upload, self.size_px, self.config.max_upload_bytes)
        return self.human_turn(image=image, _source="upload")

    def _load_into_arm(self, image: torch.Tensor) -> None:
        if self.simulated:
            self.arm.load_canvas_image(resize(image, self.arm.canvas.size_px))

    def _arm_canvas(self) -> torch.Tensor | None:
        return resize(self.arm.canvas_image(), self.size_px) if self.simulated else None

    # ---- the person's turn ------------------------------------------------------------------
    def human_turn(
        self, paths: list[BrushPath] | None = None, image=None, _source: str = "person"
    ) -> int:
        """Record the person's turn; returns its turn id.

        Args:
            paths: the person's strokes (canvas meters), painted in simulation with the
                person's brush (`SessionConfig.person_brush`) onto the current canvas.
            image: or the canvas after the person painted ((3, H, W) tensor); None with no
                paths: capture the canvas (the person painted on the real canvas).
        """
        self._close_open_turn("the person painted")
        before = self.canvas if self.canvas is not None else self.capture()
        turn = self.store.begin_turn("human", before)
        if paths is not None:
            brush = PhysicalBrush(
                Brush.preset(self.config.person_brush), seed=self.config.seed + turn
            )
            after = brush.paint_many(before.clone(), list(paths), self.planner.canvas)
            self.store.log(turn, "strokes", {"paths": [p.to_dict() for p in paths]})
        elif image is not None:
            after = resize(image, self.size_px)
        else:
            after = self.capture()
        self.store.log(turn, "canvas", {"source": _source if paths is None else "strokes"})
        self.store.finish_turn(turn, after)
        self.canvas = after
        self._load_into_arm(after)
        return turn

    # ---- the robot's turn -------------------------------------------------------------------
    def propose(
        self, prompt: str, n: int | None = None, seed: int | None = None, region=None,
        callback=None, should_stop=None,
    ) -> list[tuple[torch.Tensor, float | None]]:  # fmt: skip
        """Start a robot turn: capture, then n proposals for `prompt`, ranked by the scorer.

        Returns:
            [(image (3, H, W), score or None), ...] best first (the proposer's order without a
            scorer); stored with the turn in that order.
        Raises:
            ValueError: an empty or too long prompt, or n < 1.
        """
        prompt = check_prompt(prompt, self.config.max_prompt_chars)
        n = self.config.proposals if n is None else int(n)
        seed = self.config.seed if seed is None else int(seed)
        if n < 1:
            raise ValueError(f"ask for at least one proposal, got n={n}")
        self._close_open_turn("a new prompt")
        canvas = self.capture()
        turn = self.store.begin_turn("robot", canvas, prompt=prompt)
        self._turn = turn
        start = time.perf_counter()
        images = self.proposer.propose(canvas, prompt, n, seed, region, callback, should_stop)
        images = [resize(img.float().clamp(0, 1), self.size_px) for img in images]
        scores: list[float | None] = [None] * len(images)
        if self.scorer is not None:
            with torch.no_grad():
                scores = [float(s) for s in self.scorer(torch.stack(images), prompt)]
            order = sorted(range(len(images)), key=lambda i: -scores[i])
            images, scores = [images[i] for i in order], [scores[i] for i in order]
        self.store.add_proposals(turn, images, None if self.scorer is None else scores)
        region_png = None
        if region is not None:  # kept with the turn: the plan paints only inside it too
            mask = torch.as_tensor(np.asarray(region)).bool().float()[None].expand(3, -1, -1)
            region_png = self.store.add_region(turn, resize(mask, self.size_px))
        self.store.log(turn, "propose", {
            "model": self.model_name, "n": n, "seed": seed, "region": region is not None,
            "region_png": region_png,
            "seconds": round(time.perf_counter() - start, 3), "scores": scores,
        })  # fmt: skip
        return list(zip(images, scores, strict=True))

    def choose(self, choice: int | torch.Tensor) -> torch.Tensor:
        """The person's choice: a proposal index (best first), or a composite image they
        made ((3, H, W) in 0..1). Returns the target the robot will paint towards."""
        t = self._current("choose")
        if isinstance(choice, int):
            if not 0 <= choice < len(t.proposals):
                raise ValueError(f"choose a proposal 0..{len(t.proposals) - 1}, got {choice}")
            target, index = read_png(t.proposals[choice][0]), choice
        else:
            target, index = resize(torch.as_tensor(choice).float(), self.size_px), None
        self.store.choose(t.id, target, index)
        return target

    def plan(
        self, strokes: int | None = None, on_progress=None, should_stop=None
    ) -> tuple[Plan, PlanReport]:
        """Plan the robot's strokes from the canvas to the chosen target, additions only (the
        canvas's paint that the target keeps is protected, and with a region given to `propose`
        everything outside it). Raises `planner.Cancelled` when
        `should_stop` says so (the turn stays chosen; plan again)."""
        t = self._current("plan")
        if t.target is None:
            raise ValueError("choose a proposal before planning")
        canvas, target = read_png(t.canvas_before), read_png(t.target)
        keep = keep_mask(
            canvas, target, self.planner.config.paper_delta_e, self.planner.config.agree_delta_e
        )
        region = self.store.region(t.id)
        if region is not None:  # the person's region: nothing outside it may be painted
            keep = keep | ~region
        plan, report = self.planner.plan(
            canvas, target, strokes=strokes or self.config.strokes, keep_mask=keep,
            prompt=t.prompt or "", on_progress=on_progress, should_stop=should_stop,
        )  # fmt: skip
        self.store.set_plan(t.id, plan.to_json(), len(plan))
        summary = {k: v for k, v in report.to_dict().items() if k != "history"}
        self.store.log(t.id, "plan", summary)
        return plan, report

    def _arm_paths(self, plan: Plan, start: int) -> list[BrushPath]:
        """The plan's paths from `start`, without a speed: the arm's safety check times them
        (its paint speed, lowered where a tightly bent stroke's corners need it)."""
        return plan.paths(start=start)

    def execute(self, on_progress=None, should_stop=None) -> ExecutionReport:
        """Paint the plan's strokes not yet painted; each one is recorded as it finishes.

        Args:
            on_progress: called as on_progress(strokes_done, strokes_total) after each stroke.
            should_stop: polled after each stroke; True stops the arm (resume with `execute`).
        Returns:
            the arm's report of this call. A completed turn is finished with the captured
            canvas; a stopped or faulted one stays 'executing'.
        """
        t = self._current("execute")
        if t.plan is None:
            raise ValueError("plan the turn before executing it")
        plan, start = Plan.from_json(t.plan), t.progress.done
        total = t.progress.total
        self.store.log(t.id, "execute", {"from": start, "total": total})

        def painted(k: int, n: int) -> None:
            self.store.stroke_done(t.id, start + k - 1, self._arm_canvas())
            if on_progress is not None:
                on_progress(start + k, total)
            if should_stop is not None and should_stop():
                self.arm.stop()

        report = self.arm.execute(self._arm_paths(plan, start), on_progress=painted)
        self.store.log(t.id, "executed", report.to_dict() | {"paths": len(report.paths)})
        if report.completed:
            self.canvas = self.capture()
            self.store.finish_turn(t.id, self.canvas)
            self._turn = None
        return report

    def end_turn(self) -> torch.Tensor:
        """End a stopped robot turn where it stands: the strokes painted so far stay, the rest
        are dropped (logged as ``ended``), and the turn is done with the canvas as it is now
        (so it can be undone, and a new prompt can follow). Returns that canvas.

        Raises:
            ValueError: no robot turn is being painted (nothing was stopped mid-way).
        """
        t = self._current("end")
        if t.state != "executing":
            raise ValueError(f"turn {t.id} is {t.state}, not stopped mid-way: nothing to end")
        self.canvas = self.capture()
        self.store.log(t.id, "ended", {"done": t.progress.done, "total": t.progress.total})
        self.store.finish_turn(t.id, self.canvas)
        self._turn = None
        return self.canvas

    # ---- undo, resume -----------------------------------------------------------------------
    def undo(self) -> torch.Tensor:
        """Take back the robot's last turn (simulation only): the sim arm's canvas returns to
        what it was before that turn. Returns that canvas."""
        if not self.simulated:
            raise ValueError("undo needs the simulated arm: paint cannot be lifted off paper")
        self._close_open_turn("undo")
        turns = [t for t in self.store.turns() if t.state not in ("undone", "cancelled")]
        if not turns or turns[-1].kind != "robot" or turns[-1].state != "done":
            last = "nothing" if not turns else f"a {turns[-1].kind} turn ({turns[-1].state})"
            raise ValueError(f"nothing to undo: the last turn is {last}, not a robot turn")
        before = resize(self.store.undo_turn(turns[-1].id), self.size_px)
        self.canvas = before
        self._load_into_arm(before)
        return before

    def resume(self, on_progress=None, should_stop=None) -> TurnRecord | None:
        """Continue what a crash interrupted; returns the interrupted turn, or None.

        A turn interrupted while planned or executing is painted to the end from the first
        stroke not recorded (the sim arm already holds the last snapshot); a turn interrupted
        earlier (proposed, chosen) becomes the current turn again, for `choose` / `plan`.
        """
        t = self.store.unfinished_turn()
        if t is None:
            return None
        if t.kind == "human":
            self.store.cancel_turn(t.id, "interrupted before the canvas was recorded")
            return t
        self._turn = t.id
        self.store.log(t.id, "resume", {"state": t.state, "done": t.progress.done})
        if t.state in ("planned", "executing"):
            self.execute(on_progress=on_progress, should_stop=should_stop)
        return self.store.turn(t.id)

    def _current(self, step: str) -> TurnRecord:
        if self._turn is None:
            raise ValueError(f"no robot turn to {step}: call propose(prompt) first")
        return self.store.turn(self._turn)

    def _close_open_turn(self, reason: str) -> None:
        """Cancel a robot turn not yet painting; refuse while strokes are half done."""
        if self._turn is None:
            return
        t = self.store.turn(self._turn)
        if t.state == "executing":
            raise ValueError(
                f"turn {t.id} is being painted ({t.progress.done}/{t.progress.total} strokes): "
                "finish it with execute() or resume() first"
            )
        if t.state not in ("done", "undone", "cancelled"):
            self.store.cancel_turn(t.id, reason)
        self._turn = None

    def export(self, folder: str | Path) -> Path:
        """Write all images, a time-lapse GIF and ``session.json`` into `folder`."""
        from cofrida.session.export import export_session

        return export_session(self.store, folder)
