"""LoRA adapters join the low-rank branch without touching the int4 weights, and leave exactly."""

import pytest
import torch
from torch import nn

from kernels import (
    SVDQuantConfig,
    SVDQuantLinear,
    add_lora,
    add_lora_to_model,
    quantize_,
    remove_lora,
    remove_lora_from_model,
)


@pytest.fixture
def layer() -> SVDQuantLinear:
    torch.manual_seed(0)
    x = torch.randn(16, 128)
    x[:, 3] *= 50.0
    cfg = SVDQuantConfig(rank=16, dtype=torch.float32)
    return SVDQuantLinear.from_float(nn.Linear(128, 96), x.abs().amax(0), cfg)


def test_adapter_adds_its_product_in_the_original_space(layer):
    x = torch.randn(10, 128)
    down, up = torch.randn(4, 128) / 10, torch.randn(96, 4) / 10
    y0 = layer(x)
    add_lora(layer, "style", down, up, scale=0.5)
    assert layer.rank == 20 and layer.adapters == {"style": (16, 20)}
    expected = y0 + 0.5 * (x @ down.T @ up.T)
    torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-4)


def test_adding_does_not_requantize_and_removing_is_exact(layer):
    x = torch.randn(10, 128)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    y0 = layer(x)
    add_lora(layer, "a", torch.randn(4, 128), torch.randn(96, 4))
    add_lora(layer, "b", torch.randn(8, 128), torch.randn(96, 8), scale=2.0)
    for key in ("qweight", "wscales", "smooth", "bias"):
        assert torch.equal(layer.state_dict()[key], before[key])
    remove_lora(layer, "a")
    assert layer.adapters == {"b": (16, 24)}  # later adapter shifted down
    remove_lora(layer, "b")
    after = layer.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert torch.equal(layer(x), y0)


def test_bad_adapters_are_refused(layer):
    with pytest.raises(ValueError, match="do not fit"):
        add_lora(layer, "x", torch.randn(4, 64), torch.randn(96, 4))
    add_lora(layer, "x", torch.randn(4, 128), torch.randn(96, 4))
    with pytest.raises(ValueError, match="already"):
        add_lora(layer, "x", torch.randn(4, 128), torch.randn(96, 4))
    with pytest.raises(KeyError):
        remove_lora(layer, "y")


def test_model_level_add_and_remove_round_trip():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(64, 128), nn.GELU(), nn.Linear(128, 64))
    x = torch.randn(5, 64)
    quantize_(model, SVDQuantConfig(rank=8), calibration=[x])
    y0 = model(x)
    weights = {"0": (torch.randn(2, 64), torch.randn(128, 2)), "2": (torch.randn(2, 128), None)}
    weights["2"] = (weights["2"][0], torch.randn(64, 2))
    add_lora_to_model(model, "ad", weights, scale=0.1)
    assert not torch.equal(model(x), y0)
    assert remove_lora_from_model(model, "ad") == 2
    assert torch.equal(model(x), y0)
