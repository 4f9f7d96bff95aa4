import numpy as np
import pytest
import torch

from sim.palette import (
    Palette,
    delta_e_cie76,
    delta_e_ciede2000,
    lab_to_srgb,
    srgb_to_lab,
)


def _t(*values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


# ---- colour science -----------------------------------------------------------------------------
def test_lab_of_reference_colours():
    lab = srgb_to_lab(_t([1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]))
    torch.testing.assert_close(lab[0], _t(100.0, 0.0, 0.0), atol=1e-3, rtol=0)
    torch.testing.assert_close(lab[1], _t(53.24, 80.09, 67.20), atol=0.01, rtol=0)
    torch.testing.assert_close(lab[2], _t(0.0, 0.0, 0.0), atol=1e-6, rtol=0)


def test_lab_round_trip():
    rgb = torch.rand(500, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    torch.testing.assert_close(lab_to_srgb(srgb_to_lab(rgb)), rgb, atol=1e-9, rtol=0)


# Pairs from Sharma, Wu and Dalal (2005), "The CIEDE2000 color-difference formula", incl. the
# hue wrap-around cases; the expected values were checked against this implementation.
SHARMA_PAIRS = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, -0.001, 2.49), (50.0, 0.0009, -2.49), 4.8045),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0009), 7.1792),
    ((50.0, 2.5, 0.0), (58.0, 24.0, 15.0), 19.4535),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
]


@pytest.mark.parametrize("lab1,lab2,expected", SHARMA_PAIRS)
def test_ciede2000_matches_published_pairs(lab1, lab2, expected):
    assert float(delta_e_ciede2000(_t(*lab1), _t(*lab2))) == pytest.approx(expected, abs=1e-4)
    assert float(delta_e_ciede2000(_t(*lab2), _t(*lab1))) == pytest.approx(expected, abs=1e-4)


def test_cie76_is_euclidean_in_lab():
    assert float(delta_e_cie76(_t(50, 0, 0), _t(53, 4, 0))) == pytest.approx(5.0)


def test_delta_e_gradients_are_finite_at_grey_black_and_identical_colours():
    rgb = torch.tensor([[0.5, 0.5, 0.5], [0.0, 0.0, 0.0], [0.2, 0.4, 0.6]], requires_grad=True)
    lab = srgb_to_lab(rgb)
    loss = delta_e_ciede2000(lab, lab.detach()).sum() + delta_e_ciede2000(lab, lab.flip(0)).sum()
    loss.backward()
    assert torch.isfinite(rgb.grad).all()


# ---- construction, presets, JSON ----------------------------------------------------------------
def test_presets():
    assert len(Palette.preset("sharpie")) == 1
    markers = Palette.preset("markers")
    assert markers.names == ["black", "red", "blue", "green"]
    acrylic = Palette.preset("acrylic")
    assert 6 <= len(acrylic) <= 8 and "titanium white" in acrylic.names
    with pytest.raises(ValueError, match="unknown palette preset"):
        Palette.preset("oils")


@pytest.mark.parametrize(
    "colors,names,match",
    [
        (torch.rand(3), None, r"shape \(P, 3\)"),
        (torch.zeros(0, 3), None, "at least one"),
        (torch.tensor([[0.1, 1.2, 0.0]]), None, "0..1"),
        (torch.tensor([[float("nan"), 0.0, 0.0]]), None, "NaN"),
        (torch.tensor([[0, 0, 0]]), None, "floats"),
        (torch.rand(2, 3), ["a"], "2 colours but 1 names"),
        (torch.rand(2, 3), ["a", "a"], "distinct"),
    ],
)
def test_bad_palettes_are_rejected(colors, names, match):
    with pytest.raises(ValueError, match=match):
        Palette(colors, names)


def test_json_round_trip_and_unknown_fields():
    palette = Palette.preset("acrylic")
    again = Palette.from_json(palette.to_json())
    assert again.names == palette.names
    assert torch.equal(again.colors, palette.colors)
    with pytest.raises(ValueError, match=r"unknown fields.*'brand'"):
        Palette.from_dict({**palette.to_dict(), "brand": "x"})
    with pytest.raises(ValueError, match="invalid JSON"):
        Palette.from_json("{not json")


def test_default_names_are_hex_codes():
    assert Palette(torch.tensor([[1.0, 0.0, 0.5]])).names == ["#ff0080"]


