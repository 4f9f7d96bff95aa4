"""`cofrida train` on the paths a real model takes: LoRA on a text-to-image (sd-turbo layout)
UNet, checkpoints that hold only what trains, no validation records."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("accelerate")
pytest.importorskip("peft")

from safetensors import safe_open

from cofrida.model import EditModel, tiny
from cofrida.train import train
from tests.cofrida.test_train import config, log_of, write_shard

VAE_BLOCKS = (8, 8, 16, 16)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    write_shard(folder)
    return folder


@pytest.fixture(scope="module")
def turbo_layout(tmp_path_factory):
    """A text-to-image pipeline folder (4-channel UNet), as stabilityai/sd-turbo is laid out."""
    from diffusers import EulerDiscreteScheduler

    folder = tmp_path_factory.mktemp("turbo")
    tiny.tiny_unet(in_channels=4, cross_attention_dim=32, sample_size=4).save_pretrained(
        folder / "unet"
    )
    tiny.tiny_vae(VAE_BLOCKS).save_pretrained(folder / "vae")
    tiny.tiny_clip_text_encoder().save_pretrained(folder)
    EulerDiscreteScheduler(beta_schedule="scaled_linear", beta_start=0.00085,
                           beta_end=0.012).save_pretrained(folder / "scheduler")  # fmt: skip
    return folder


def test_lora_on_a_text_to_image_unet_learns_to_see_the_canvas(data_dir, turbo_layout, tmp_path):
    out = tmp_path / "lora"
    train(config(data_dir, turbo_layout, out, finetune="lora", lora_rank=4, max_steps=3,
                 checkpoint_every=0, learning_rate=1e-2))  # fmt: skip
    model = EditModel.from_pretrained(out / "final")
    assert torch.count_nonzero(model.unet.conv_in.weight[:, 4:]) > 0
    a = model.propose(torch.zeros(3, 32, 32), "a red sun", n=1, seed=0)
    b = model.propose(torch.ones(3, 32, 32), "a red sun", n=1, seed=0)
    assert (a - b).abs().max() > 1e-3  # two canvases, two different proposals


def _checkpoint_keys(folder) -> list[str]:
    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        return list(f.keys())


def test_lora_checkpoints_hold_the_adapters_not_the_frozen_model(data_dir, turbo_layout, tmp_path):
    out = tmp_path / "ckpt"
    cfg = dict(finetune="lora", lora_rank=4, learning_rate=1e-2, checkpoint_every=2)
    train(config(data_dir, turbo_layout, out, max_steps=2, **cfg))
    keys = _checkpoint_keys(out / "checkpoint-2")
    assert keys and all(".lora_" in k or ".conv_in." in k for k in keys), keys[:5]
    weights = (out / "checkpoint-2" / "model.safetensors").stat().st_size
    unet_and_vae = sum(p.stat().st_size for p in turbo_layout.rglob("*.safetensors"))
    assert weights < 0.2 * unet_and_vae

    # resumed to step 4: the same losses as four steps without a stop
    train(config(data_dir, turbo_layout, out, max_steps=4, **cfg), resume="latest")
    straight = tmp_path / "straight"
    train(config(data_dir, turbo_layout, straight, max_steps=4, **{**cfg, "checkpoint_every": 0}))
    assert [r["step"] for r in log_of(out)] == [1, 2, 3, 4]
    assert [r["loss"] for r in log_of(out)] == pytest.approx(
        [r["loss"] for r in log_of(straight)], rel=1e-5
    )
    resumed = EditModel.from_pretrained(out / "final").unet.state_dict()
    for name, value in EditModel.from_pretrained(straight / "final").unet.state_dict().items():
        torch.testing.assert_close(resumed[name], value, msg=name)


def test_no_validation_records_still_writes_the_final_bundle(data_dir, turbo_layout, tmp_path):
    out = tmp_path / "noval"
    result = train(config(data_dir, turbo_layout, out, max_steps=2, checkpoint_every=0,
                          validation_records=0))  # fmt: skip
    assert result["final"] and (out / "final" / "edit_model.json").is_file()
    assert not (out / "validation").exists()
    out = tmp_path / "prompts"
    train(config(data_dir, turbo_layout, out, max_steps=1, checkpoint_every=0,
                 validation_records=0, validation_prompts=["a blue boat"]))  # fmt: skip
    assert (out / "validation" / "step-000001.png").is_file()
    assert json.loads((out / "log.jsonl").read_text().splitlines()[-1])["step"] == 1


def test_stochastic_rounding_keeps_updates_below_half_a_bf16_ulp():
    from cofrida.train.optim import AdamWBF16, stochastic_round_bf16

    torch.manual_seed(0)
    x = torch.full((100_000,), 1.0 + 1e-3)  # between bf16 neighbours 1.0 and 1.0078
    assert stochastic_round_bf16(x).float().mean().item() == pytest.approx(1.001, abs=2e-4)
    p = torch.nn.Parameter(torch.ones(4096, dtype=torch.bfloat16))
    opt = AdamWBF16([p], lr=1e-4, weight_decay=0.0)
    for _ in range(300):  # 300 steps of -1e-4 each (Adam's step is ~lr): about 0.97 in all
        p.grad = torch.ones_like(p)
        opt.step()
    assert p.dtype == torch.bfloat16 and opt.state[p]["exp_avg"].dtype == torch.bfloat16
    assert p.float().mean().item() == pytest.approx(0.97, abs=3e-3)  # nearest rounding: 1.0


@pytest.fixture
def fresh_precision():
    """accelerate keeps one mixed-precision setting per process: start and leave it unset."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=False)
    yield
    AcceleratorState._reset_state(reset_partial_state=False)


def test_full_fine_tune_in_bf16_weights_learns_and_halves_checkpoints(
    turbo_layout, tmp_path, fresh_precision
):
    from tests.cofrida.test_train import write_shard as shard

    data = tmp_path / "two"
    shard(data, n=2)
    runs = {}
    for dtype in ("fp32", "bf16"):
        out = tmp_path / dtype
        train(config(data, turbo_layout, out, batch_size=2, max_steps=12, checkpoint_every=12,
                     learning_rate=2e-3, perceptual_weight=0.0, validation_records=1,
                     train_decoder=True, mixed_precision="bf16", weights_dtype=dtype))  # fmt: skip
        runs[dtype] = [r["reconstruction"] for r in log_of(out)]
        with safe_open(str(out / "checkpoint-12" / "model.safetensors"), framework="pt") as f:
            kinds = {f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118
        assert kinds == ({"BF16"} if dtype == "bf16" else {"F32"})
        runs[dtype + "_mb"] = (out / "checkpoint-12" / "model.safetensors").stat().st_size
        loaded = EditModel.from_pretrained(out / "final")
        assert loaded.unet.conv_in.weight.dtype == torch.float32
    # bf16 learns about as fast as fp32 (same data, same steps)
    assert sum(runs["bf16"][-3:]) < 0.9 * 3 * runs["bf16"][0]
    assert sum(runs["bf16"][-3:]) < 1.2 * sum(runs["fp32"][-3:])
    assert runs["bf16_mb"] < 0.55 * runs["fp32_mb"]
    with pytest.raises(ValueError, match="weights_dtype bf16 needs mixed_precision bf16"):
        config(data, turbo_layout, tmp_path / "x", weights_dtype="bf16")
