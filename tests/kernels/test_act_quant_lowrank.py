"""Kernel 1 (smoothing + int4 activation quantization + x_s @ L1) against its reference.

Runs in the Triton interpreter (see conftest). Int outputs (packed int4, scales) must be
bit-exact; the low-rank product is a float path: float32/float16 factors within 1e-5 relative
to its scale (accumulation order), bfloat16 within 1e-2 (the interpreter multiplies bfloat16 in
float32 while the reference rounds x_s to bfloat16 first).
"""

import pytest
import torch

from kernels.act_quant_lowrank import act_quant_lowrank
from kernels.quant_ref import act_quant_lowrank_ref

TOL = {torch.float32: 1e-5, torch.float16: 1e-5, torch.bfloat16: 1e-2}


def _inputs(m, k, r, x_dtype, l_dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, k, generator=g)
    x[:, :: max(k // 8, 1)] *= 30.0  # outlier channels
    inv = torch.rand(k, generator=g) + 0.25
    l1 = torch.randn(k, r, generator=g) / k**0.5
    return x.to(x_dtype), inv, l1.to(l_dtype)


@pytest.mark.parametrize(
    ("m", "k", "r", "x_dtype", "l_dtype", "block_m"),
    [
        (1, 64, 32, torch.float16, torch.float16, 16),
        (37, 200, 32, torch.float16, torch.float16, 32),  # odd M, K tail inside a group
        (130, 128, 40, torch.bfloat16, torch.bfloat16, 64),  # rank after a LoRA: not 2^n
        (64, 320, 16, torch.float32, torch.float32, 64),
        (96, 192, 0, torch.bfloat16, torch.bfloat16, 64),  # no low-rank branch
        (16, 1280, 32, torch.float16, torch.bfloat16, 16),  # UNet width
    ],
)
def test_matches_reference(m, k, r, x_dtype, l_dtype, block_m):
    x, inv, l1 = _inputs(m, k, r, x_dtype, l_dtype)
    qx, s, lr = act_quant_lowrank(x, inv, l1, 64, block_m=block_m)
    qx_ref, s_ref, lr_ref = act_quant_lowrank_ref(x, inv, l1, 64)
    assert torch.equal(qx, qx_ref)
    assert torch.equal(s, s_ref)
    assert lr.shape == (m, r) and lr.dtype == torch.float32
    if r:
        err = (lr - lr_ref).abs().max() / lr_ref.abs().max()
        assert err <= TOL[l_dtype], err


def test_group_size_128_and_strided_input():
    x, inv, l1 = _inputs(48, 256, 32, torch.float16, torch.float16, seed=1)
    x_t = x.T.contiguous().T  # same values, column-major strides
    qx, s, lr = act_quant_lowrank(x_t, inv, l1, 128, block_m=32)
    qx_ref, s_ref, lr_ref = act_quant_lowrank_ref(x, inv, l1, 128)
    assert torch.equal(qx, qx_ref) and torch.equal(s, s_ref) and s.shape == (48, 2)
    torch.testing.assert_close(lr, lr_ref, rtol=1e-5, atol=1e-5)


def test_rejects_wrong_shapes_and_dtypes():
    x, inv, l1 = _inputs(4, 64, 16, torch.float16, torch.float16)
    with pytest.raises(ValueError, match="inv_smooth"):
        act_quant_lowrank(x, inv.half(), l1)
    with pytest.raises(ValueError, match="l1"):
        act_quant_lowrank(x, inv, l1[:32])
    with pytest.raises(ValueError, match="group_size"):
        act_quant_lowrank(x, inv, l1, 48)
