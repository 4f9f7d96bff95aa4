"""Simple colour words ('red', 'dark blue') for the paints of any palette, from their Lab colour.

Paint names such as 'cadmium red' or '#1f2e3d' are not what people type in a prompt; captions
use the word a child would say. The word comes from the paint's CIE Lab lightness, chroma and
hue angle, so it works for any `sim.palette.Palette`, including ones fitted to an image.
"""

from __future__ import annotations

import math

from sim.palette import Palette

_ACHROMATIC_CHROMA = 12.0  # below this chroma (Lab units) a paint reads as black, grey or white


def colour_word(lab: tuple[float, float, float]) -> str:
    """The basic colour word of one CIE Lab (D65) colour.

    Args:
        lab: (L, a, b) with L in 0..100.
    Returns:
        One of black, grey, white, red, pink, orange, brown, yellow, green, blue, purple.
    """
    L, a, b = (float(v) for v in lab)
    chroma = math.hypot(a, b)
    if chroma < _ACHROMATIC_CHROMA:
        return "black" if L < 30 else "white" if L > 80 else "grey"
    hue = math.degrees(math.atan2(b, a)) % 360.0  # sRGB red ~34, yellow ~103, blue ~296
    if hue < 20 or hue >= 345:
        return "pink" if L > 55 else "red"
    if hue < 50:
        return "red"
    if hue < 110:
        dull = chroma < 40 and L < 75  # tan, umber, ochre earths
        if hue < 75:
            return "orange" if L >= 55 and not dull else "brown"
        if L >= 65 and not dull:
            return "yellow"
        return "brown" if hue < 90 else "green"
    if hue < 185:
        return "green"
    if hue < 310:
        return "blue"
    return "pink" if L > 65 else "purple"


def colour_words(palette: Palette) -> list[str]:
    """One colour word per paint of `palette`, distinct where lightness can tell them apart.

    Paints that share a basic word get 'dark' / 'light' by lightness (two reds become 'dark
    red' and 'red'; a pale one becomes 'light ...'). Black, white and grey, and a fourth paint
    of the same word, keep the plain word.

    Args:
        palette: the robot's paints.
    Returns:
        A list of len(palette) words, in palette order.
    """
    labs = [tuple(row) for row in palette.lab.tolist()]
    words = [colour_word(lab) for lab in labs]
    out = list(words)
    for word in set(words):
        same = sorted((i for i, w in enumerate(words) if w == word), key=lambda i: labs[i][0])
        if len(same) == 1 or word in ("black", "white", "grey"):
            continue
        if len(same) == 2:
            dark, light = same
            if labs[light][0] > 70:
                out[light] = f"light {word}"
            else:
                out[dark] = f"dark {word}"
        else:
            out[same[0]] = f"dark {word}"
            out[same[-1]] = f"light {word}"
    return out
