"""The shipped default bundle: loads offline, is W4A4, fits the size limit, and behaves like a
co-painting model (keeps the painted half of a canvas, paints the blank half, follows the
prompt). Inputs: procedural scenes the bundle was not trained on, right half blank."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diffusers")

from cofrida.benchmarks.model import scene_inputs
from cofrida.model import EditModel, unet_io
from cofrida.model.edit_model import DEFAULT_BUNDLE, DEFAULT_FP32_BUNDLE


@pytest.fixture(scope="module")
def model():
    return EditModel.from_pretrained()  # no argument: the shipped bundle, offline


def folder_mb(folder) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def test_the_shipped_bundle_is_w4a4_at_128_px_and_within_25_mb(model):
    assert unet_io.is_quantized(model.unet)
    assert model.config.mode == "one_step" and model.config.resolution >= 128
    assert folder_mb(DEFAULT_BUNDLE) + folder_mb(DEFAULT_FP32_BUNDLE) <= 25


def test_it_keeps_the_painted_half_paints_the_blank_half_and_follows_the_prompt(model):
    kept, added, prompt_effect = [], [], []
    for canvas, caption in scene_inputs(4, 128, start=1000):
        props = model.propose(canvas, caption, n=2, seed=0)
        assert props.shape == (2, 3, 128, 128) and torch.isfinite(props).all()
        other = model.propose(canvas, "a big red sun in the sky", n=2, seed=0)
        kept.append(float((props[..., :64] - canvas[..., :64]).abs().mean()))
        added.append(float((props[..., 64:] - canvas[..., 64:]).abs().mean()))
        prompt_effect.append(float((props - other).abs().mean()))
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    # measured: 0.055 / 0.29 / 0.35 (mean absolute change in 0..1 RGB)
    assert mean(kept) < 0.1, kept  # the person's half survives
    assert mean(added) > 0.1, added  # the blank half gets painted
    assert mean(prompt_effect) > 0.1, prompt_effect  # another prompt, another painting
