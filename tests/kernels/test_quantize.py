"""quantize_ on a UNet-shaped model: which layers it replaces, and that the model still works."""

import copy
import dataclasses

import pytest
import torch
from torch import nn

from kernels import (
    SVDQuantConfig,
    SVDQuantConv1x1,
    SVDQuantConv2d,
    SVDQuantLinear,
    dequantize_,
    planned_layers,
    quantize_,
    quantized_layers,
    weight_bytes,
)
from kernels.unet_standin import UNetStandIn


def tiny_unet() -> UNetStandIn:
    torch.manual_seed(0)
    return UNetStandIn(channels=(32, 64, 128), context_dim=64)


def unet_inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sample = torch.randn(2, 4, 16, 16, generator=g)
    return sample, torch.tensor([10.0, 700.0]), torch.randn(2, 7, 64, generator=g)


CFG = SVDQuantConfig(rank=8, dtype=torch.float32, min_features=32)


@pytest.fixture(scope="module")
def quantized_unet():
    model = tiny_unet()
    quantize_(model, CFG, calibration=[unet_inputs(s) for s in range(2)])
    return model


def test_linears_and_all_wide_convs_are_replaced(quantized_unet):
    m = quantized_unet
    assert isinstance(m.down[1].conv_shortcut, SVDQuantConv1x1)  # 1x1 conv
    assert isinstance(m.down_attn[1].attn2.to_k, SVDQuantLinear)  # cross-attention 64 -> 64
    assert isinstance(m.mid_attn.ff_proj, SVDQuantLinear)
    for conv in (m.down[0].conv1, m.up[0].conv2):  # 3x3 convs too
        assert isinstance(conv, SVDQuantConv2d) and conv.kernel_size == (3, 3)
    for conv in (m.conv_in, m.conv_out):  # 4 latent channels: too narrow, stay float
        assert type(conv) is nn.Conv2d and conv.weight.dtype == torch.float32
    names = [n for n, _ in quantized_layers(m)]
    assert names == planned_layers(tiny_unet(), CFG)
    assert not any(isinstance(mod, (nn.Linear, nn.Conv2d)) for mod in m.modules()
                   if mod not in (m.conv_in, m.conv_out))  # fmt: skip
    kept = tiny_unet()
    quantize_(kept, dataclasses.replace(CFG, convs=False), calibration=[unet_inputs(0)])
    assert type(kept.down[0].conv1) is nn.Conv2d  # convs=False keeps k x k convs float


def test_quantized_unet_runs_and_stays_close_to_float():
    sample, t, ctx = unet_inputs(5)
    ref = tiny_unet()(sample, t, ctx)
    q = tiny_unet()
    cfg = dataclasses.replace(CFG, convs=False)
    quantize_(q, cfg, calibration=[unet_inputs(s) for s in range(2)])
    y = q(sample, t, ctx)
    assert y.shape == ref.shape and torch.isfinite(y).all()
    assert (y - ref).norm() / ref.norm() < 0.5  # 74 random layers, all W4A4
    q = tiny_unet()
    quantize_(q, CFG, calibration=[unet_inputs(s) for s in range(2)])
    y = q(sample, t, ctx)  # the 3x3 convs too: every layer but conv_in/out in 4 bit
    assert torch.isfinite(y).all() and (y - ref).norm() / ref.norm() < 0.7


def test_conv1x1_layer_equals_linear_layer_over_pixels():
    conv = nn.Conv2d(96, 64, 1)
    x = torch.randn(2, 96, 5, 7)
    absmax = x.abs().amax(dim=(0, 2, 3))
    qc = SVDQuantConv1x1.from_conv(conv, absmax, CFG)
    lin = nn.Linear(96, 64)
    lin.weight.data, lin.bias.data = conv.weight.data.flatten(1), conv.bias.data
    ql = SVDQuantLinear.from_float(lin, absmax, CFG)
    y = qc(x)
    assert y.shape == (2, 64, 5, 7)
    assert torch.equal(y, ql(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))


def test_filters_skip_and_min_features():
    model = nn.Sequential(nn.Linear(128, 128), nn.Linear(128, 16), nn.Linear(16, 128))
    model.add_module("head", nn.Linear(128, 128))
    cfg = SVDQuantConfig(rank=4, min_features=32, skip=("head",))
    x = torch.randn(4, 128)
    quantize_(model, cfg, calibration=[x])
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["SVDQuantLinear", "Linear", "Linear", "Linear"]


def test_single_layer_returns_the_quantized_layer():
    lin = nn.Linear(128, 64)
    q = quantize_(lin, SVDQuantConfig(rank=4), calibration=[torch.randn(3, 128)])
    assert isinstance(q, SVDQuantLinear) and q(torch.randn(3, 128)).shape == (3, 64)


def test_dequantize_gives_back_a_close_float_model(quantized_unet):
    m = copy.deepcopy(quantized_unet)
    layer = m.mid_attn.ff_proj
    w = layer.dequantize()
    ref_w = tiny_unet().mid_attn.ff_proj.weight
    assert w.shape == ref_w.shape
    assert (w - ref_w).norm() / ref_w.norm() < 0.1  # weight-only error, 4 bit + rank 8
    dequantize_(m)
    assert not list(quantized_layers(m))
    assert isinstance(m.down[1].conv_shortcut, nn.Conv2d)
    assert m(*unet_inputs(1)).shape == (2, 4, 16, 16)


def test_weight_bytes_counts_int4_scales_and_factors():
    layer = SVDQuantLinear(1280, 1280, rank=32, dtype=torch.bfloat16, bias=False, device="meta")
    model = nn.Sequential(layer)
    report = weight_bytes(model)
    q = 1280 * 640 + 1280 * 20 * 2 + 1280 * 4 + (1280 + 1280) * 32 * 2
    assert report["quantized_bytes"] == q
    assert report["ratio"] == pytest.approx(1280 * 1280 * 2 / q)
