"""The int4 format: packing, group quantization, padding, smoothing, low-rank split."""

import pytest
import torch

from kernels.quant_ref import (
    dequantize_int4_groups,
    low_rank_split,
    pack_int4,
    quantize_int4_groups,
    smoothing_factor,
    unpack_int4,
)


def test_pack_unpack_round_trips_every_int4_pair_and_uses_low_nibble_first():
    a = torch.arange(-8, 8).repeat_interleave(16)
    b = torch.arange(-8, 8).repeat(16)
    q = torch.stack((a, b), dim=-1).flatten().to(torch.int8)[None]  # all 256 pairs
    packed = pack_int4(q)
    assert packed.shape == (1, 256) and packed.dtype == torch.int8
    assert torch.equal(unpack_int4(packed), q)
    assert pack_int4(torch.tensor([[3, -1]], dtype=torch.int8)).view(torch.uint8).item() == 0xF3


def test_group_quantization_reproduces_values_on_the_int4_grid_exactly():
    g = torch.Generator().manual_seed(0)
    q = torch.randint(-7, 8, (5, 128), generator=g).float()
    q[:, 0::64] = 7.0  # every group's absmax is 7 * scale
    scales = torch.tensor([0.5, 0.25, 2.0, 1.0, 0.125])[:, None].repeat(1, 2)
    t = (q.view(5, 2, 64) * scales[..., None]).view(5, 128)
    packed, s = quantize_int4_groups(t, 64)
    assert torch.equal(s, scales)
    assert torch.equal(dequantize_int4_groups(packed, s, 128), t)


def test_k_tail_is_zero_padded_to_a_whole_group():
    t = torch.randn(3, 100)
    packed, s = quantize_int4_groups(t, 64)
    assert packed.shape == (3, 64) and s.shape == (3, 2)
    assert torch.equal(unpack_int4(packed)[:, 100:], torch.zeros(3, 28, dtype=torch.int8))
    err = (dequantize_int4_groups(packed, s, 100) - t).abs()
    assert (err <= s.float().repeat_interleave(64, dim=1)[:, :100] / 2 + 1e-6).all()


def test_zero_rows_quantize_to_zero_without_nan():
    packed, s = quantize_int4_groups(torch.zeros(2, 64), 64)
    assert torch.equal(dequantize_int4_groups(packed, s, 64), torch.zeros(2, 64))


def test_smoothing_balances_activation_and_weight_ranges_at_alpha_half():
    x_max = torch.tensor([100.0, 1.0, 4.0])
    w = torch.tensor([[0.01, 1.0, -4.0], [0.0, 0.5, 1.0]])
    lam = smoothing_factor(x_max, w, 0.5)
    # after smoothing, max|x_j / λ_j| == max|W_j * λ_j| for every channel
    torch.testing.assert_close(x_max / lam, w.abs().amax(0) * lam)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_low_rank_split_is_exact_up_to_the_residual(dtype):
    w = torch.randn(96, 64)
    l1, l2, res = low_rank_split(w, 8, dtype)
    assert l1.shape == (64, 8) and l2.shape == (8, 96) and l1.dtype == dtype
    torch.testing.assert_close(res + (l1.float() @ l2.float()).T, w, rtol=0, atol=1e-5)
    full = low_rank_split(w, 64, torch.float32)[2]
    assert full.abs().max() < 1e-4  # full rank leaves (almost) nothing to quantize


def test_randomized_svd_branch_of_large_matrices_is_near_optimal():
    from kernels.quant_ref import RANDOMIZED_SVD_MIN, low_rank_split

    g = torch.Generator().manual_seed(0)
    n, k = RANDOMIZED_SVD_MIN, 3 * RANDOMIZED_SVD_MIN
    u = torch.linalg.qr(torch.randn(n, n, generator=g))[0]
    v = torch.linalg.qr(torch.randn(k, n, generator=g))[0]
    w = (u * torch.logspace(0, -3, n)) @ v.T  # decaying spectrum, like a trained layer
    _, _, residual = low_rank_split(w, 32, torch.float32)
    s = torch.linalg.svdvals(w)
    optimal = s[32:].pow(2).sum().sqrt()  # Eckart-Young: the best rank-32 residual
    assert residual.norm() < 1.05 * optimal
    again = low_rank_split(w, 32, torch.float32)[2]
    assert torch.equal(residual, again)  # seeded: the same factors every time
