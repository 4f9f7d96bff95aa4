"""quantize_ and save/load on a real diffusers UNet2DConditionModel (skipped without diffusers)."""

import pytest
import torch

from kernels import SVDQuantConfig, load_quantized, quantize_, quantized_layers, save_quantized

diffusers = pytest.importorskip("diffusers")

UNET_CONFIG = {
    "block_out_channels": (32, 64),
    "layers_per_block": 1,
    "sample_size": 16,
    "in_channels": 4,
    "out_channels": 4,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    "cross_attention_dim": 32,
}


def make_unet():
    torch.manual_seed(0)
    return diffusers.UNet2DConditionModel(**UNET_CONFIG)


def unet_inputs(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "sample": torch.randn(1, 4, 16, 16, generator=g),
        "timestep": torch.tensor([50]),
        "encoder_hidden_states": torch.randn(1, 7, 32, generator=g),
    }


def test_quantize_save_load_real_unet(tmp_path):
    ref = make_unet()
    unet = make_unet()
    cfg = SVDQuantConfig(rank=8, min_features=32, dtype=torch.float32)
    quantize_(unet, cfg, calibration=[unet_inputs(s) for s in range(2)])
    names = [n for n, _ in quantized_layers(unet)]
    assert any(n.endswith("attn2.to_k") for n in names)
    assert any(n.endswith("ff.net.0.proj") for n in names)  # GEGLU projection
    assert any(n.endswith("resnets.0.conv1") for n in names)  # 3x3 convs too
    assert any(n.endswith("downsamplers.0.conv") for n in names)  # stride-2 3x3
    assert isinstance(unet.conv_in, torch.nn.Conv2d)  # 4 input channels: stays float
    with torch.no_grad():
        x = unet_inputs(9)
        y, y_ref = unet(**x).sample, ref(**x).sample
        assert torch.isfinite(y).all() and (y - y_ref).norm() / y_ref.norm() < 0.5
        exact = tmp_path / "exact.safetensors"
        save_quantized(unet, exact, cfg, float_dtype=None)
        assert torch.equal(load_quantized(make_unet, exact)(**x).sample, y)
        path = tmp_path / "unet.safetensors"  # the other weights in 16 bit: smaller
        save_quantized(unet, path, cfg)
        assert path.stat().st_size < exact.stat().st_size
        y16 = load_quantized(make_unet, path)(**x).sample
        quantized = {n for n, _ in quantized_layers(unet)}
        for name, p in unet.named_parameters():  # what 16-bit storage does: round the rest
            if name.rpartition(".")[0] not in quantized:
                p.copy_(p.half().float())
        assert torch.equal(y16, unet(**x).sample)
