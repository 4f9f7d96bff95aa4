"""The kinds of objects a procedural scene can hold, and how each one is drawn.

Every kind is a few bold, flat shapes (Pillow polygons, ellipses and thick lines) in a box: the
sort of thing a child paints and a robot's brush can follow. A kind has one *main* part, whose
paint names it in a caption ('a red boat'), and optional detail parts (a tree's trunk, a house's
roof) with their own preferred colours. Drawers paint each part as a binary mask (255 = paint, 0
= erase, which cuts holes such as a fish's eye); `scenes.py` turns the masks into colours and
per-object labels.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from PIL import ImageDraw

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1) in pixels, x right, y down


class Frame:
    """Maps unit coordinates (u, v) in 0..1 inside an object's box to pixels."""

    def __init__(self, box: Box) -> None:
        self.x0, self.y0, x1, y1 = box
        self.w, self.h = x1 - self.x0, y1 - self.y0

    def p(self, u: float, v: float) -> tuple[float, float]:
        """The pixel at unit coordinates (u, v)."""
        return (self.x0 + u * self.w, self.y0 + v * self.h)

    def box(self, u0: float, v0: float, u1: float, v1: float) -> list[float]:
        """The pixel box [x0, y0, x1, y1] of a unit box."""
        return [*self.p(u0, v0), *self.p(u1, v1)]

    def poly(self, *uv: tuple[float, float]) -> list[tuple[float, float]]:
        """Pixel points of unit points."""
        return [self.p(u, v) for u, v in uv]

    def circle(self, u: float, v: float, r: float) -> list[float]:
        """Box of a circle centred at (u, v) with radius r times the box's shorter side."""
        cx, cy = self.p(u, v)
        rr = r * min(self.w, self.h)
        return [cx - rr, cy - rr, cx + rr, cy + rr]

    def lw(self, frac: float) -> int:
        """A bold line width: `frac` of the shorter side, at least 2 px."""
        return max(2, round(frac * min(self.w, self.h)))


Parts = dict[str, ImageDraw.ImageDraw]  # part name -> drawing on that part's mask


@dataclass(frozen=True)
class ObjectKind:
    """One kind of object a scene can contain.

    Attributes:
        name: identifier, e.g. 'pine_tree'.
        noun: singular caption noun, e.g. 'pine tree'.
        plural: plural caption noun, e.g. 'pine trees'.
        zone: where it sits: 'sky', 'ground' (stands on the ground), 'horizon' (rises from the
            horizon, behind everything), 'water' (on or in the sea) or 'free' (anywhere).
        height: (min, max) box height as a fraction of the image height.
        aspect: box width / height.
        colours: preferred colour words for the main part (any paint when none is available).
        parts: (part name, preferred colour words) in drawing order; one of them is 'main'.
        draw: draws every part's mask in a `Frame`.
        max_count: the most copies one scene has.
    """

    name: str
    noun: str
    plural: str
    zone: str
    height: tuple[float, float]
    aspect: float
    colours: tuple[str, ...]
    parts: tuple[tuple[str, tuple[str, ...]], ...]
    draw: Callable[[Parts, Frame], None]
    max_count: int = 3


# ---- drawers: one function per kind, unit coordinates inside the object's box ------------------
def _sun(d: Parts, f: Frame) -> None:
    d["main"].ellipse(f.circle(0.5, 0.5, 0.3), fill=255)
    for k in range(8):
        a = k * math.pi / 4
        c, s = math.cos(a), math.sin(a)
        d["main"].line(
            f.poly((0.5 + 0.38 * c, 0.5 + 0.38 * s), (0.5 + 0.5 * c, 0.5 + 0.5 * s)),
            fill=255,
            width=f.lw(0.07),
        )


def _moon(d: Parts, f: Frame) -> None:
    d["main"].ellipse(f.circle(0.5, 0.5, 0.5), fill=255)
    d["main"].ellipse(f.circle(0.72, 0.38, 0.42), fill=0)


def _star(d: Parts, f: Frame) -> None:
    pts = []
    for k in range(10):
        a = -math.pi / 2 + k * math.pi / 5
        r = 0.5 if k % 2 == 0 else 0.21
        pts.append((0.5 + r * math.cos(a), 0.53 + r * math.sin(a)))
    d["main"].polygon(f.poly(*pts), fill=255)


