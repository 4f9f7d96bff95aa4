"""Exports: JSON round trip, SVG that parses, G-code that stays on the canvas, GIF preview."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
import torch
from PIL import Image

from planner import GcodeConfig, Plan
from planner.animation import plan_frames, save_animation

_WORD = re.compile(r"([GXYZFM])(-?\d+(?:\.\d+)?)")


def parse_gcode(text: str) -> list[dict]:
    """A small GRBL parser: one dict per command line, {letter: value}, comments stripped;
    tracks the modal position so every returned move has X, Y and Z."""
    state = {"X": None, "Y": None, "Z": None}
    moves = []
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        words = {k: float(v) for k, v in _WORD.findall(line)}
        assert words, f"unparsable line: {raw!r}"
        if words.get("G") in (0.0, 1.0):
            state.update({k: words[k] for k in "XYZ" if k in words})
            moves.append({**words, **{f"at_{k}": v for k, v in state.items()}})
        else:
            moves.append(words)
    return moves


def test_json_round_trip_keeps_everything(planned, tmp_path):
    _, _, plan, _ = planned
    again = Plan.from_json(plan.to_json())
    assert again.strokes.to_json() == plan.strokes.to_json()
    assert again.order == plan.order and again.steps == plan.steps
    assert again.canvas == plan.canvas and again.brush == plan.brush
    assert again.palette.names == plan.palette.names and again.dip_every == plan.dip_every
    path = plan.save(tmp_path / "plan.json")
    assert Plan.load(path).order == plan.order
    for a, b in zip(again.paths(), plan.paths(), strict=True):
        assert torch.equal(a.points, b.points) and a.meta == b.meta


def test_json_errors_name_the_problem(planned):
    _, _, plan, _ = planned
    d = plan.to_dict()
    with pytest.raises(ValueError, match="unknown fields"):
        Plan.from_dict({**d, "colour": 1})
    with pytest.raises(ValueError, match="'steps' do not match"):
        Plan.from_dict({**d, "steps": d["steps"][1:]})
    with pytest.raises(ValueError, match="missing fields"):
        Plan.from_dict({k: v for k, v in d.items() if k != "order"})
    with pytest.raises(ValueError, match="invalid JSON"):
        Plan.from_json("{not json")


def test_svg_parses_with_one_path_per_stroke_in_palette_colours(planned):
    _, _, plan, _ = planned
    root = ET.fromstring(plan.to_svg())
    ns = "{http://www.w3.org/2000/svg}"
    paths = root.findall(f".//{ns}path")
    assert len(paths) == len(plan)
    hexes = {
        "#{:02x}{:02x}{:02x}".format(*(round(float(v) * 255) for v in c))
        for c in plan.palette.colors
    }
    for g in root.findall(f"{ns}g"):
        assert g.get("stroke") in hexes
    w, h = (float(v) for v in root.get("viewBox").split()[2:])
    assert (w, h) == pytest.approx((plan.canvas.width_m * 1000, plan.canvas.height_m * 1000))


def test_gcode_moves_stay_inside_the_canvas(planned):
    _, _, plan, _ = planned
    cfg = GcodeConfig(origin_mm=(10.0, 20.0))
    cmds = parse_gcode(plan.to_gcode(cfg))
    assert cmds[0] == {"G": 21.0} and cmds[1] == {"G": 90.0}
    w, h = plan.canvas.width_m * 1000, plan.canvas.height_m * 1000
    xy_moves = [c for c in cmds if "X" in c or "Y" in c]
    assert len(xy_moves) >= len(plan) * 16
    for c in xy_moves:
        assert 10.0 <= c["at_X"] <= 10.0 + w and 20.0 <= c["at_Y"] <= 20.0 + h, c
        if c["G"] == 0.0:
            assert c["at_Z"] == cfg.z_up_mm  # travel only with the brush lifted
        else:
            assert cfg.z_touch_mm - cfg.press_mm <= c["at_Z"] <= cfg.z_touch_mm
            assert c["at_Z"] < cfg.z_up_mm  # painting only with the brush down
    pauses = sum(1 for c in cmds if c.get("M") == 0.0)
    assert pauses == sum(s["op"] in ("clean", "dip") for s in plan.steps)
    assert cmds[-1] == {"M": 2.0}


def test_gcode_with_stations_visits_them_instead_of_pausing(planned):
    _, _, plan, _ = planned
    stations = tuple((-30.0, 10.0 * i) for i in range(len(plan.palette)))
    cfg = GcodeConfig(paint_stations_mm=stations, water_station_mm=(-60.0, 0.0))
    cmds = parse_gcode(plan.to_gcode(cfg))
    assert not any(c.get("M") == 0.0 for c in cmds)
    water = [c for c in cmds if c.get("at_X") == -60.0 and "X" in c]
    assert len(water) == plan.paint_changes
    with pytest.raises(ValueError, match="stations"):
        plan.to_gcode(GcodeConfig(paint_stations_mm=((0, 0),), water_station_mm=(0, 0)))


def test_gif_preview_shows_the_plan_being_painted(planned, tmp_path):
    planner, _, plan, _ = planned
    frames = plan_frames(plan, frames=5)
    assert len(frames) == 6 and frames[0].shape == (48, 48, 3)
    assert frames[0].min() == 255  # blank paper first
    final = planner.render(plan)
    assert abs(frames[-1].astype(float) / 255 - final.permute(1, 2, 0).numpy()).max() < 0.01
    path = save_animation(frames, tmp_path / "preview.gif")
    with Image.open(path) as gif:
        assert gif.n_frames >= 6 and gif.size == (48, 48)
    with pytest.raises(ValueError, match="unsupported file type"):
        save_animation(frames, tmp_path / "preview.avi")


def test_a_bent_stroke_over_the_margin_is_cut_at_the_edge_not_folded_back(planned):
    """A curved stroke that leaves the canvas minus its margin is painted up to the edge; the
    waypoints outside are dropped, not clamped onto the edge (which turned the path back on
    itself: a corner the arm's safety check refused, seen in `cofrida bench turn`)."""
    from planner.plan import clip_to_box
    from robot.safety import peak_accel

    t = torch.linspace(0, 1, 16)
    # an arc heading out over the left margin (x < 5 mm), its y going down then up
    points = torch.stack([0.008 - 0.02 * t, 0.10 + 0.004 * (t - 0.5) ** 2, 0.5 + 0 * t], 1)
    lo, hi = torch.tensor([0.005, 0.005]), torch.tensor([0.2, 0.2])
    cut = clip_to_box(points, lo, hi)
    assert bool((cut[:, :2] >= lo - 1e-9).all()) and len(cut) >= 2
    assert torch.equal(cut[0], points[0])  # the start is inside: kept as it is
    assert float(cut[-1, 0]) == pytest.approx(0.005, abs=1e-6)  # the cut ends on the edge
    assert len(cut) < len(points)
    clamped = points.clone()
    clamped[:, :2] = torch.maximum(torch.minimum(clamped[:, :2], hi), lo)
    assert peak_accel(clamped.double().numpy(), 0.05)[0] > 10  # folded: refused by the arm
    assert peak_accel(cut.double().numpy(), 0.05)[0] < 2  # cut: a smooth arc end

    _, _, plan, _ = planned
    for path in plan.paths():  # every path of a real plan stays inside and is smooth
        xy = path.points[:, :2]
        assert float(xy.min()) >= plan.margin_m - 1e-6
        assert peak_accel(path.points.double().numpy(), 0.05)[0] < 2
