"""The pooled-prompt path into the UNet's time embedding (`EditModel.add_pooled_text`,
``cofrida train --pooled-text``): it changes nothing until trained, trains in full and LoRA
runs, survives saving, W4A4 and multi-step sampling, and carries the prompt by itself."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("accelerate")
pytest.importorskip("peft")

from cofrida.model import EditModel, tiny, unet_io
from cofrida.train import train
from tests.cofrida.test_train import config, data_dir, init_model  # noqa: F401


def _model() -> EditModel:
    return tiny.build_edit_model("tiny_clip", resolution=32, vae_blocks=(8, 8, 16, 16), seed=0)


def test_the_new_path_changes_nothing_until_trained_and_survives_saving(tmp_path):
    model = _model()
    canvas = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    before = model.propose(canvas, "a red house", n=2, seed=3)
    model.add_pooled_text()
    assert unet_io.uses_pooled_text(model.unet)
    torch.testing.assert_close(model.propose(canvas, "a red house", n=2, seed=3), before)

    with torch.no_grad():  # a trained path: the painting now depends on it
        torch.nn.init.normal_(model.unet.class_embedding.linear_2.weight, std=0.5)
    live = model.propose(canvas, "a red house", n=2, seed=3)
    assert float((live - before).abs().mean()) > 1e-3
    model.save_pretrained(tmp_path / "bundle")
    loaded = EditModel.from_pretrained(tmp_path / "bundle")
    assert loaded.unet.config.class_embed_type == "projection"
    torch.testing.assert_close(loaded.propose(canvas, "a red house", n=2, seed=3), live)
    # multi-step sampling (three guidance branches, the empty prompt among them) uses it too
    steps = loaded.propose(canvas, "a red house", n=1, seed=3, mode="multi_step",
                           num_inference_steps=2)  # fmt: skip
    assert torch.isfinite(steps).all()
    model.add_pooled_text()  # a second call keeps the trained path
    assert float(model.unet.class_embedding.linear_2.weight.detach().abs().sum()) > 0


def test_the_path_alone_tells_prompts_apart():
    """With cross-attention blind to the prompt (all prompts the same per-token states), only
    the pooled path can make two prompts paint differently."""
    model = _model()
    model.add_pooled_text()
    with torch.no_grad():
        torch.nn.init.normal_(model.unet.class_embedding.linear_2.weight, std=0.5)
    encode = model._encode_prompt
    same = encode("a painting").hidden_states

    def blind(prompt):
        text = encode(prompt)
        text.hidden_states = same
        return text

    model._encode_prompt = blind
    canvas = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    red = model.propose(canvas, "a red house", n=1, seed=0)
    boat = model.propose(canvas, "a small blue boat on the water", n=1, seed=0)
    assert float((red - boat).abs().mean()) > 1e-3


def test_training_adds_and_trains_the_path_in_full_and_lora_runs(
    data_dir,  # noqa: F811
    init_model,  # noqa: F811
    tmp_path,
):
    for finetune in ("full", "lora"):
        out = tmp_path / finetune
        cfg = config(data_dir, init_model, out, pooled_text=True, finetune=finetune, max_steps=2,
                     checkpoint_every=0, learning_rate=1e-2)  # fmt: skip
        assert train(cfg)["final"]
        trained = EditModel.from_pretrained(out / "final")
        assert unet_io.uses_pooled_text(trained.unet), finetune
        weight = trained.unet.class_embedding.linear_2.weight
        assert float(weight.detach().abs().sum()) > 0, f"{finetune}: the path did not train"


def test_w4a4_bundle_with_the_path_proposes_what_it_did_in_memory(tmp_path):
    from cofrida.model.quantize import quantize_edit_model

    model = _model()
    model.add_pooled_text()
    with torch.no_grad():
        torch.nn.init.normal_(model.unet.class_embedding.linear_2.weight, std=0.5)
    canvas = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    fp32 = model.propose(canvas, "a red sun", n=1, seed=0)
    quantize_edit_model(model, [canvas], ["a red sun"], dtype=torch.float32)
    quantized = model.propose(canvas, "a red sun", n=1, seed=0)
    assert float((quantized - fp32).abs().mean()) < 0.05
    model.save_pretrained(tmp_path / "w4a4")
    loaded = EditModel.from_pretrained(tmp_path / "w4a4")
    assert unet_io.uses_pooled_text(loaded.unet)
    torch.testing.assert_close(loaded.propose(canvas, "a red sun", n=1, seed=0), quantized)