def _cloud(d: Parts, f: Frame) -> None:
    for box in ((0.0, 0.35, 0.45, 1.0), (0.22, 0.0, 0.72, 0.9), (0.52, 0.25, 1.0, 1.0)):
        d["main"].ellipse(f.box(*box), fill=255)
    d["main"].rectangle(f.box(0.2, 0.6, 0.8, 1.0), fill=255)


def _bird(d: Parts, f: Frame) -> None:
    pts = f.poly((0.08, 0.3), (0.27, 0.12), (0.5, 0.6), (0.73, 0.12), (0.92, 0.3))
    d["main"].line(pts, fill=255, width=f.lw(0.22), joint="curve")


def _balloon(d: Parts, f: Frame) -> None:
    d["main"].ellipse(f.box(0.05, 0.0, 0.95, 0.68), fill=255)
    d["main"].polygon(f.poly((0.5, 0.64), (0.6, 0.74), (0.4, 0.74)), fill=255)
    d["main"].line(f.poly((0.5, 0.72), (0.42, 0.86), (0.55, 1.0)), fill=255, width=f.lw(0.06))


def _kite(d: Parts, f: Frame) -> None:
    d["main"].polygon(f.poly((0.5, 0.0), (1.0, 0.33), (0.5, 0.7), (0.0, 0.33)), fill=255)
    tail = f.poly((0.5, 0.68), (0.35, 0.8), (0.62, 0.9), (0.45, 1.0))
    d["main"].line(tail, fill=255, width=f.lw(0.07), joint="curve")


def _butterfly(d: Parts, f: Frame) -> None:
    for box in (
        (0.0, 0.0, 0.5, 0.6),
        (0.5, 0.0, 1.0, 0.6),
        (0.1, 0.45, 0.5, 0.95),
        (0.5, 0.45, 0.9, 0.95),
    ):
        d["main"].ellipse(f.box(*box), fill=255)
    d["body"].rounded_rectangle(f.box(0.44, 0.1, 0.56, 0.95), radius=f.lw(0.05), fill=255)


def _tree(d: Parts, f: Frame) -> None:
    d["trunk"].rectangle(f.box(0.4, 0.5, 0.6, 1.0), fill=255)
    d["main"].ellipse(f.box(0.05, 0.0, 0.95, 0.68), fill=255)


def _pine_tree(d: Parts, f: Frame) -> None:
    d["trunk"].rectangle(f.box(0.4, 0.78, 0.6, 1.0), fill=255)
    for top, base in ((0.0, 0.38), (0.2, 0.62), (0.4, 0.86)):
        half = 0.22 + 0.28 * base
        d["main"].polygon(f.poly((0.5, top), (0.5 + half, base), (0.5 - half, base)), fill=255)


def _flower(d: Parts, f: Frame) -> None:
    d["stem"].line(f.poly((0.5, 0.4), (0.5, 1.0)), fill=255, width=f.lw(0.12))
    d["stem"].ellipse(f.box(0.5, 0.62, 0.95, 0.78), fill=255)
    cx, cy, r = 0.5, 0.27, 0.27  # petals in unit-width terms
    for k in range(6):
        a = k * math.pi / 3
        u = cx + r * math.cos(a)
        v = cy + r * math.sin(a) * f.w / f.h
        d["main"].ellipse(f.circle(u, v, 0.2), fill=255)
    d["centre"].ellipse(f.circle(cx, cy, 0.2), fill=255)


def _tulip(d: Parts, f: Frame) -> None:
    d["stem"].line(f.poly((0.5, 0.4), (0.5, 1.0)), fill=255, width=f.lw(0.14))
    d["stem"].polygon(f.poly((0.5, 0.95), (0.95, 0.55), (0.55, 0.8)), fill=255)
    d["main"].ellipse(f.box(0.1, 0.1, 0.9, 0.48), fill=255)
    d["main"].polygon(
        f.poly(
            (0.1, 0.29), (0.1, 0.0), (0.3, 0.14), (0.5, 0.0), (0.7, 0.14), (0.9, 0.0), (0.9, 0.29)
        ),
        fill=255,
    )


def _grass(d: Parts, f: Frame) -> None:
    for base, tip in ((0.05, 0.0), (0.25, 0.1), (0.45, -0.05), (0.65, 0.05), (0.85, 0.15)):
        x = 0.1 + 0.8 * (base - 0.05) / 0.8
        d["main"].polygon(
            f.poly((x - 0.1, 1.0), (x + tip * 0.5 + 0.02, 0.0), (x + 0.1, 1.0)), fill=255
        )


