"""Kernel 2 (W4A4 GEMM + low-rank up-projection + bias) against its reference, in the interpreter.

With power-of-two scales every float operation is exact, so that case must be bit-exact (the
int4 x int4 path). Otherwise float32 accumulation order differs: float32/float16 outputs within
1e-5 of the output scale, bfloat16 within 1e-2 (one bfloat16 ulp; the interpreter truncates
when it narrows float32 to bfloat16, GPUs round to nearest).
"""

import pytest
import torch

from kernels.quant_ref import quantize_int4_groups, w4a4_gemm_ref
from kernels.svdquant_linear import SVDQuantLinear
from kernels.w4a4_gemm import w4a4_gemm

TOL = {torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 1e-2}


def _operands(m, n, k, r, dtype, bias, seed=0):
    g = torch.Generator().manual_seed(seed)
    qx, sa = quantize_int4_groups(torch.randn(m, k, generator=g), 64)
    qw, sw = quantize_int4_groups(torch.randn(n, k, generator=g), 64, dtype)
    lr = torch.randn(m, r, generator=g)
    l2 = (torch.randn(r, n, generator=g) / 4).to(dtype)
    b = torch.randn(n, generator=g).to(dtype) if bias else None
    return qx, sa, qw, sw, lr, l2, b


@pytest.mark.parametrize(
    ("m", "n", "k", "r", "dtype", "bias", "blocks"),
    [
        (37, 100, 200, 32, torch.float16, True, (32, 64)),  # odd M, N tail, K tail
        (130, 64, 128, 40, torch.bfloat16, False, (64, 64)),
        (5, 48, 64, 0, torch.float32, True, (16, 16)),
        (64, 256, 320, 16, torch.float32, True, (64, 128)),
        (129, 130, 192, 32, torch.bfloat16, True, (128, 128)),
    ],
)
def test_matches_reference(m, n, k, r, dtype, bias, blocks):
    ops = _operands(m, n, k, r, dtype, bias)
    y = w4a4_gemm(*ops, dtype, block_m=blocks[0], block_n=blocks[1])
    y_ref = w4a4_gemm_ref(*ops, dtype)
    assert y.shape == (m, n) and y.dtype == dtype
    err = (y.float() - y_ref.float()).abs().max() / y_ref.float().abs().max()
    assert err <= TOL[dtype], err


def test_int4_path_is_bit_exact_with_power_of_two_scales():
    g = torch.Generator().manual_seed(3)
    m, n, k = 45, 70, 256
    qx = torch.randint(-128, 128, (m, k // 2), generator=g, dtype=torch.int8)  # all nibbles
    qw = torch.randint(-128, 128, (n, k // 2), generator=g, dtype=torch.int8)
    sa = 2.0 ** torch.randint(-4, 4, (m, 4), generator=g).float()
    sw = (2.0 ** torch.randint(-4, 4, (n, 4), generator=g).float()).half()
    lr, l2 = torch.zeros(m, 0), torch.zeros(0, n, dtype=torch.float16)
    y = w4a4_gemm(qx, sa, qw, sw, lr, l2, None, torch.float32, block_m=32, block_n=32)
    assert torch.equal(y, w4a4_gemm_ref(qx, sa, qw, sw, lr, l2, None, torch.float32))


def test_rejects_mismatched_operands():
    qx, sa, qw, sw, lr, l2, b = _operands(8, 16, 128, 16, torch.float16, True)
    with pytest.raises(ValueError, match="packed K"):
        w4a4_gemm(qx[:, :32], sa, qw, sw, lr, l2, b, torch.float16)
    with pytest.raises(ValueError, match="int8"):
        w4a4_gemm(qx.to(torch.uint8), sa, qw, sw, lr, l2, b, torch.float16)
    with pytest.raises(ValueError, match="bias"):
        w4a4_gemm(qx, sa, qw, sw, lr, l2, b[:8], torch.float16)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_layer_triton_backend_matches_reference_backend(dtype):
    from kernels.config import SVDQuantConfig

    lin = torch.nn.Linear(192, 96)
    x = torch.randn(2, 33, 192)
    x[..., 5] *= 40.0
    cfg = SVDQuantConfig(rank=32, dtype=dtype)
    layer = SVDQuantLinear.from_float(lin, x.abs().amax((0, 1)), cfg)
    layer.backend = "reference"
    y_ref = layer(x.to(dtype))
    layer.backend = "triton"
    y = layer(x.to(dtype))
    assert y.shape == (2, 33, 96) and y.dtype == dtype
    err = (y.float() - y_ref.float()).abs().max() / y_ref.float().abs().max()
    assert err <= TOL[dtype], err


def test_cpu_dequant_backend_computes_the_reference_function_and_tracks_weight_changes():
    """'auto' on CPU: cached dequantized weight + one matmul, equal to the integer reference
    up to float32 summation order; a changed qweight is seen at once (no stale cache)."""
    from kernels.config import SVDQuantConfig

    torch.manual_seed(0)
    lin = torch.nn.Linear(200, 96)  # K not a multiple of the group size: padding is handled
    x = torch.randn(3, 17, 200)
    x[..., 7] *= 30.0
    cfg = SVDQuantConfig(rank=16, group_size=64, dtype=torch.float32)
    layer = SVDQuantLinear.from_float(lin, x.abs().amax((0, 1)), cfg)
    y_fast = layer(x)
    layer.backend = "reference"
    y_ref = layer(x)
    assert (y_fast - y_ref).abs().max() <= 1e-4 * y_ref.abs().max()
    with torch.no_grad():
        layer.qweight.zero_()  # residual weight gone: only the low-rank branch and bias remain
    changed_ref = layer(x)
    layer.backend = "auto"
    assert (layer(x) - changed_ref).abs().max() <= 1e-4 * changed_ref.abs().max()
    assert not torch.allclose(changed_ref, y_ref, atol=1e-3)
