"""Captions for procedural scenes, from a small grammar over the scene's own metadata.

A caption names every group of objects with its count, colour word and noun ('two green
trees'), may place a group ('on the left', 'at the top'), relates two groups when the geometry
says so ('above', 'under', 'to the left of', 'next to') and may end with the background ('at
night', 'under a blue sky'). Every phrase is chosen only among the ones that are true of the
objects' bounding boxes; the definitions below are the contract the tests check.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cofrida.data.scene_objects import KINDS

COUNT_WORDS = {2: "two", 3: "three", 4: "four", 5: "five"}
PREFIXES = ("a painting of ", "a simple painting of ", "a child's painting of ", "a drawing of ")


# ---- geometry: what is true of two groups (lists of objects with .bbox and .centre) -----------
def is_above(a: Sequence, b: Sequence) -> bool:
    """Every centre of `a` is higher than the top edge of every object of `b`."""
    return max(o.centre[1] for o in a) < min(o.bbox[1] for o in b)


def across_horizon(upper: Sequence, lower: Sequence, horizon: int) -> bool:
    """Every object of `upper` ends above the horizon and every one of `lower` below it."""
    return max(o.bbox[3] for o in upper) <= horizon < min(o.bbox[3] for o in lower)


def is_left_of(a: Sequence, b: Sequence) -> bool:
    """Every centre of `a` is left of the left edge of every object of `b`, and the two groups
    share some height (a flower is not 'to the left of' a star high in the sky)."""
    top = max(min(o.bbox[1] for o in a), min(o.bbox[1] for o in b))
    bottom = min(max(o.bbox[3] for o in a), max(o.bbox[3] for o in b))
    return max(o.centre[0] for o in a) < min(o.bbox[0] for o in b) and top < bottom


def is_next_to(a: Sequence, b: Sequence, width: int) -> bool:
    """One object each, at overlapping heights, less than a fifth of the width apart."""
    if len(a) != 1 or len(b) != 1:
        return False
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = a[0].bbox, b[0].bbox
    gap = max(bx0 - ax1, ax0 - bx1)
    return min(ay1, by1) > max(ay0, by0) and gap < width / 5


def positions(group: Sequence, size: tuple[int, int]) -> list[str]:
    """Position phrases true of every object in `group`."""
    h, w = size
    xs = [o.centre[0] for o in group]
    ys = [o.centre[1] for o in group]
    out = []
    if max(xs) < 0.4 * w:
        out.append("on the left")
    if min(xs) > 0.6 * w:
        out.append("on the right")
    if max(ys) < 0.3 * h:
        out.append("at the top")
    if min(ys) > 0.7 * h:
        out.append("at the bottom")
    if len(group) == 1 and 0.4 * w < xs[0] < 0.6 * w and 0.3 * h < ys[0] < 0.7 * h:
        out.append("in the middle")
    return out


# ---- words --------------------------------------------------------------------------------------
def noun_phrase(group: Sequence) -> str:
    """'a red boat', 'an orange fish', 'three yellow stars'."""
    kind = KINDS[group[0].kind]
    colour = group[0].colour
    if len(group) == 1:
        article = "an" if colour[0] in "aeiou" else "a"
        return f"{article} {colour} {kind.noun}"
    return f"{COUNT_WORDS.get(len(group), str(len(group)))} {colour} {kind.plural}"


def _background_phrases(background, bg_paints, words, kinds) -> list[str]:
    def word(region):
        return words[bg_paints[region]]

    if background == "night":
        return ["at night", f"under a {word('sky')} night sky"]
    if background == "sea":
        out = [f"with a {word('sea')} sea", f"by a {word('sea')} sea"]
        if kinds & {"boat", "sailboat"}:
            out.append(f"on a {word('sea')} sea")
        return out
    if background == "meadow":
        g = word("ground")
        out = [f"on {g} grass" if g.split()[-1] == "green" else f"on {g} ground"]
        if bg_paints.get("sky") is not None:
            out.append(f"under a {word('sky')} sky")
        return out
    return ["on white paper"]


# ---- the grammar --------------------------------------------------------------------------------
def caption_scene(
    rng: np.random.Generator,
    objects: Sequence,
    background: str,
    bg_paints: dict,
    words: Sequence[str],
    size: tuple[int, int],
    horizon: int,
) -> str:
    """A caption true to the scene, chosen with `rng`.

    Args:
        rng: the scene's random generator (captions are part of its determinism).
        objects: the scene's `SceneObject`s (kind, colour, bbox, centre, group).
        background: the background name; bg_paints: region -> palette index or None.
        words: colour word of each paint; size: (H, W) of the image.
        horizon: the pixel row of the horizon; 'above' / 'under' relate only a group wholly
            above it to a group standing below it (a sun above a house, not a flower above a
            car further back on the same ground).
    Returns:
        A lower-case caption such as 'two green trees on the left under a yellow sun'.
    """
    groups: dict[int, list] = {}
    for o in objects:
        groups.setdefault(o.group, []).append(o)
    order = [groups[g] for g in rng.permutation(sorted(groups))]

    def np_pos(g, p_pos=0.5):
        pos = positions(g, size)
        if pos and rng.random() < p_pos:
            return f"{noun_phrase(g)} {pos[int(rng.integers(len(pos)))]}"
        return noun_phrase(g)

    if not order:
        main = "an empty canvas"
    elif len(order) == 1:
        main = np_pos(order[0], 0.6)
    else:
        a, b = order[0], order[1]
        options = _relations(a, b, size[1], horizon)
        if options and rng.random() < 0.8:
            template = options[int(rng.integers(len(options)))]
            main = template.format(a=noun_phrase(a), b=noun_phrase(b))
            if len(order) == 3:
                main = f"{main}, and {np_pos(order[2])}"
        elif len(order) == 3:
            main = f"{np_pos(a)}, {np_pos(b)} and {np_pos(order[2])}"
        else:
            main = f"{np_pos(a)} and {np_pos(b)}"
    if order and rng.random() < 0.25:
        main = PREFIXES[int(rng.integers(len(PREFIXES)))] + main
    p_bg = 0.15 if background == "paper" else 0.6
    if order and rng.random() < p_bg:
        kinds = {o.kind for o in objects}
        phrases = _background_phrases(background, bg_paints, words, kinds)
        main = f"{main}, {phrases[int(rng.integers(len(phrases)))]}"
    return main


def _relations(a: Sequence, b: Sequence, width: int, horizon: int) -> list[str]:
    """The relation templates true of groups a and b ({a} and {b} are their noun phrases)."""
    out = []
    if is_above(a, b) and across_horizon(a, b, horizon):
        out += ["{a} above {b}", "{b} under {a}", "{b} below {a}"]
    if is_above(b, a) and across_horizon(b, a, horizon):
        out += ["{b} above {a}", "{a} under {b}", "{a} below {b}"]
    if is_left_of(a, b):
        out += ["{a} to the left of {b}", "{b} to the right of {a}"]
    if is_left_of(b, a):
        out += ["{b} to the left of {a}", "{a} to the right of {b}"]
    if is_next_to(a, b, width):
        out += ["{a} next to {b}"]
    return out
