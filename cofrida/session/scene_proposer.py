"""`SceneProposer`: a STAND-IN for the edit model until the shipped bundle is trained.

It is not a learned model. It reads the prompt for the object nouns, counts and colour words
that the procedural scenes know (`cofrida.data.scene_objects.KINDS`: 'a red house', 'two
trees', 'a sunny meadow', 'boats on the sea'), and draws those objects with the same drawers
and the robot's own paints onto the canvas:

- the background the prompt names (meadow, sea, night sky) fills only unpainted paper;
- objects are drawn over the canvas in bold flat colours, each placed (among a few random
  candidates) where it overlaps the existing paint least;
- the canvas's dark line marks (a person's marker sketch) stay on top of everything, so the
  person's drawing is kept;
- outside `region` the proposal equals the canvas exactly.

Proposal k depends only on (canvas, prompt, seed, k): layout, sizes and unnamed colours are
drawn from a generator seeded by them, so proposals differ from each other and repeat exactly.
A session that uses it records ``model: "scene-stand-in"``.
"""

from __future__ import annotations

import re
import zlib

import numpy as np
import torch
from PIL import Image, ImageDraw

from cofrida.data.colour_words import colour_words
from cofrida.data.scene_objects import KINDS, Frame, ObjectKind
from planner.copaint import color_difference, paper_color
from sim.palette import Palette, srgb_to_lab

MODEL_NAME = "scene-stand-in"
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "some": 2}
_BACKGROUND_WORDS = {
    "meadow": "meadow", "field": "meadow", "garden": "meadow", "grass": "meadow",
    "sea": "sea", "ocean": "sea", "lake": "sea", "water": "sea",
    "night": "night", "starry": "night",
}  # fmt: skip
_PAPER_DELTA_E = 8.0  # CIE76 from the paper colour above which a canvas pixel is painted
_LINE_LIGHTNESS = 35.0  # Lab L below which painted pixels count as line marks kept on top
_CANDIDATES = 6  # random placements tried per object; the least overlapping one wins


def parse_prompt(prompt: str, words: list[str]) -> tuple[list[tuple[str, int, str | None]], str]:
    """What the stand-in understands of a prompt.

    Args:
        prompt: any text.
        words: the palette's colour words (`colour_words`), e.g. ['white', 'dark red', ...].
    Returns:
        ([(kind name, count, colour word or None), ...], background name or 'paper').
    """
    tokens = re.findall(r"\w+", prompt.lower())
    basic = {w.split()[-1] for w in words}
    nouns: dict[tuple[str, ...], tuple[str, bool]] = {}
    for k in KINDS.values():
        nouns[tuple(k.noun.split())] = (k.name, False)
        nouns[tuple(k.plural.split())] = (k.name, True)
    found: list[tuple[str, int, str | None]] = []
    background = "paper"
    i = 0
    while i < len(tokens):
        match = next(
            (n for n in sorted(nouns, key=len, reverse=True) if tuple(tokens[i : i + len(n)]) == n),
            None,
        )
        if match is None:
            background = _BACKGROUND_WORDS.get(tokens[i], background)
            i += 1
            continue
        name, plural = nouns[match]
        before = tokens[max(0, i - 3) : i]
        colour = next((t for t in reversed(before) if t in basic), None)
        count = next((_NUMBERS.get(t, int(t) if t.isdigit() else 0) for t in before[::-1]
                      if t in _NUMBERS or t.isdigit()), 0)  # fmt: skip
        count = min(max(count, 2 if plural else 1), KINDS[name].max_count)
        if name not in [f[0] for f in found]:
            found.append((name, count, colour))
        i += len(match)
    if "sunny" in tokens and not any(f[0] == "sun" for f in found):
        found.insert(0, ("sun", 1, None))
    return found, background