def _mountain(d: Parts, f: Frame) -> None:
    d["main"].polygon(f.poly((0.0, 1.0), (0.5, 0.0), (1.0, 1.0)), fill=255)
    cap = f.poly((0.5, 0.0), (0.64, 0.28), (0.57, 0.23), (0.5, 0.3), (0.43, 0.23), (0.36, 0.28))
    d["snow"].polygon(cap, fill=255)


def _hill(d: Parts, f: Frame) -> None:
    d["main"].chord(f.box(0.0, 0.0, 1.0, 2.0), 180, 360, fill=255)


def _house(d: Parts, f: Frame) -> None:
    d["main"].rectangle(f.box(0.1, 0.45, 0.9, 1.0), fill=255)
    d["roof"].polygon(f.poly((0.0, 0.48), (0.5, 0.0), (1.0, 0.48)), fill=255)
    d["door"].rectangle(f.box(0.42, 0.68, 0.6, 1.0), fill=255)
    d["door"].rectangle(f.box(0.18, 0.58, 0.34, 0.74), fill=255)
    d["door"].rectangle(f.box(0.68, 0.58, 0.82, 0.74), fill=255)


def _barn(d: Parts, f: Frame) -> None:
    d["main"].polygon(
        f.poly((0.05, 0.4), (0.5, 0.05), (0.95, 0.4), (0.95, 1.0), (0.05, 1.0)), fill=255
    )
    w = f.lw(0.06)
    d["door"].rectangle(f.box(0.3, 0.55, 0.7, 1.0), outline=255, width=w)
    d["door"].line(f.poly((0.3, 0.55), (0.7, 1.0)), fill=255, width=w)
    d["door"].line(f.poly((0.7, 0.55), (0.3, 1.0)), fill=255, width=w)


def _tower(d: Parts, f: Frame) -> None:
    d["main"].rectangle(f.box(0.15, 0.22, 0.85, 1.0), fill=255)
    for u in (0.15, 0.43, 0.71):
        d["main"].rectangle(f.box(u, 0.1, u + 0.14, 0.23), fill=255)
    d["door"].rectangle(f.box(0.4, 0.35, 0.6, 0.47), fill=255)
    d["door"].chord(f.box(0.35, 0.72, 0.65, 0.86), 180, 360, fill=255)
    d["door"].rectangle(f.box(0.35, 0.79, 0.65, 1.0), fill=255)


def _boat(d: Parts, f: Frame) -> None:
    d["main"].polygon(f.poly((0.0, 0.5), (1.0, 0.5), (0.82, 1.0), (0.18, 1.0)), fill=255)
    d["main"].rectangle(f.box(0.3, 0.12, 0.62, 0.52), fill=255)
    d["main"].ellipse(f.circle(0.46, 0.3, 0.08), fill=0)


def _sailboat(d: Parts, f: Frame) -> None:
    d["sail"].polygon(f.poly((0.52, 0.0), (0.52, 0.7), (0.95, 0.7)), fill=255)
    d["sail"].polygon(f.poly((0.46, 0.1), (0.46, 0.7), (0.12, 0.7)), fill=255)
    d["main"].polygon(f.poly((0.0, 0.75), (1.0, 0.75), (0.8, 1.0), (0.2, 1.0)), fill=255)


def _fish(d: Parts, f: Frame) -> None:
    d["main"].ellipse(f.box(0.0, 0.1, 0.75, 0.9), fill=255)
    d["main"].polygon(f.poly((0.62, 0.5), (1.0, 0.1), (1.0, 0.9)), fill=255)
    d["main"].ellipse(f.circle(0.2, 0.42, 0.08), fill=0)


def _cat(d: Parts, f: Frame) -> None:
    d["main"].ellipse(f.box(0.1, 0.42, 0.8, 1.0), fill=255)
    d["main"].ellipse(f.box(0.22, 0.1, 0.68, 0.5), fill=255)
    d["main"].polygon(f.poly((0.24, 0.25), (0.26, 0.0), (0.42, 0.14)), fill=255)
    d["main"].polygon(f.poly((0.48, 0.14), (0.64, 0.0), (0.66, 0.25)), fill=255)
    d["main"].line(
        f.poly((0.72, 0.9), (0.95, 0.75), (0.9, 0.45)), fill=255, width=f.lw(0.1), joint="curve"
    )


