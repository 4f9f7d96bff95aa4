"""Canvas, Brush and Strokes: conversions, ranges, JSON, and clear errors on bad input."""

import math

import pytest
import torch

from sim import Brush, BrushPath, Canvas, Strokes


def test_canvas_meters_pixels_round_trip():
    canvas = Canvas(0.3, 0.2, 300)
    assert canvas.size_px == (200, 300)
    xy = torch.tensor([[0.0, 0.0], [0.15, 0.1], [0.3, 0.2]])
    px = canvas.m_to_px(xy)
    assert torch.allclose(px, torch.tensor([[0.0, 0.0], [150.0, 100.0], [300.0, 200.0]]))
    assert torch.allclose(canvas.px_to_m(px), xy)
    centers = canvas.pixel_centers_m()
    assert centers.shape == (200, 300, 2)
    assert torch.allclose(centers[0, 0], torch.tensor([0.0005, 0.0005]))


def test_canvas_render_size_is_independent_of_meters():
    canvas = Canvas(0.2794, 0.2159, 256)
    big = canvas.at(512)
    assert (big.width_m, big.height_m) == (canvas.width_m, canvas.height_m)
    assert big.size_px == (396, 512)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"width_m": -1.0}, "width_m"),
        ({"height_m": float("nan")}, "height_m"),
        ({"width_px": 0}, "width_px"),
    ],
)
def test_canvas_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Canvas(**kwargs)


def test_brush_presets_and_bad_config():
    sharpie, round_brush = Brush.preset("sharpie"), Brush.preset("round")
    assert round_brush.max_width_m > sharpie.max_width_m
    assert Brush.from_dict(sharpie.to_dict()) == sharpie
    with pytest.raises(ValueError, match="unknown brush preset 'flat'"):
        Brush.preset("flat")
    with pytest.raises(ValueError, match="unknown fields \\['colour'\\]"):
        Brush.from_dict({**sharpie.to_dict(), "colour": 1})
    with pytest.raises(ValueError, match="min_width_m"):
        Brush(min_width_m=0.01, max_width_m=0.001)


def _strokes(n=3):
    return Strokes(
        position=torch.tensor([[0.05, 0.05]] * n),
        angle=torch.zeros(n),
        length=torch.full((n,), 0.02),
        bend=torch.zeros(n),
        pressure=torch.full((n,), 0.5),
        color=torch.zeros(n, 3),
    )


def test_strokes_clamp_to_brush_and_canvas():
    brush = Brush.preset("sharpie")
    canvas = Canvas()
    s = _strokes(3)
    s.length = torch.tensor([0.5, 0.0001, 0.02])
    s.bend = torch.tensor([0.5, 0.5, -0.5])
    s.pressure = torch.tensor([2.0, -1.0, 0.5])
    s.position = torch.tensor([[-1.0, 0.1], [0.1, 9.0], [0.1, 0.1]])
    s.angle = torch.tensor([4.0, -4.0, 0.0])
    c = s.clamp(brush, canvas, margin_m=0.01)
    assert c.length.tolist() == pytest.approx([0.03, 0.002, 0.02])
    max_bend = c.length / 3 * math.tan(math.radians(brush.max_angle_deg))
    assert bool((c.bend.abs() <= torch.clamp(max_bend, max=brush.max_bend_m) + 1e-9).all())
    assert c.pressure.tolist() == [1.0, 0.0, 0.5]
    assert c.position[0, 0] == pytest.approx(0.01)
    assert c.position[1, 1] == pytest.approx(canvas.height_m - 0.01)
    assert bool((c.angle.abs() <= math.pi).all())


def test_strokes_json_round_trip_and_subset():
    s = Strokes.random(5, Brush.preset("round"), Canvas(), torch.Generator().manual_seed(1))
    back = Strokes.from_json(s.to_json())
    for name in ("position", "angle", "length", "bend", "pressure", "color"):
        assert torch.equal(getattr(back, name), getattr(s, name))
    sub = s[torch.tensor([4, 0])]
    assert torch.equal(sub.position, s.position[[4, 0]])
    assert len(Strokes.cat([s, sub])) == 7


def test_strokes_errors_name_what_is_wrong():
    good = _strokes(2).to_dict()
    with pytest.raises(ValueError, match=r"Strokes\.length is NaN or infinite at stroke 1"):
        Strokes.from_dict({**good, "length": [0.01, float("nan")]})
    with pytest.raises(ValueError, match=r"Strokes.color must have shape \(N, 3\)"):
        Strokes.from_dict({**good, "color": [[0, 0], [0, 0]]})
    with pytest.raises(ValueError, match="unknown fields \\['width'\\]"):
        Strokes.from_dict({**good, "width": [1, 2]})
    with pytest.raises(ValueError, match="missing fields \\['bend'\\]"):
        Strokes.from_dict({k: v for k, v in good.items() if k != "bend"})
    with pytest.raises(ValueError, match="has 1 strokes but position has 2"):
        Strokes.from_dict({**good, "angle": [0.0]})
    with pytest.raises(ValueError, match="invalid JSON"):
        Strokes.from_json("{not json")


def test_brush_paths_follow_the_stroke():
    s = _strokes(1)
    s.angle = torch.tensor([math.pi / 2])  # pointing down the canvas
    s.bend = torch.tensor([0.004])
    (path,) = BrushPath.from_strokes(s, points_per_stroke=9)
    pts = path.points
    assert torch.allclose(pts[0, :2], torch.tensor([0.05, 0.05]))
    assert torch.allclose(pts[-1, :2], torch.tensor([0.05, 0.07]), atol=1e-7)
    # Positive bend arches towards the stroke's local -y, which is canvas +x at this angle.
    assert pts[4, 0] == pytest.approx(0.05 + 0.75 * 0.004, abs=1e-7)
    assert bool((pts[:, 2] == 0.5).all())
    assert BrushPath.from_dict(path.to_dict()).points.tolist() == pts.tolist()
    with pytest.raises(ValueError, match="shape \\(K>=2, 3\\)"):
        BrushPath(points=torch.zeros(1, 3), color=torch.zeros(3))
