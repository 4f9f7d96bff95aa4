"""SVDQuant against naive W4A4 on synthetic layers with realistic activation outliers.

The activations have a few channels 40-80x larger than the rest (as in diffusion-model
activations), the weights a small dominant low-rank part plus noise. Measured on this setup
(seeded): SVDQuant ~0.019 relative output error, naive per-group W4A4 ~0.14 (7x worse),
naive per-tensor W4A4 ~0.46 (25x worse). The test asks for >= 4x and >= 15x.
"""

import copy

import pytest
import torch
from torch import nn

from kernels import SVDQuantConfig, quantize_
from kernels.quant_ref import naive_w4a4_ref


def outlier_activations(m: int, k: int, g: torch.Generator) -> torch.Tensor:
    """(m, k) normal activations whose every (k/16)-th channel is 40-80x larger."""
    x = torch.randn(m, k, generator=g)
    idx = torch.arange(0, k, k // 16)
    x[:, idx] *= 40.0 * (1 + torch.rand(len(idx), generator=g))
    return x


def outlier_layer(k: int, n: int, g: torch.Generator) -> nn.Linear:
    """nn.Linear (k -> n) with a rank-4 dominant part on top of noise."""
    lin = nn.Linear(k, n)
    with torch.no_grad():
        w = torch.randn(n, k, generator=g) * 0.02
        w += (torch.randn(n, 4, generator=g) @ torch.randn(4, k, generator=g)) * 0.02
        lin.weight.copy_(w)
    return lin


def rel_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    return ((y.float() - ref).norm() / ref.norm()).item()


@pytest.fixture(scope="module")
def setup():
    g = torch.Generator().manual_seed(0)
    lin = outlier_layer(640, 1280, g)
    calib = [outlier_activations(128, 640, g) for _ in range(4)]
    x = outlier_activations(256, 640, g)
    with torch.no_grad():
        return lin, calib, x, lin(x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_svdquant_error_is_far_below_naive_w4a4(setup, dtype):
    lin, calib, x, ref = setup
    model = nn.Sequential(copy.deepcopy(lin))
    quantize_(model, SVDQuantConfig(rank=32, group_size=64, dtype=dtype), calibration=calib)
    with torch.no_grad():
        err = rel_err(model(x), ref)
        naive_group = rel_err(naive_w4a4_ref(x, lin.weight, lin.bias, 64), ref)
        naive_tensor = rel_err(naive_w4a4_ref(x, lin.weight, lin.bias, None), ref)
    assert err < 0.03
    assert naive_group / err >= 4.0, (err, naive_group)
    assert naive_tensor / err >= 15.0, (err, naive_tensor)


def test_smoothing_and_low_rank_each_help(setup):
    lin, calib, x, ref = setup

    def err_of(config: SVDQuantConfig, calibration) -> float:
        model = nn.Sequential(copy.deepcopy(lin))
        with pytest.warns(UserWarning) if calibration is None else _nothing():
            quantize_(model, config, calibration=calibration)
        with torch.no_grad():
            return rel_err(model(x), ref)

    both = err_of(SVDQuantConfig(rank=32, dtype=torch.float32), calib)
    smooth_only = err_of(SVDQuantConfig(rank=0, dtype=torch.float32), calib)
    low_rank_only = err_of(SVDQuantConfig(rank=32, dtype=torch.float32), None)
    assert both < 0.5 * smooth_only and both < 0.5 * low_rank_only


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
