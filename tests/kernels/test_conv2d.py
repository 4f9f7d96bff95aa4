"""`SVDQuantConv2d`: k x k convolutions in W4A4 (tap-major im2col GEMM, implicit on CPU)."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from kernels import SVDQuantConfig, SVDQuantConv2d, add_lora, dequantize_, quantize_
from kernels.quant_ref import naive_w4a4_ref

CFG = SVDQuantConfig(rank=16, group_size=64, dtype=torch.float32)


def conv_case(c_in: int, c_out: int, stride: int = 1, seed: int = 0):
    """A conv and inputs with a few outlier channels (what smoothing is for)."""
    g = torch.Generator().manual_seed(seed)
    conv = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.05)
        conv.bias.copy_(torch.randn(c_out, generator=g) * 0.1)
    x = torch.randn(2, c_in, 12, 10, generator=g)
    x[:, :3] *= 20  # outlier channels
    return conv, x


@pytest.mark.parametrize("c_in,c_out,stride", [(128, 64, 1), (96, 128, 2), (64, 64, 1)])
def test_implicit_gemm_equals_the_integer_im2col_reference(c_in, c_out, stride):
    conv, x = conv_case(c_in, c_out, stride)
    q = SVDQuantConv2d.from_conv(conv, x.abs().amax(dim=(0, 2, 3)), CFG)
    y = q(x)  # CPU: activations quantized once per pixel, one F.conv2d
    q.backend = "reference"  # explicit tap-major patches, group-by-group integer GEMM
    y_ref = q(x)
    assert y.shape == conv(x).shape
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-4)


def test_error_is_small_and_beats_naive_w4a4():
    conv, x = conv_case(128, 128)
    with torch.no_grad():
        exact = conv(x)
        q = SVDQuantConv2d.from_conv(conv, x.abs().amax(dim=(0, 2, 3)), CFG)
        err = (q(x) - exact).norm() / exact.norm()
        # naive: per-token W4A4 of the channel-major im2col GEMM, no smoothing, no low rank
        cols = F.unfold(x, 3, padding=1).transpose(1, 2).reshape(-1, 128 * 9)
        naive = naive_w4a4_ref(cols, conv.weight.flatten(1), conv.bias, 64)
        naive = naive.view(2, 120, 128).transpose(1, 2).reshape(exact.shape)
        naive_err = (naive - exact).norm() / exact.norm()
    assert err < 0.1 and err < 0.7 * naive_err, (err, naive_err)  # measured 0.079 vs 0.154


def test_quantize_calibrates_convs_and_dequantize_gives_a_conv_back():
    model = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.SiLU(), nn.Conv2d(64, 64, 3, 2, 1))
    x = torch.randn(2, 64, 8, 8)
    with torch.no_grad():
        ref = model(x)
        quantize_(model, CFG, calibration=[x])
        assert all(isinstance(m, SVDQuantConv2d) for m in (model[0], model[2]))
        assert model[0].smooth.shape == (64,)  # one λ per input channel, shared by its taps
        assert (model(x) - ref).norm() / ref.norm() < 0.25  # two random W4A4 layers: 0.17
        w = model[0].dequantize()
        dequantize_(model)
        assert type(model[0]) is nn.Conv2d and model[2].stride == (2, 2)
        torch.testing.assert_close(model[0].weight, w)


def test_a_conv_lora_joins_the_low_rank_branch():
    conv, x = conv_case(64, 64)
    q = SVDQuantConv2d.from_conv(conv, x.abs().amax(dim=(0, 2, 3)), CFG)
    g = torch.Generator().manual_seed(3)
    down = torch.randn(4, 64, 3, 3, generator=g) * 0.05  # peft's conv LoRA: k x k down
    up = torch.randn(64, 4, 1, 1, generator=g) * 0.05  # and 1x1 up
    with torch.no_grad():
        before = q(x)
        add_lora(q, "style", down, up, scale=2.0)
        lora = 2.0 * F.conv2d(F.conv2d(x, down, padding=1), up)
        torch.testing.assert_close(q(x) - before, lora, rtol=1e-3, atol=2e-3)


def test_the_triton_kernels_run_a_conv_as_tap_major_patches():
    """GPU path (here in the Triton interpreter): the linear kernels on the patch matrix."""
    pytest.importorskip("triton")
    conv, x = conv_case(64, 64, stride=2)
    q = SVDQuantConv2d.from_conv(conv, x.abs().amax(dim=(0, 2, 3)), CFG)
    q.backend = "reference"
    y_ref = q(x)
    q.backend = "triton"
    torch.testing.assert_close(q(x), y_ref, rtol=1e-5, atol=1e-5)
