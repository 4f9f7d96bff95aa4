"""Partial paintings by removing strokes, and the robot profiles data generation paints with."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cofrida.data.painting import compact_strokes_json, line_drawing
from cofrida.data.partials import (
    KINDS,
    choose_kinds,
    keep_strokes,
    path_points_px,
)
from cofrida.data.profiles import PROFILES, get_profile
from sim import Brush, Canvas, Strokes

CANVAS = Canvas(0.1, 0.1, 100, 100)  # 1 mm per pixel


def _strokes(xs_mm, ys_mm) -> Strokes:
    """Short horizontal strokes starting at (x, y) mm, 4 mm long."""
    n = len(xs_mm)
    pos = torch.tensor(list(zip(xs_mm, ys_mm, strict=True)), dtype=torch.float32) / 1000
    return Strokes(
        position=pos,
        angle=torch.zeros(n),
        length=torch.full((n,), 0.004),
        bend=torch.zeros(n),
        pressure=torch.full((n,), 0.5),
        color=torch.zeros(n, 3),
    )


def test_random_keeps_a_fraction_between_10_and_90_percent():
    strokes = Strokes.random(100, Brush.preset("round"), CANVAS, torch.Generator().manual_seed(0))
    for seed in range(20):
        kept, kind = keep_strokes("random", strokes, CANVAS, np.random.default_rng(seed))
        assert kind == "random" and 10 <= len(kept) <= 90
        assert np.all(np.diff(kept) > 0) and kept.dtype == np.int32


def test_first_k_is_a_prefix_of_the_painting_order():
    strokes = _strokes(range(10, 90, 4), [50] * 20)
    kept, _ = keep_strokes("first_k", strokes, CANVAS, np.random.default_rng(1))
    assert 2 <= len(kept) <= 18 and kept.tolist() == list(range(len(kept)))


def test_blank_keeps_nothing():
    kept, kind = keep_strokes("blank", _strokes([10], [10]), CANVAS, np.random.default_rng(0))
    assert kind == "blank" and len(kept) == 0


def test_region_removes_exactly_the_strokes_centred_in_one_area():
    xs, ys = np.meshgrid(np.arange(5, 95, 10), np.arange(5, 95, 10))
    strokes = _strokes(xs.ravel().tolist(), ys.ravel().tolist())
    centres = path_points_px(strokes, CANVAS).mean(1)
    for seed in range(10):
        kept, kind = keep_strokes("region", strokes, CANVAS, np.random.default_rng(seed))
        removed = np.setdiff1d(np.arange(len(strokes)), kept)
        assert kind == "region" and 0 < len(removed) < len(strokes)
        lo, hi = centres[removed].min(0), centres[removed].max(0)
        inside = np.all((centres >= lo) & (centres <= hi), axis=1)
        assert not inside[kept].any()  # the removed strokes form one rectangle


def test_object_removes_the_strokes_on_one_object():
    label_map = np.zeros((100, 100), np.int16)
    label_map[:, :50] = 1  # object 1: the left half; object 2: a box on the right
    label_map[60:90, 60:90] = 2
    strokes = _strokes([10, 20, 30, 65, 70, 60], [50, 20, 80, 70, 80, 10])
    removed_sets = set()
    for seed in range(20):
        kept, kind = keep_strokes("object", strokes, CANVAS, np.random.default_rng(seed), label_map)
        assert kind == "object"
        removed_sets.add(tuple(np.setdiff1d(np.arange(6), kept).tolist()))
    assert removed_sets == {(0, 1, 2), (3, 4)}  # stroke 5 lies on the background: always kept


def test_object_without_a_label_map_falls_back_to_region():
    strokes = _strokes([10, 60], [10, 60])
    _, kind = keep_strokes("object", strokes, CANVAS, np.random.default_rng(0), None)
    assert kind == "region"


def test_kinds_are_seeded_and_checked():
    assert choose_kinds(np.random.default_rng(3), 8) == choose_kinds(np.random.default_rng(3), 8)
    assert set(choose_kinds(np.random.default_rng(0), 200)) == set(KINDS)
    assert set(choose_kinds(np.random.default_rng(0), 20, ["blank"])) == {"blank"}
    with pytest.raises(ValueError, match="unknown partial kinds"):
        choose_kinds(np.random.default_rng(0), 2, ["smudge"])


def test_profiles_build_their_robot_and_unknown_names_list_the_choices():
    for name, profile in PROFILES.items():
        assert profile.name == name
        assert profile.canvas().width_px == profile.canvas_px
        model, kind = profile.stroke_model()
        assert kind in ("analytic", "calibrated") and model is not None
    tiny = get_profile("sharpie").with_overrides(canvas_px=64, planner={"coarse_steps": 2})
    assert tiny.planner.coarse_steps == 2 and tiny.strokes == PROFILES["sharpie"].strokes
    with pytest.raises(ValueError, match=r"acrylic.*sharpie"):
        get_profile("oil")


def test_compact_strokes_json_round_trips_float32_exactly():
    strokes = Strokes.random(30, Brush.preset("sharpie"), CANVAS, torch.Generator().manual_seed(2))
    back = Strokes.from_json(compact_strokes_json(strokes))
    for name in ("position", "angle", "length", "bend", "pressure", "color"):
        assert torch.equal(getattr(back, name), getattr(strokes, name))
    assert len(compact_strokes_json(strokes)) < 0.7 * len(strokes.to_json())


def test_line_drawing_traces_outlines_in_black_on_white():
    image = np.full((32, 32, 3), 250, np.uint8)
    image[8:24, 8:24] = (200, 30, 30)
    lines = line_drawing(image)
    assert lines.shape == (3, 32, 32)
    assert float(lines[0, 16, 16]) == 1.0 and float(lines[0, 2, 2]) == 1.0  # inside, outside
    assert float(lines[0, 16, 8]) == 0.0 and float(lines[0, 7, 16]) == 0.0  # on the edge