class SceneProposer:
    """Stand-in proposer (see the module docstring). Same call as `EditModel.propose`.

    Args:
        palette: the robot's paints; every drawn pixel is one of them.
    """

    model_name = MODEL_NAME

    def __init__(self, palette: Palette) -> None:
        self.palette = palette
        self.words = colour_words(palette)
        self._rgb = palette.colors.float().clamp(0, 1)  # (P, 3)
        self._lab = palette.lab.float()  # (P, 3)

    def propose(self, canvas: torch.Tensor, prompt: str, n: int = 4, seed: int = 0, region=None,
                callback=None, should_stop=None) -> list[torch.Tensor]:  # fmt: skip
        """n proposals for `canvas` ((3, H, W) float in 0..1), each (3, H, W) float in 0..1.

        `region`: optional (H, W) mask; the proposal equals the canvas outside it.
        `callback(done, total)` after each proposal; `should_stop()` polled before each.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        wanted, background = parse_prompt(prompt, self.words)
        out = []
        for k in range(n):
            if should_stop is not None and should_stop():
                raise InterruptedError("proposals cancelled")
            rng = np.random.default_rng([int(seed), k, zlib.crc32(prompt.encode())])
            out.append(self._one(canvas, wanted, background, rng, region))
            if callback is not None:
                callback(k + 1, n)
        return out

    # ---- one proposal -------------------------------------------------------------------------
    def _one(self, canvas, wanted, background, rng, region) -> torch.Tensor:
        h, w = canvas.shape[1:]
        paper = paper_color(canvas).view(3, 1, 1).expand_as(canvas)
        painted = (color_difference(canvas, paper) > _PAPER_DELTA_E).numpy()
        lines = painted & (srgb_to_lab(canvas.permute(1, 2, 0))[..., 0] < _LINE_LIGHTNESS).numpy()
        horizon = int(h * rng.uniform(0.5, 0.64))
        image = canvas.clone()
        ground = self._background(image, background, horizon, ~painted, rng)
        if not wanted:  # nothing recognised: one or two things that suit the background
            names = [k for k in KINDS if _fits(KINDS[k], background)]
            wanted = [(str(rng.choice(names)), 1, None) for _ in range(int(rng.integers(1, 3)))]
        taken = painted.copy()
        for name, count, colour in wanted:
            kind = KINDS[name]
            main = self._paint_for(kind.colours, colour, ground, rng)
            for _ in range(count):
                box = self._place(kind, h, w, horizon, taken, rng)
                self._draw(image, kind, box, main, rng, taken)
        image = torch.where(torch.from_numpy(lines)[None], canvas, image)
        if region is not None:
            mask = torch.as_tensor(np.asarray(region)).bool().view(1, h, w)
            image = torch.where(mask, image, canvas)
        return image

    def _background(self, image, background, horizon, paper, rng) -> int | None:
        """Fill the paper of the named background; returns the ground/sea paint (or None)."""
        if background == "paper":
            return None
        pick = {"meadow": ("green",), "sea": ("blue",), "night": ("green", "brown")}[background]
        ground = self._paint_for(pick, None, None, rng)
        sky = (
            self._paint_for(("black", "blue"), None, ground, rng) if background == "night" else None
        )
        fill = np.zeros(paper.shape, bool)
        fill[horizon:] = True
        image[:, torch.from_numpy(fill & paper)] = self._rgb[ground].view(3, 1)
        if sky is not None:
            image[:, torch.from_numpy(~fill & paper)] = self._rgb[sky].view(3, 1)
        return ground

    def _paint_for(self, liked, colour, avoid, rng) -> int:
        """A paint index: the prompt's colour word, else a liked colour, else any paint that
        contrasts with `avoid`."""
        for pool in ([colour] if colour else [], list(liked), None):
            idx = [i for i, w in enumerate(self.words) if pool is None or w.split()[-1] in pool]
            if avoid is not None:
                far = [i for i in idx if float((self._lab[i] - self._lab[avoid]).norm()) > 25]
                idx = far or ([] if pool is None else idx)
            if idx:
                return int(rng.choice(idx))
        return 0

    def _place(self, kind: ObjectKind, h, w, horizon, taken, rng) -> tuple[float, ...]:
        """The candidate box (x0, y0, x1, y1) that overlaps painted pixels least."""
        best, best_cost = None, None
        for _ in range(_CANDIDATES):
            bh = h * rng.uniform(*kind.height)
            bw = min(w * 0.9, bh * kind.aspect)
            zone = kind.zone
            if zone == "sky":
                y0 = rng.uniform(0.03 * h, max(0.04 * h, horizon - bh - 0.03 * h))
            elif zone == "horizon":
                y0 = horizon - bh + 0.02 * h
            elif zone in ("ground", "water"):
                y0 = min(h - bh - 2, horizon - 0.6 * bh + rng.uniform(0, 0.25) * (h - horizon))
            else:
                y0 = rng.uniform(0, h - bh)
            x0 = rng.uniform(0.02 * w, max(0.03 * w, 0.98 * w - bw))
            box = (x0, max(0.0, y0), x0 + bw, max(0.0, y0) + bh)
            ys = slice(int(box[1]), int(box[3]) + 1)
            xs = slice(int(box[0]), int(box[2]) + 1)
            cost = float(taken[ys, xs].mean()) if taken[ys, xs].size else 1.0
            if best_cost is None or cost < best_cost:
                best, best_cost = box, cost
        return best

    def _draw(self, image, kind: ObjectKind, box, main, rng, taken) -> None:
        h, w = image.shape[1:]
        masks = {name: Image.new("L", (w, h), 0) for name, _ in kind.parts}
        kind.draw({n: ImageDraw.Draw(m) for n, m in masks.items()}, Frame(box))
        for name, liked in kind.parts:
            paint = main if name == "main" else self._paint_for(liked, None, main, rng)
            m = np.asarray(masks[name]) > 0
            image[:, torch.from_numpy(m)] = self._rgb[paint].view(3, 1)
            taken |= m


def _fits(kind: ObjectKind, background: str) -> bool:
    return {
        "paper": kind.zone != "water",
        "meadow": kind.zone in ("sky", "ground", "horizon", "free"),
        "sea": kind.zone in ("sky", "water"),
        "night": kind.name in ("moon", "star") or kind.zone in ("ground", "horizon"),
    }[background]
