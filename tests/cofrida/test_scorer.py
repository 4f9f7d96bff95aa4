"""Scorers: the CLIP path on a tiny CLIP built in code, the offline scene scorer trained briefly."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("transformers")

from cofrida.scorer import (
    ClipScorer,
    SceneScorer,
    clip_score,
    load_scorer,
    retrieval_accuracy,
    scene_batch,
    train_scene_scorer,
)


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory):
    """A random tiny CLIPModel + a byte-level CLIP tokenizer, saved like a hub folder."""
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    folder = tmp_path_factory.mktemp("clip")
    chars = [chr(c) for c in range(33, 127)]
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), max_position_embeddings=77, **small,
                         bos_token_id=len(chars) * 2, eos_token_id=len(chars) * 2 + 1),
        vision_config=dict(image_size=32, patch_size=8, **small),
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(0)
    CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_clip_scorer_is_differentiable_and_per_image(tiny_clip_dir):
    scorer = load_scorer(tiny_clip_dir)
    assert isinstance(scorer, ClipScorer)
    images = torch.rand(3, 3, 40, 56, requires_grad=True)  # any size: resized + cropped in torch
    scores = scorer(images, ["a red sun", "a blue boat", "two green trees"])
    assert scores.shape == (3,) and scores.abs().max() <= 1 + 1e-5
    scores.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    one = scorer.score(images[:1].detach(), "a blue boat")
    torch.testing.assert_close(one, scores[1:2].detach() * 0 + scorer(images[:1], "a blue boat"))
    assert (clip_score(scorer, images.detach(), "a red sun") >= 0).all()
    with pytest.raises(ValueError, match="prompts"):
        scorer(images, ["only one", "two"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scene_scorer")
    scorer, metrics = train_scene_scorer(
        num_scenes=256, steps=50, out_dir=folder, batch_size=32, learning_rate=3e-3,
        eval_scenes=96, candidates=8, seed=0,
    )  # fmt: skip
    return scorer, metrics, folder


def test_scene_scorer_ranks_true_captions_above_chance(trained):
    scorer, metrics, _ = trained
    assert metrics["chance"] == 1 / 8
    assert metrics["retrieval_top1"] >= 2.5 * metrics["chance"], metrics  # held-out scenes
    images, captions = scene_batch(48, 64, seed=0, start=5000)
    true = scorer(images, captions)
    shuffled = scorer(images, captions[1:] + captions[:1])
    assert (true > shuffled).float().mean() > 0.65  # chance: 0.5


def test_scene_scorer_is_differentiable_and_round_trips(trained):
    scorer, metrics, folder = trained
    loaded = load_scorer(folder)
    assert isinstance(loaded, SceneScorer)
    assert json.loads((folder / "scene_scorer.json").read_text())["metrics"] == metrics
    images, captions = scene_batch(6, 64, seed=0, start=7000)
    images = torch.nn.functional.interpolate(images, size=(80, 96))  # other sizes are resized
    torch.testing.assert_close(loaded(images, captions), scorer(images, captions), rtol=0, atol=0)
    x = images.clone().requires_grad_(True)
    loaded(x, "a yellow sun").sum().backward()
    assert x.grad.abs().sum() > 0
    assert retrieval_accuracy(loaded, images, captions, candidates=4) >= 0


def test_the_shipped_scorer_loads_offline_and_knows_true_captions():
    """`load_scorer()` with no argument: the committed scene scorer, no download, good retrieval."""
    scorer = load_scorer()
    assert isinstance(scorer, SceneScorer)
    images, captions = scene_batch(64, 64, seed=0, start=9000)  # scenes it never saw
    accuracy = retrieval_accuracy(scorer, images, captions, candidates=8, seed=0)
    assert accuracy >= 0.6, accuracy  # chance 1/8; 32-way held-out top-1 was 0.84 in training
