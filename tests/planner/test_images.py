"""Bad targets give errors that say what is wrong; good ones load at the canvas' size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from planner import Planner, load_image
from tests.planner.conftest import fast_config, small_canvas


def test_corrupt_file(tmp_path):
    bad = tmp_path / "target.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    with pytest.raises(ValueError, match=r"target image .*target.png is not a readable image"):
        load_image(bad, small_canvas())
    with pytest.raises(FileNotFoundError, match="target image not found"):
        load_image(tmp_path / "missing.png", small_canvas())


def test_wrong_size_tensor_and_wrong_aspect_file(tmp_path):
    canvas = small_canvas()
    with pytest.raises(ValueError, match=r"target is 40x48 px .* canvas renders at 48x48"):
        load_image(torch.rand(3, 48, 40), canvas)
    path = tmp_path / "wide.png"
    Image.fromarray(np.zeros((50, 100, 3), np.uint8)).save(path)
    with pytest.raises(ValueError, match="aspect"):
        load_image(path, canvas)


def test_grey_only_targets_are_refused_unless_allowed(tmp_path):
    canvas = small_canvas()
    with pytest.raises(ValueError, match="grey-only"):
        load_image(torch.rand(1, 48, 48), canvas)
    with pytest.raises(ValueError, match="grey-only"):
        load_image(np.zeros((48, 48), np.uint8), canvas)
    path = tmp_path / "grey.png"
    Image.fromarray(np.full((96, 96), 128, np.uint8), mode="L").save(path)
    with pytest.raises(ValueError, match="grey-only"):
        load_image(path, canvas)
    img = load_image(path, canvas, allow_grey=True)
    assert img.shape == (3, 48, 48) and abs(float(img.mean()) - 128 / 255) < 1e-3


def test_values_and_types_are_checked():
    canvas = small_canvas()
    with pytest.raises(ValueError, match=r"values must be in 0\.\.1"):
        load_image(torch.full((3, 48, 48), 255.0), canvas)
    bad = torch.rand(3, 48, 48)
    bad[0, 1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        load_image(bad, canvas)
    with pytest.raises(ValueError, match="must be an image path"):
        load_image([1, 2, 3], canvas)
    with pytest.raises(ValueError, match="canvas image"):
        Planner(canvas, *_tools(), fast_config()).plan(torch.rand(3, 8, 8), torch.rand(3, 48, 48))


def test_a_larger_file_of_the_same_aspect_is_resized(tmp_path):
    path = tmp_path / "big.png"
    arr = np.zeros((96, 96, 3), np.uint8)
    arr[:, :48] = (255, 0, 0)
    Image.fromarray(arr).save(path)
    img = load_image(path, small_canvas())
    assert img.shape == (3, 48, 48)
    assert float(img[0, :, :20].mean()) > 0.95 and float(img[0, :, 30:].mean()) < 0.05


def _tools():
    from sim import Brush
    from sim.palette import Palette

    return Brush.preset("round"), Palette.preset("markers")
