"""`SceneGenerator`: procedural, captioned scenes painted with the robot's own paints.

Each scene is a simple background (plain paper, a meadow under a sky, the sea, a night sky over
the ground) and one to three groups of objects ('two green trees', 'a yellow sun'), drawn with
flat colours from a `sim.palette.Palette` in bold shapes a brush can follow. The caption is
generated from the scene's own metadata (kinds, colours, counts, positions, relations between
groups), so it is true to the picture. Every object keeps its pixels in a label map.

Example:
    gen = SceneGenerator(Palette.preset("acrylic"), size=(256, 256), seed=0)
    sample = gen.generate(7)  # the same (seed, index) always gives the same bytes
    sample.image, sample.caption, sample.objects, sample.masks
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from PIL import Image, ImageDraw

from cofrida.data.colour_words import colour_words
from cofrida.data.scene_captions import caption_scene
from cofrida.data.scene_objects import KINDS, Frame, ObjectKind
from sim.palette import Palette, srgb_to_lab

PAPER_RGB = (0.97, 0.96, 0.93)  # unpainted paper, sRGB 0..1 (not a paint)
MIN_CONTRAST = 25.0  # CIE76 Delta-E between an object's main paint and the background under it
MIN_PART_CONTRAST = 20.0  # between a detail part (roof, trunk) and its object's main paint
MIN_VISIBLE = 0.6  # an object more hidden than this behind nearer ones is left out
BACKGROUNDS = ("paper", "meadow", "sea", "night")
_BG_WEIGHTS = {"paper": 0.3, "meadow": 0.35, "sea": 0.2, "night": 0.15}
_NIGHT_ONLY = ("moon", "star")  # sky things that need a night sky or plain paper
_DAY_ONLY = ("sun", "kite", "butterfly", "bird")
_INTERIOR_PARTS = ("snow", "centre", "door")  # inside their object: no background contrast needed
_OPTIONAL_PARTS = ("snow", "centre")  # details drawn in the main paint when no liked paint exists
_ANCHOR = {  # which kinds may be a background's first group
    "paper": lambda k: True,
    "meadow": lambda k: k.zone in ("ground", "horizon"),
    "sea": lambda k: k.zone == "water",
    "night": lambda k: k.name in _NIGHT_ONLY,
}


@dataclass
class SceneObject:
    """One drawn object of a scene.

    Attributes:
        id: its label in `SceneSample.label_map` (1..N, in drawing order).
        kind: `ObjectKind.name`, e.g. 'pine_tree'.
        colour: the caption's colour word for its main part, e.g. 'red'.
        paint: palette index of its main part.
        parts: palette index of every part, main included, e.g. {'main': 2, 'trunk': 6}.
        bbox: (x0, y0, x1, y1) pixels of its visible pixels, x1 and y1 exclusive.
        centre: (x, y) pixel centre of `bbox`.
        position: where it is, e.g. 'top left', 'middle centre', 'bottom right'.
        group: index of its group; a group is all objects of one kind and one paint.
    """

    id: int
    kind: str
    colour: str
    paint: int
    parts: dict[str, int]
    bbox: tuple[int, int, int, int]
    centre: tuple[float, float]
    position: str
    group: int

    def to_dict(self) -> dict:
        """A JSON-ready dict of every field."""
        return asdict(self)


@dataclass
class SceneSample:
    """One generated scene.

    Attributes:
        image: (H, W, 3) uint8 sRGB.
        caption: a caption true to the image, e.g. 'a red boat under a yellow sun'.
        objects: the drawn objects, in drawing order.
        label_map: (H, W) int16, the id of the object visible at each pixel, 0 for background.
        background: one of `BACKGROUNDS`.
        background_paints: region ('sky', 'ground', 'sea') -> palette index, or None for
            unpainted paper; regions absent from the dict are paper too.
        horizon: pixel row where sky meets ground or sea (a virtual one on plain paper).
        seed: the generator's base seed; index: the scene's index.
    """

    image: np.ndarray
    caption: str
    objects: list[SceneObject]
    label_map: np.ndarray
    background: str
    background_paints: dict[str, int | None] = field(default_factory=dict)
    horizon: int = 0
    seed: int = 0
    index: int = 0

    @property
    def masks(self) -> dict[int, np.ndarray]:
        """Object id -> (H, W) bool mask of its visible pixels."""
        return {o.id: self.label_map == o.id for o in self.objects}

    def meta(self) -> dict:
        """JSON-ready metadata (everything but the image and the label map)."""
        return {
            "caption": self.caption,
            "objects": [o.to_dict() for o in self.objects],
            "background": self.background,
            "background_paints": dict(self.background_paints),
            "horizon": self.horizon,
            "seed": self.seed,
            "index": self.index,
        }


@dataclass
class _Placed:
    kind: ObjectKind
    group: int
    box: tuple[float, float, float, float]
    parts: dict[str, int] = field(default_factory=dict)


class SceneGenerator:
    """Draws captioned scenes with the paints of `palette`.

    Args:
        palette: the robot's paints; every pixel is one of them or unpainted paper.
        size: (height, width) of the images in pixels, each >= 64.
        seed: base seed; scene `index` uses a generator seeded from (seed, index), so any
            index can be made alone, in any order, on any machine (sharding).
        kinds: names of the `KINDS` to use; default all.
        max_groups: the most object groups (kind + colour) in one scene, 1..3.
    """

    def __init__(
        self,
        palette: Palette,
        size: tuple[int, int] = (256, 256),
        seed: int = 0,
        kinds: Sequence[str] | None = None,
        max_groups: int = 3,
    ) -> None:
        h, w = size
        if h < 64 or w < 64:
            raise ValueError(f"SceneGenerator: size must be at least 64x64 px, got {size}")
        if not 1 <= max_groups <= 3:
            raise ValueError(f"SceneGenerator: max_groups must be 1..3, got {max_groups}")
        names = list(KINDS) if kinds is None else list(kinds)
        unknown = [k for k in names if k not in KINDS]
        if unknown or not names:
            raise ValueError(f"SceneGenerator: unknown kinds {unknown}; known: {sorted(KINDS)}")
        self.palette, self.size, self.seed = palette, (int(h), int(w)), int(seed)
        self.kinds = [KINDS[k] for k in names]
        self.max_groups = max_groups
        self.words = colour_words(palette)
        self._rgb = np.round(palette.colors.numpy() * 255).astype(np.uint8)  # (P, 3)
        paper = np.asarray(PAPER_RGB)
        self._paper_rgb = np.round(paper * 255).astype(np.uint8)
        lab = palette.lab.numpy().astype(np.float64)
        paper_lab = srgb_to_lab(torch.tensor(paper, dtype=torch.float64)).numpy()
        self._lab = np.concatenate([lab, paper_lab[None]])  # index P = paper

    # ---- public -------------------------------------------------------------------------------
    def generate(self, index: int) -> SceneSample:
        """The scene number `index` (>= 0); deterministic in (seed, index, palette, size)."""
        if index < 0:
            raise ValueError(f"SceneGenerator.generate: index must be >= 0, got {index}")
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(index)]))
        background, bg_paints, horizon = self._background(rng)
        placed = self._layout(rng, background, bg_paints, horizon)
        image, label_map, placed = self._render(bg_paints, horizon, placed)
        objects = self._objects(label_map, placed)
        caption = caption_scene(rng, objects, background, bg_paints, self.words, self.size, horizon)
        return SceneSample(
            image,
            caption,
            objects,
            label_map,
            background,
            bg_paints,
            horizon,
            self.seed,
            int(index),
        )

    # ---- 1. background --------------------------------------------------------------------------
    def _paints(self, words: Sequence[str]) -> list[int]:
        return [i for i, w in enumerate(self.words) if w.split()[-1] in words]

    def _contrast(self, i: int, j: int | None) -> float:
        a = self._lab[i]
        b = self._lab[len(self.words) if j is None else j]
        return float(np.linalg.norm(a - b))

    def _background(self, rng: np.random.Generator) -> tuple[str, dict[str, int | None], int]:
        h = self.size[0]
        options: dict[str, dict[str, int | None]] = {"paper": {}}
        greens, browns, blues = (
            self._paints(["green"]),
            self._paints(["brown"]),
            self._paints(["blue"]),
        )
        grounds = greens + browns
        if grounds:
            ground = int(rng.choice(grounds))
            skies = [b for b in blues if self._contrast(b, ground) > MIN_CONTRAST]
            sky = int(rng.choice(skies)) if skies and rng.random() < 0.5 else None
            options["meadow"] = {"sky": sky, "ground": ground}
        if blues:
            options["sea"] = {"sky": None, "sea": int(rng.choice(blues))}
        darks = [i for i, lab in enumerate(self._lab[:-1]) if lab[0] < 35]
        night_skies = [i for i in darks if self.words[i].split()[-1] in ("black", "blue")]
        if night_skies:
            sky = int(rng.choice(night_skies))
            grounds_n = [g for g in grounds if self._contrast(g, sky) > MIN_CONTRAST]
            if grounds_n:
                options["night"] = {"sky": sky, "ground": int(rng.choice(grounds_n))}
        names = [b for b in BACKGROUNDS if b in options]
        p = np.array([_BG_WEIGHTS[b] for b in names])
        background = str(rng.choice(names, p=p / p.sum()))
        lo, hi = (0.42, 0.55) if background == "sea" else (0.5, 0.64)
        return background, options[background], int(h * rng.uniform(lo, hi))

    # ---- 2. layout: groups, sizes, positions and paints ----------------------------------------
    def _allowed(self, background: str) -> list[ObjectKind]:
        zones = {
            "paper": None,
            "meadow": ("sky", "ground", "horizon", "free"),
            "sea": ("sky", "water"),
            "night": ("sky", "ground", "horizon"),
        }[background]
        out = []
        for k in self.kinds:
            if zones is not None and k.zone not in zones:
                continue
            if (k.name in _NIGHT_ONLY and background not in ("night", "paper")) or (
                k.name in _DAY_ONLY and background == "night"
            ):
                continue
            out.append(k)
        return out

    def _layout(self, rng, background, bg_paints, horizon) -> list[_Placed]:
        kinds = self._allowed(background)
        weights = _norm([0.3, 0.4, 0.3][: self.max_groups])
        n_groups = min(len(kinds), 1 + int(rng.choice(self.max_groups, p=weights)))
        # The first group fits the background (a boat on the sea, the moon at night), the
        # others are any allowed kind; at most one of sun/moon and one of mountain/hill.
        anchors = [k for k in kinds if _ANCHOR[background](k)]
        first = [anchors[int(rng.integers(len(anchors)))]] if anchors else []
        rest = [kinds[int(i)] for i in rng.permutation(len(kinds))]
        chosen: list[ObjectKind] = []
        for kind in first + rest:
            clash = {"sun", "moon"} if kind.name in ("sun", "moon") else {"mountain", "hill"}
            limited = kind.zone == "horizon" or kind.name in ("sun", "moon")
            if kind in chosen or (limited and any(c.name in clash for c in chosen)):
                continue
            chosen.append(kind)
            if len(chosen) == n_groups:
                break
        placed: list[_Placed] = []
        for g, kind in enumerate(chosen):
            count = 1 + int(
                rng.choice(
                    kind.max_count, p=_norm([0.55, 0.25, 0.12, 0.05, 0.03][: kind.max_count])
                )
            )
            side = str(rng.choice(["left", "right", "any"], p=[0.3, 0.3, 0.4]))
            members: list[_Placed] = []
            for _ in range(count):
                box = self._place(rng, kind, count, side, background, horizon, placed + members)
                if box is not None:
                    members.append(_Placed(kind, g, box))
            near = {
                q
                for m in members
                for p in placed
                if _overlap(m.box, p.box) > 0
                for q in p.parts.values()
            }
            parts = self._pick_paints(rng, kind, [m.box for m in members], bg_paints, horizon, near)
            if not members or parts is None:
                continue
            for m in members:
                m.parts = parts
            placed += members
        return placed

    def _place(self, rng, kind, count, side, background, horizon, taken):
        """A box for one object of `kind` that does not block any `taken` one, or None."""
        h_img, w_img = self.size
        zone = placement_zone(kind, background)
        for _ in range(30):
            bh = rng.uniform(*kind.height) * h_img * (0.85 if count > 1 else 1.0)
            bw = min(bh * kind.aspect, 0.9 * w_img)
            m = 0.03 * w_img
            lo, hi = m, w_img - m - bw
            if side == "left":
                hi = min(hi, 0.4 * w_img - bw / 2)
            elif side == "right":
                lo = max(lo, 0.6 * w_img - bw / 2)
            if hi < lo:
                lo, hi = m, w_img - m - bw
            x0 = rng.uniform(lo, hi)
            y0 = self._y0(rng, zone, bh, horizon, kind.name)
            if y0 is None:
                continue
            box = (x0, y0, x0 + bw, y0 + bh)
            if not any(_blocks(box, kind, p) for p in taken):
                return box
        return None

    def _y0(self, rng, zone, bh, horizon, name) -> float | None:
        span = box_top_range(zone, name, self.size[0], horizon, bh)
        if span is None:
            return None
        lo, hi = span
        return lo if zone == "horizon" else rng.uniform(lo, hi)  # the horizon: no draw

    def _pick_paints(self, rng, kind, members, bg_paints, horizon, near) -> dict[str, int] | None:
        """Paints per part; the main one stands out from the background and the paints of the
        objects it overlaps (`near`), None when no paint can."""
        # Background regions each member overlaps; the main paint must stand out from all.
        behind: set[int | None] = set()
        for _, y0, _, y1 in members:
            if y0 < horizon:
                behind.add(bg_paints.get("sky"))
            if y1 > horizon:
                behind.add(bg_paints.get("ground", bg_paints.get("sea")))
        ok = [
            i
            for i in range(len(self.words))
            if all(self._contrast(i, b) > MIN_CONTRAST for b in behind | near)
        ]
        if not ok:
            return None
        liked = [i for i in ok if self.words[i].split()[-1] in kind.colours]
        main = int(rng.choice(liked if liked and rng.random() > 0.05 else ok))
        parts = {}
        for name, liked_words in kind.parts:
            if name == "main":
                parts[name] = main
                continue
            free = [
                i for i in range(len(self.words)) if self._contrast(i, main) > MIN_PART_CONTRAST
            ]
            seen = [i for i in free if all(self._contrast(i, b) > MIN_CONTRAST for b in behind)]
            liked = [i for i in free if self.words[i].split()[-1] in liked_words]
            liked_seen = [i for i in liked if i in seen]
            inside = name in _INTERIOR_PARTS and liked  # never touches the background
            pool = liked_seen or (liked if inside else seen) or liked or free
            if not liked and name in _OPTIONAL_PARTS:
                pool = []  # no white for a snow cap: the mountain stays one colour
            parts[name] = int(rng.choice(pool)) if pool else main
        return parts

    # ---- 3. render ------------------------------------------------------------------------------
    def _render(self, bg_paints, horizon, placed):
        """Draws background and objects; leaves out objects hidden below `MIN_VISIBLE`."""
        back = [p for p in placed if p.kind.zone == "horizon"]
        front = sorted((p for p in placed if p.kind.zone != "horizon"), key=lambda p: p.box[3])
        order = back + front
        while True:
            image, label_map, own = self._draw(bg_paints, horizon, order)
            visible = [(label_map == i + 1).sum() / max(1, own[i]) for i in range(len(order))]
            keep = [p for p, v in zip(order, visible, strict=True) if v >= MIN_VISIBLE]
            if len(keep) == len(order):
                return image, label_map, order
            order = keep

    def _draw(self, bg_paints, horizon, order):
        h, w = self.size
        image = np.empty((h, w, 3), np.uint8)
        image[:] = self._colour(bg_paints.get("sky"))
        image[horizon:] = self._colour(bg_paints.get("ground", bg_paints.get("sea")))
        label_map = np.zeros((h, w), np.int16)
        own = []
        for i, p in enumerate(order):
            masks = {name: Image.new("L", (w, h), 0) for name, _ in p.kind.parts}
            p.kind.draw({n: ImageDraw.Draw(m) for n, m in masks.items()}, Frame(p.box))
            union = np.zeros((h, w), bool)
            for name, _ in p.kind.parts:
                m = np.asarray(masks[name]) > 0
                image[m] = self._rgb[p.parts[name]]
                union |= m
            label_map[union] = i + 1
            own.append(int(union.sum()))
        return image, label_map, own

    def _colour(self, paint: int | None) -> np.ndarray:
        return self._paper_rgb if paint is None else self._rgb[paint]

    # ---- 4. metadata --------------------------------------------------------------------------
    def _objects(self, label_map: np.ndarray, order: list[_Placed]) -> list[SceneObject]:
        h, w = self.size
        groups = {g: n for n, g in enumerate(sorted({p.group for p in order}))}
        out = []
        for i, p in enumerate(order):
            ys, xs = np.nonzero(label_map == i + 1)
            x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            col = "left" if cx < w / 3 else "right" if cx > 2 * w / 3 else "centre"
            row = "top" if cy < h / 3 else "bottom" if cy > 2 * h / 3 else "middle"
            main = p.parts["main"]
            out.append(
                SceneObject(
                    i + 1,
                    p.kind.name,
                    self.words[main],
                    main,
                    dict(p.parts),
                    (x0, y0, x1, y1),
                    (cx, cy),
                    f"{row} {col}",
                    groups[p.group],
                )
            )
        return out


def placement_zone(kind: ObjectKind, background: str) -> str:
    """The zone an object of `kind` is placed in on `background` (water things on plain paper
    stand on the ground; fish float freely)."""
    if background == "paper" and kind.zone == "water":
        return "ground" if kind.name != "fish" else "free"
    return kind.zone


def box_top_range(
    zone: str, name: str, height_px: int, horizon: int, box_height: float
) -> tuple[float, float] | None:
    """The rows the top of an object's box may take in its zone (the generator's rule).

    Args:
        zone: the placement zone (`placement_zone`).
        name: the kind's name (fish swim below the horizon, boats float on it).
        height_px: the image height; horizon: the horizon row; box_height: the box's px.

    Returns:
        (lowest, highest) top row, equal for 'horizon' things; None when the box cannot fit.
    """
    h_img = height_px
    m = 0.03 * h_img
    if zone == "sky":
        lo, hi = m, horizon - box_height - 0.02 * h_img
    elif zone == "horizon":
        top = horizon - box_height + 1
        return top, top
    elif zone == "ground":
        lo = max(horizon + 0.06 * (h_img - horizon) - box_height, m)
        hi = h_img - m - box_height
    elif zone == "water":
        if name == "fish":
            lo, hi = horizon + 0.08 * (h_img - horizon), h_img - m - box_height
        else:
            lo, hi = horizon - 0.45 * box_height, h_img - m - box_height
    else:
        lo, hi = m, h_img - m - box_height
    return None if hi < lo else (lo, hi)


def allowed_rows(
    kind: ObjectKind, background: str, height_px: int, horizon: int, box_height: float
) -> tuple[float, float]:
    """The rows (top, bottom) an object of `kind`, `box_height` px tall, may cover on this
    scene: where the generator could have put it (a bird in the sky, a boat on the water).
    A box that cannot fit its zone gets the whole image."""
    span = box_top_range(
        placement_zone(kind, background), kind.name, height_px, horizon, box_height
    )
    if span is None:
        return 0.0, float(height_px)
    return span[0], span[1] + box_height


def _norm(p: Sequence[float]) -> np.ndarray:
    a = np.asarray(p, dtype=np.float64)
    return a / a.sum()


def _blocks(box, kind: ObjectKind, other: _Placed) -> bool:
    """Whether `box` overlaps `other` too much (things in front may cover the horizon)."""
    if (kind.zone == "horizon") != (other.kind.zone == "horizon") and "sky" not in (
        kind.zone,
        other.kind.zone,
    ):
        return False
    ax0, ay0, ax1, ay1 = box
    bx0, by0, bx1, by1 = other.box
    inter = _overlap(box, other.box)
    small = min((ax1 - ax0) * (ay1 - ay0), (bx1 - bx0) * (by1 - by0))
    return inter > 0.05 * small


def _overlap(a, b) -> float:
    """Area of the intersection of two (x0, y0, x1, y1) boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, iw) * max(0.0, ih)