def _car(d: Parts, f: Frame) -> None:
    d["main"].rounded_rectangle(f.box(0.0, 0.38, 1.0, 0.82), radius=f.lw(0.12), fill=255)
    d["main"].polygon(f.poly((0.18, 0.4), (0.3, 0.05), (0.7, 0.05), (0.85, 0.4)), fill=255)
    d["main"].polygon(f.poly((0.3, 0.36), (0.36, 0.14), (0.48, 0.14), (0.48, 0.36)), fill=0)
    d["main"].polygon(f.poly((0.54, 0.36), (0.54, 0.14), (0.66, 0.14), (0.74, 0.36)), fill=0)
    for u in (0.25, 0.75):
        d["wheels"].ellipse(f.circle(u, 0.8, 0.2), fill=255)


def _umbrella(d: Parts, f: Frame) -> None:
    w = f.lw(0.07)
    d["handle"].line(f.poly((0.5, 0.4), (0.5, 0.92)), fill=255, width=w)
    d["handle"].arc(f.box(0.36, 0.8, 0.52, 1.0), 0, 180, fill=255, width=w)
    d["main"].chord(f.box(0.0, 0.02, 1.0, 0.9), 180, 360, fill=255)


def _heart(d: Parts, f: Frame) -> None:
    d["main"].ellipse(f.box(0.0, 0.0, 0.55, 0.55), fill=255)
    d["main"].ellipse(f.box(0.45, 0.0, 1.0, 0.55), fill=255)
    d["main"].polygon(f.poly((0.03, 0.38), (0.97, 0.38), (0.5, 1.0)), fill=255)


def _apple(d: Parts, f: Frame) -> None:
    d["main"].ellipse(f.box(0.05, 0.18, 0.95, 1.0), fill=255)
    d["stem"].line(f.poly((0.5, 0.28), (0.55, 0.0)), fill=255, width=f.lw(0.08))
    d["leaf"].ellipse(f.box(0.56, 0.02, 0.86, 0.16), fill=255)


def _cup(d: Parts, f: Frame) -> None:
    d["main"].ellipse(f.box(0.56, 0.3, 1.0, 0.76), fill=255)
    d["main"].ellipse(f.box(0.72, 0.42, 0.9, 0.64), fill=0)
    d["main"].polygon(f.poly((0.05, 0.15), (0.78, 0.15), (0.7, 1.0), (0.13, 1.0)), fill=255)


def _mushroom(d: Parts, f: Frame) -> None:
    d["stem"].rounded_rectangle(f.box(0.34, 0.4, 0.66, 1.0), radius=f.lw(0.08), fill=255)
    d["main"].chord(f.box(0.0, 0.0, 1.0, 1.0), 180, 360, fill=255)
    for u, v in ((0.3, 0.3), (0.55, 0.18), (0.75, 0.35)):
        d["main"].ellipse(f.circle(u, v, 0.07), fill=0)


# ---- the registry -----------------------------------------------------------------------------
_WARM = ("yellow", "orange", "red")
_GREEN = ("green",)
_BROWN = ("brown", "black")
_FLOWER = ("red", "pink", "purple", "yellow", "orange", "blue")
_ANY: tuple[str, ...] = ()
_M = "main"  # marks where the main part is drawn among the detail parts


def _kind(name, noun, plural, zone, height, aspect, colours, draw, parts=(_M,), max_count=3):
    """An `ObjectKind`; `parts` lists _M and (detail name, liked colours) in drawing order."""
    parts = tuple((_M, colours) if p == _M else p for p in parts)
    return ObjectKind(name, noun, plural, zone, height, aspect, colours, parts, draw, max_count)


