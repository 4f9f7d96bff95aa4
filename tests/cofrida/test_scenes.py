"""Procedural scenes: deterministic, >= 25 kinds, masks match pixels, captions true to scenes.

The caption checks parse the caption text with their own grammar and compare every claim
(count, colour, kind, position, relation, background) with the scene's object metadata.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from cofrida.data import KINDS, SceneGenerator, colour_words
from cofrida.data.scene_objects import Frame
from sim.palette import Palette

SIZE = (160, 192)  # (H, W); small for speed, not square to catch swapped axes
PALETTES = ("acrylic", "markers", "sharpie")
NUMBERS = {"a": 1, "an": 1, "two": 2, "three": 3, "four": 4, "five": 5}
COLOURS = (
    "black",
    "grey",
    "white",
    "red",
    "pink",
    "orange",
    "brown",
    "yellow",
    "green",
    "blue",
    "purple",
)


def _colours(pixels: np.ndarray) -> set[tuple[int, int, int]]:
    """The distinct colours of (N, 3) uint8 pixels."""
    packed = np.unique(pixels.astype(np.int32) @ np.array([65536, 256, 1], np.int32))
    return {(int(v >> 16), int(v >> 8 & 255), int(v & 255)) for v in packed}


@pytest.fixture(scope="module")
def scenes():
    out = []
    for name in PALETTES:
        palette = Palette.preset(name)
        gen = SceneGenerator(palette, size=SIZE, seed=11)
        out += [(palette, gen, gen.generate(i)) for i in range(40)]
    return out


# ---- determinism -------------------------------------------------------------------------------
def test_same_seed_and_index_give_identical_bytes():
    palette = Palette.preset("acrylic")
    a = SceneGenerator(palette, size=SIZE, seed=5)
    b = SceneGenerator(palette, size=SIZE, seed=5)
    for i in (0, 3, 1000):
        sa, sb = a.generate(i), b.generate(i)
        assert sa.image.tobytes() == sb.image.tobytes()
        assert sa.label_map.tobytes() == sb.label_map.tobytes()
        assert sa.caption == sb.caption and sa.meta() == sb.meta()
    assert a.generate(3).image.tobytes() == b.generate(3).image.tobytes()  # order-independent
    assert a.generate(1).image.tobytes() != a.generate(2).image.tobytes()
    assert SceneGenerator(palette, size=SIZE, seed=6).generate(0).caption != a.generate(0).caption


def test_image_shape_and_only_palette_or_paper_colours(scenes):
    for palette, _, s in scenes:
        assert s.image.shape == (*SIZE, 3) and s.image.dtype == np.uint8
        assert s.label_map.shape == SIZE and s.label_map.dtype == np.int16
        allowed = {tuple(c) for c in np.round(palette.colors.numpy() * 255).astype(np.uint8)}
        colours = _colours(s.image.reshape(-1, 3))
        assert len(colours - allowed) <= 1  # plus unpainted paper


def test_bad_arguments_raise():
    palette = Palette.preset("markers")
    with pytest.raises(ValueError, match="64"):
        SceneGenerator(palette, size=(32, 32))
    with pytest.raises(ValueError, match="unknown kinds"):
        SceneGenerator(palette, kinds=["dragon"])
    with pytest.raises(ValueError, match="index"):
        SceneGenerator(palette).generate(-1)


# ---- kinds and masks ---------------------------------------------------------------------------
def test_at_least_25_kinds_each_draws_inside_its_box():
    assert len(KINDS) >= 25
    for kind in KINDS.values():
        box = (20.0, 30.0, 20.0 + 60 * kind.aspect, 90.0)
        masks = {n: Image.new("L", (200, 140), 0) for n, _ in kind.parts}
        kind.draw({n: ImageDraw.Draw(m) for n, m in masks.items()}, Frame(box))
        main = np.asarray(masks["main"]) > 0
        assert main.sum() > 50, kind.name
        union = np.any([np.asarray(m) > 0 for m in masks.values()], axis=0)
        ys, xs = np.nonzero(union)
        slack = 2
        assert xs.min() >= box[0] - slack and xs.max() <= box[2] + slack, kind.name
        assert ys.min() >= box[1] - slack and ys.max() <= box[3] + slack, kind.name


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_appears_in_scenes_with_a_nonempty_mask(name):
    gen = SceneGenerator(Palette.preset("acrylic"), size=SIZE, seed=2, kinds=[name])
    found = [o for i in range(4) for o in gen.generate(i).objects]
    assert found and all(o.kind == name for o in found)
    s = gen.generate(0)
    for o in s.objects:
        mask = s.masks[o.id]
        assert mask.any()
        ys, xs = np.nonzero(mask)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == o.bbox


def test_masks_cover_the_pixels_of_each_object(scenes):
    for palette, _, s in scenes:
        rgb = np.round(palette.colors.numpy() * 255).astype(np.uint8)
        ids = {o.id for o in s.objects}
        assert set(np.unique(s.label_map)) - {0} == ids
        for o in s.objects:
            mask = s.masks[o.id]
            pixels = s.image[mask]
            part_colours = {tuple(rgb[p]) for p in o.parts.values()}
            assert _colours(pixels) <= part_colours
            is_main = (s.image == rgb[o.paint]).all(-1)
            assert (is_main & mask).sum() >= 0.1 * mask.sum(), (o.kind, s.caption)
            x0, y0, x1, y1 = o.bbox
            box_main = is_main[y0:y1, x0:x1]
            background = s.label_map[y0:y1, x0:x1] == 0
            assert not (box_main & background).any(), (o.kind, s.caption)


# ---- colour words -------------------------------------------------------------------------------
def test_colour_words_from_lab():
    words = colour_words(Palette.preset("acrylic"))
    assert words == ["white", "yellow", "red", "dark red", "blue", "green", "brown", "black"]
    assert colour_words(Palette.preset("markers")) == ["black", "red", "blue", "green"]
    named_by_hex = Palette(torch.tensor([[1.0, 0.5, 0.0], [0.5, 0.0, 0.5], [1.0, 0.6, 0.75]]))
    assert colour_words(named_by_hex) == ["orange", "purple", "pink"]


# ---- captions ---------------------------------------------------------------------------------
def _np_regex() -> re.Pattern:
    nouns = sorted(
        {k.noun for k in KINDS.values()} | {k.plural for k in KINDS.values()}, key=len, reverse=True
    )
    colour = rf"(?:(?:dark|light) )?(?:{'|'.join(COLOURS)})"
    return re.compile(rf"\b(a|an|two|three|four|five) ({colour}) ({'|'.join(nouns)})\b")


NP = _np_regex()


def _above(a, b, horizon):
    return max(o.centre[1] for o in a) < min(o.bbox[1] for o in b) and max(
        o.bbox[3] for o in a
    ) <= horizon < min(o.bbox[3] for o in b)


def _left_of(a, b):
    share = max(min(o.bbox[1] for o in a), min(o.bbox[1] for o in b)) < min(
        max(o.bbox[3] for o in a), max(o.bbox[3] for o in b)
    )
    return share and max(o.centre[0] for o in a) < min(o.bbox[0] for o in b)


def _next_to(a, b, width):
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = a[0].bbox, b[0].bbox
    return (
        len(a) == len(b) == 1
        and min(ay1, by1) > max(ay0, by0)
        and max(bx0 - ax1, ax0 - bx1) < width / 5
    )


def _check_position(phrase, group):
    h, w = SIZE
    xs, ys = [o.centre[0] for o in group], [o.centre[1] for o in group]
    assert {
        "on the left": max(xs) < w / 2,
        "on the right": min(xs) > w / 2,
        "at the top": max(ys) < h / 2,
        "at the bottom": min(ys) > h / 2,
        "in the middle": w / 4 < xs[0] < 3 * w / 4 and h / 4 < ys[0] < 3 * h / 4,
    }[phrase], phrase


def _check_caption(palette, s):
    words = colour_words(palette)
    groups: dict[int, list] = {}
    for o in s.objects:
        groups.setdefault(o.group, []).append(o)
        assert o.colour == words[o.paint]
    matches = list(NP.finditer(s.caption))
    assert len(matches) == len(groups), s.caption  # every group is named, once
    named = []
    for m in matches:
        article, colour, noun = m.groups()
        count = NUMBERS[article]
        if count == 1:
            assert article == ("an" if colour[0] in "aeiou" else "a"), s.caption
        kinds = [k for k in KINDS.values() if noun == (k.noun if count == 1 else k.plural)]
        hits = [
            g
            for g in groups.values()
            if any(o.kind == k.name for k in kinds for o in g) and g[0].colour == colour
        ]
        assert len(hits) == 1 and len(hits[0]) == count, s.caption
        named.append(hits[0])
    assert len({id(g) for g in named}) == len(groups)
    ends = [m.end() for m in matches] + [len(s.caption)]
    for i, m in enumerate(matches):
        between = s.caption[m.end() : matches[i + 1].start() if i + 1 < len(matches) else None]
        pos = re.match(
            r" (on the left|on the right|at the top|at the bottom|in the middle)", between
        )
        if pos:
            _check_position(pos.group(1), named[i])
        if i + 1 == len(matches):
            continue
        a, b = named[i], named[i + 1]
        if " above " in between:
            assert _above(a, b, s.horizon), s.caption
        if " under " in between or " below " in between:
            assert _above(b, a, s.horizon), s.caption
        if "to the left of" in between:
            assert _left_of(a, b), s.caption
        if "to the right of" in between:
            assert _left_of(b, a), s.caption
        if "next to" in between:
            assert _next_to(a, b, SIZE[1]), s.caption
    tail = s.caption[ends[-2] :]
    paints = s.background_paints
    if "night" in tail:
        assert s.background == "night"
    if " sea" in tail:
        assert s.background == "sea" and f" {words[paints['sea']]} sea" in tail
    if " sky" in tail and "night" not in tail:
        assert paints.get("sky") is not None and f" {words[paints['sky']]} sky" in tail
    if " grass" in tail or " ground" in tail:
        assert f" {words[paints['ground']]} " in tail
    if "paper" in tail:
        assert s.background == "paper"


def test_captions_are_true_to_the_scene(scenes):
    for palette, _, s in scenes:
        _check_caption(palette, s)


def test_captions_have_variety(scenes):
    captions = [s.caption for _, _, s in scenes]
    assert len(set(captions)) >= 0.9 * len(captions)
    text = " ".join(captions)
    for phrase in ("two ", " above ", " on the ", " and ", "painting of"):
        assert phrase in text, phrase
    assert any(w in text for w in (" under ", " below "))
    assert any(w in text for w in ("to the left of", "to the right of", "next to"))
    backgrounds = {s.background for _, _, s in scenes}
    assert backgrounds == {"paper", "meadow", "sea", "night"}