# ---- from an image ------------------------------------------------------------------------------
TRUE_COLOURS = torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.3, 0.7], [0.95, 0.85, 0.2]])


def _three_region_image() -> torch.Tensor:
    image = torch.empty(3, 48, 60)
    image[:, :, :20] = TRUE_COLOURS[0, :, None, None]
    image[:, :, 20:45] = TRUE_COLOURS[1, :, None, None]
    image[:, :, 45:] = TRUE_COLOURS[2, :, None, None]
    return image


def _max_delta_e_to_truth(palette: Palette, truth: torch.Tensor) -> float:
    d = delta_e_ciede2000(srgb_to_lab(truth)[:, None], srgb_to_lab(palette.colors)[None])
    return float(d.min(1).values.max())  # every true colour has an extracted one this close


def test_from_image_recovers_flat_regions():
    image = _three_region_image()
    palette = Palette.from_image(image, 3, seed=0)
    assert len(palette) == 3
    assert _max_delta_e_to_truth(palette, TRUE_COLOURS) < 2.0
    # largest region first, and the same seed gives the same palette
    assert _max_delta_e_to_truth(Palette(palette.colors[:1]), TRUE_COLOURS[1:2]) < 2.0
    assert torch.equal(Palette.from_image(image, 3, seed=0).colors, palette.colors)


def test_from_image_accepts_uint8_numpy_and_ignores_paper():
    image = _three_region_image()
    image[:, :, 45:] = 1.0  # the yellow region becomes bare paper
    array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # (H, W, 3)
    palette = Palette.from_image(array, 2, seed=3, ignore_paper=True)
    assert _max_delta_e_to_truth(palette, TRUE_COLOURS[:2]) < 2.0


@pytest.mark.parametrize(
    "image,match",
    [
        (torch.rand(8, 8, 3), r"\(3, H, W\) float"),
        (np.zeros((8, 8, 3), np.float32), "uint8"),
        ([[0.0]], "got list"),
    ],
)
def test_from_image_rejects_bad_images(image, match):
    with pytest.raises(ValueError, match=match):
        Palette.from_image(image, 2)


def test_from_image_needs_enough_colours():
    with pytest.raises(ValueError, match="fewer than n=4"):
        Palette.from_image(_three_region_image(), 4)


# ---- choosing paints ----------------------------------------------------------------------------
def test_snap_picks_the_perceptually_nearest_paint():
    palette = Palette.preset("markers")
    wanted = torch.tensor([[1.0, 0.75, 0.8], [0.3, 0.3, 0.35], [0.2, 0.8, 0.4], [0.3, 0.4, 1.0]])
    index, snapped = palette.snap(wanted)
    assert [palette.names[i] for i in index] == ["red", "black", "green", "blue"]
    assert torch.equal(snapped, palette.colors[index])
    # consistent with the pairwise Delta-E, for both metrics
    for metric in ("ciede2000", "cie76"):
        index, _ = palette.snap(wanted, metric=metric)
        assert torch.equal(index, palette.delta_e_to(wanted, metric).argmin(1))


def test_soft_assign_is_differentiable_and_anneals_to_the_hard_choice():
    palette = Palette.preset("acrylic")
    colors = torch.rand(16, 3, generator=torch.Generator().manual_seed(1))
    logits = palette.logits_from_colors(colors).requires_grad_(True)
    index, snapped = palette.snap(colors)
    assert torch.equal(logits.argmax(1), index)

    palette.soft_assign(logits, temperature=1.0).sum().backward()
    assert logits.grad.abs().sum() > 0
    cold = palette.soft_assign(logits, temperature=1e-3)
    torch.testing.assert_close(cold, snapped, atol=1e-4, rtol=0)

    logits.grad = None
    hard = palette.soft_assign(logits, temperature=1.0, hard=True)
    assert torch.equal(hard.detach(), snapped)  # forward: exactly the chosen paint
    hard.pow(2).sum().backward()
    assert logits.grad.abs().sum() > 0  # backward: the soft mixture's gradient


def test_soft_assign_rejects_bad_inputs():
    palette = Palette.preset("markers")
    with pytest.raises(ValueError, match="P=4"):
        palette.soft_assign(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="temperature"):
        palette.soft_assign(torch.zeros(2, 4), temperature=0.0)