# fmt: off
KINDS: dict[str, ObjectKind] = {k.name: k for k in (
    # name, noun, plural, zone, height (of image), aspect (w/h), main colours, drawer, parts
    _kind("sun", "sun", "suns", "sky", (0.18, 0.28), 1.0, _WARM, _sun, max_count=1),
    _kind("moon", "moon", "moons", "sky", (0.12, 0.2), 1.0, ("yellow", "white", "orange"), _moon,
          max_count=1),
    _kind("star", "star", "stars", "sky", (0.08, 0.13), 1.0, ("yellow", "white", "orange"), _star,
          max_count=5),
    _kind("cloud", "cloud", "clouds", "sky", (0.09, 0.14), 1.8, ("white", "grey", "blue"), _cloud),
    _kind("bird", "bird", "birds", "sky", (0.04, 0.07), 2.2, ("black", "blue", "red"), _bird,
          max_count=4),
    _kind("balloon", "balloon", "balloons", "sky", (0.18, 0.26), 0.62, _ANY, _balloon),
    _kind("kite", "kite", "kites", "sky", (0.2, 0.28), 0.65, _ANY, _kite, max_count=2),
    _kind("butterfly", "butterfly", "butterflies", "free", (0.1, 0.15), 1.2, _ANY, _butterfly,
          (_M, ("body", _BROWN))),
    _kind("tree", "tree", "trees", "ground", (0.3, 0.42), 0.75, _GREEN, _tree,
          (("trunk", _BROWN), _M)),
    _kind("pine_tree", "pine tree", "pine trees", "ground", (0.3, 0.42), 0.6, _GREEN, _pine_tree,
          (("trunk", _BROWN), _M)),
    _kind("flower", "flower", "flowers", "ground", (0.18, 0.26), 0.55, _FLOWER, _flower,
          (("stem", _GREEN), _M, ("centre", ("yellow", "orange", "white")))),
    _kind("tulip", "tulip", "tulips", "ground", (0.18, 0.24), 0.45, _FLOWER[:5], _tulip,
          (("stem", _GREEN), _M)),
    _kind("grass", "tuft of grass", "tufts of grass", "ground", (0.07, 0.1), 1.6, _GREEN, _grass,
          max_count=4),
    _kind("mountain", "mountain", "mountains", "horizon", (0.3, 0.42), 1.5,
          ("grey", "brown", "blue", "purple"), _mountain, (_M, ("snow", ("white",))), max_count=2),
    _kind("hill", "hill", "hills", "horizon", (0.14, 0.22), 2.6, ("green", "brown"), _hill,
          max_count=2),
    _kind("house", "house", "houses", "ground", (0.28, 0.36), 0.9, _ANY, _house,
          (_M, ("roof", ("red", "brown", "orange", "black")), ("door", _BROWN))),
    _kind("barn", "barn", "barns", "ground", (0.28, 0.34), 1.1, ("red", "brown"), _barn,
          (_M, ("door", ("white", "yellow"))), max_count=1),
    _kind("tower", "tower", "towers", "ground", (0.36, 0.48), 0.45, ("grey", "brown", "blue"),
          _tower, (_M, ("door", ("black", "brown"))), max_count=2),
    _kind("boat", "boat", "boats", "water", (0.12, 0.17), 2.0, _ANY, _boat),
    _kind("sailboat", "sailboat", "sailboats", "water", (0.24, 0.32), 0.9, _ANY, _sailboat,
          (("sail", ("white", "yellow", "orange")), _M)),
    _kind("fish", "fish", "fish", "water", (0.09, 0.14), 1.8, _ANY, _fish, max_count=4),
    _kind("cat", "cat", "cats", "ground", (0.17, 0.24), 0.8, ("black", "orange", "grey", "brown"),
          _cat),
    _kind("car", "car", "cars", "ground", (0.13, 0.18), 2.0, _ANY, _car,
          (_M, ("wheels", ("black",)))),
    _kind("umbrella", "umbrella", "umbrellas", "ground", (0.2, 0.28), 1.0, _ANY, _umbrella,
          (("handle", ("black", "brown")), _M)),
    _kind("heart", "heart", "hearts", "free", (0.14, 0.22), 1.0, ("red", "pink", "purple"),
          _heart),
    _kind("apple", "apple", "apples", "ground", (0.14, 0.2), 0.9, ("red", "green", "yellow"),
          _apple, (_M, ("stem", ("brown",)), ("leaf", _GREEN))),
    _kind("cup", "cup", "cups", "ground", (0.16, 0.24), 1.1, _ANY, _cup, max_count=2),
    _kind("mushroom", "mushroom", "mushrooms", "ground", (0.14, 0.2), 1.0,
          ("red", "brown", "orange"), _mushroom, (("stem", ("white", "yellow")), _M)),
)}
# fmt: on
