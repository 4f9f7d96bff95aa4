"""Plain PyTorch references of the SVDQuant W4A4 maths; the Triton kernels must match these.

Formats (shared by the references, the kernels and the saved files):

* int4 values are signed, in [-8, 7] (symmetric quantization only produces [-7, 7]), packed two
  per ``int8`` byte along K: element ``2j`` in the low nibble, ``2j + 1`` in the high nibble.
* K is zero-padded up to ``Kp``, a multiple of the group size; a group is ``group_size``
  consecutive input channels. Scales: one per (row, group), ``scale = absmax / 7``.
* Rounding is round-half-up, ``floor(v + 0.5)``, so kernels and references agree bit for bit.

Float orders of operations here are the ones the kernels use (group by group, int partial sum
times activation scale times weight scale), so the references double as test oracles.
"""

from __future__ import annotations

import torch

QMAX = 7  # symmetric int4: |q| <= 7; -8 is representable but never produced.


def padded_k(k: int, group_size: int) -> int:
    """Smallest multiple of ``group_size`` that is >= ``k``."""
    return -(-k // group_size) * group_size


def pack_int4(q: torch.Tensor) -> torch.Tensor:
    """Pack int4 values two per byte along the last dim.

    Args:
        q: integer tensor (..., 2n) with values in [-8, 7].

    Returns:
        int8 tensor (..., n); byte j holds q[..., 2j] (low nibble) and q[..., 2j+1] (high).
    """
    if q.shape[-1] % 2:
        raise ValueError(f"last dim must be even to pack int4, got {q.shape[-1]}")
    q16 = q.to(torch.int16)
    lo, hi = q16[..., 0::2] & 0xF, (q16[..., 1::2] & 0xF) << 4
    return (lo | hi).to(torch.uint8).view(torch.int8)


def unpack_int4(p: torch.Tensor) -> torch.Tensor:
    """Inverse of `pack_int4`: int8 (..., n) -> int8 (..., 2n) with values in [-8, 7]."""
    p16 = p.to(torch.int16)
    lo = ((p16 & 0xF) ^ 8) - 8  # sign-extend the low nibble
    hi = p16 >> 4  # arithmetic shift sign-extends the high nibble
    return torch.stack((lo, hi), dim=-1).flatten(-2).to(torch.int8)


def round_half_up(v: torch.Tensor) -> torch.Tensor:
    """floor(v + 0.5): the rounding the kernels use (bit-exact on CPU, GPU and interpreter)."""
    return torch.floor(v + 0.5)


def _pad_k(t: torch.Tensor, kp: int) -> torch.Tensor:
    return torch.nn.functional.pad(t, (0, kp - t.shape[-1])) if t.shape[-1] != kp else t


def quantize_int4_groups(
    t: torch.Tensor, group_size: int, scale_dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row, per-group int4 quantization of a float matrix.

    Args:
        t: float tensor (R, K), any float dtype (computed in float32).
        group_size: channels per scale along K; K is zero-padded to a multiple of it.
        scale_dtype: dtype the scales are stored in; values are quantized against the stored
            (rounded) scale, so dequantization is consistent.

    Returns:
        ``(packed, scales)``: int8 (R, Kp/2) and ``scale_dtype`` (R, Kp/group_size).
    """
    q, scales = _int4_groups(t, group_size, scale_dtype)
    return pack_int4(q.to(torch.int8).view(t.shape[0], -1)), scales


def _int4_groups(
    t: torch.Tensor, group_size: int, scale_dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer values in -8..7 as float32 (R, G, gs) and their scales (R, G) in scale_dtype."""
    r, k = t.shape
    kp = padded_k(k, group_size)
    tg = _pad_k(t.float(), kp).view(r, kp // group_size, group_size)  # (R, G, gs)
    scales = (tg.abs().amax(dim=-1) / QMAX).to(scale_dtype)  # (R, G)
    s = scales.float()
    denom = torch.where(s > 0, s, torch.ones_like(s))[..., None]
    return round_half_up(tg / denom).clamp_(-8, 7), scales


def fake_quant_act_groups(xs: torch.Tensor, group_size: int) -> torch.Tensor:
    """float32 (M, Kp): Q(xs) dequantized, the values `quantize_int4_groups` (float32 scales)
    encodes for (M, K) activations, without packing (K zero-padded to Kp)."""
    # the same arithmetic as `_int4_groups` (bit for bit), in place: this runs on every
    # activation of every W4A4 layer on CPU, where each extra temporary costs a memory pass
    r, k = xs.shape
    kp = padded_k(k, group_size)
    tg = _pad_k(xs.float(), kp).view(r, kp // group_size, group_size)  # (R, G, gs)
    scales = tg.abs().amax(dim=-1, keepdim=True).div_(QMAX)  # (R, G, 1) float32
    denom = torch.where(scales > 0, scales, torch.ones_like(scales))
    q = (tg / denom).add_(0.5).floor_().clamp_(-8, 7)
    return q.mul_(scales).view(r, kp)


def dequantize_int4_groups(packed: torch.Tensor, scales: torch.Tensor, k: int) -> torch.Tensor:
    """float32 (R, k) from `quantize_int4_groups` output (padding columns dropped)."""
    q = unpack_int4(packed).float()  # (R, Kp)
    r, kp = q.shape
    g = scales.shape[-1]
    return (q.view(r, g, kp // g) * scales.float()[..., None]).view(r, kp)[:, :k]


def act_quant_lowrank_ref(
    x: torch.Tensor, inv_smooth: torch.Tensor, l1: torch.Tensor, group_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reference of kernel 1: smooth, quantize per token and group, and project down by L1.

    Args:
        x: activations (M, K), float16/bfloat16/float32.
        inv_smooth: float32 (K,), 1 / λ (x_s = x * inv_smooth).
        l1: low-rank down-projection (K, R), float16/bfloat16/float32; R may be 0.
        group_size: channels per activation scale.

    Returns:
        ``(qx, ascales, lr)``: packed int4 int8 (M, Kp/2); float32 scales (M, Kp/group_size);
        float32 (M, R) = x_s (rounded to l1.dtype) @ L1 with float32 accumulation.
    """
    xs = x.float() * inv_smooth.float()  # (M, K)
    qx, ascales = quantize_int4_groups(xs, group_size, torch.float32)
    lr = xs.to(l1.dtype).float() @ l1.float()  # (M, R)
    return qx, ascales, lr


def w4a4_dequant_forward(
    x: torch.Tensor,
    inv_smooth: torch.Tensor,
    l1: torch.Tensor,
    l2: torch.Tensor,
    w_dq: torch.Tensor,
    bias: torch.Tensor | None,
    group_size: int,
) -> torch.Tensor:
    """The W4A4 layer's function for CPUs: one float matmul of dequantized int4 operands.

    sum_g (qx_g . qw_g) * ascale_g * wscale_g equals (Q(x) * ascales) . (Q(W) * wscales) in
    exact arithmetic, so with the weight dequantized once (`w_dq`, float32 (N, Kp)) a layer is
    one BLAS call instead of G small ones on unpacked integers. Same quantization and rounding
    as `act_quant_lowrank_ref` + `w4a4_gemm_ref`; only the float32 summation order differs.

    Args:
        x: (M, K) activations; inv_smooth: float32 (K,); l1 (K, R), l2 (R, N): low-rank factors.
        w_dq: `dequantize_int4_groups` of the residual weight, padding kept: float32 (N, Kp).
        bias: (N,) or None.
        group_size: channels per activation scale.

    Returns:
        (M, N) in x's dtype.
    """
    xs = x.float() * inv_smooth.float()  # (M, K)
    acc = fake_quant_act_groups(xs, group_size) @ w_dq.T  # (M, N)
    if l2.shape[0]:
        acc += (xs.to(l1.dtype).float() @ l1.float()).to(l2.dtype).float() @ l2.float()
    if bias is not None:
        acc += bias.float()
    return acc.to(x.dtype)


def w4a4_gemm_ref(
    qx: torch.Tensor,
    ascales: torch.Tensor,
    qw: torch.Tensor,
    wscales: torch.Tensor,
    lr: torch.Tensor,
    l2: torch.Tensor,
    bias: torch.Tensor | None,
    out_dtype: torch.dtype,
) -> torch.Tensor:
    """Reference of kernel 2: W4A4 GEMM plus the low-rank up-projection and bias.

    Args:
        qx: packed activations int8 (M, Kp/2); ascales: float32 (M, G).
        qw: packed weights int8 (N, Kp/2); wscales: (N, G) in a float dtype.
        lr: float32 (M, R) from kernel 1; l2: (R, N) float dtype (lr is rounded to it).
        bias: (N,) or None.
        out_dtype: dtype of the result.

    Returns:
        (M, N) in ``out_dtype``: sum_g (qx_g . qw_g) * ascale_g * wscale_g + lr @ L2 + b,
        accumulated in float32, each group's integer dot product exact.
    """
    m, n, g = qx.shape[0], qw.shape[0], ascales.shape[1]
    xi, wi = unpack_int4(qx).float(), unpack_int4(qw).float()  # (M, Kp), (N, Kp)
    gs = xi.shape[1] // g
    sw = wscales.float()
    acc = torch.zeros(m, n, dtype=torch.float32, device=qx.device)
    for j in range(g):  # per group: |dot| <= 64 * gs, exact in float32
        part = xi[:, j * gs : (j + 1) * gs] @ wi[:, j * gs : (j + 1) * gs].T  # (M, N)
        acc += part * ascales[:, j : j + 1] * sw[None, :, j]
    if l2.shape[0]:
        acc += lr.to(l2.dtype).float() @ l2.float()
    if bias is not None:
        acc += bias.float()
    return acc.to(out_dtype)


def smoothing_factor(
    act_absmax: torch.Tensor, weight: torch.Tensor, alpha: float, eps: float = 1e-5
) -> torch.Tensor:
    """λ_j = max|x_j|^α / max_n |W_nj|^(1-α), clamped to [1e-4, 1e4].

    Args:
        act_absmax: float (K,), per-input-channel max |x| over the calibration batches.
        weight: (N, K) original weight.
        alpha: migration strength in [0, 1].

    Returns:
        float32 (K,). Use as x_s = x / λ, W_s = W * λ (per column).
    """
    ax = act_absmax.float().clamp(min=eps)
    aw = weight.float().abs().amax(dim=0).clamp(min=eps)
    return (ax.pow(alpha) / aw.pow(1.0 - alpha)).clamp(1e-4, 1e4)


RANDOMIZED_SVD_MIN = 256  # min(N, K) from which the SVD branch uses a randomized SVD


def low_rank_split(
    w_s: torch.Tensor, rank: int, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rank-r SVD branch of a smoothed weight and what is left for 4 bits.

    Matrices with min(N, K) >= `RANDOMIZED_SVD_MIN` take a randomized SVD (Halko et al.,
    ``torch.svd_lowrank`` with r + 16 columns and 4 power iterations, seeded, so repeatable):
    a full SVD of an SD-1.5 3x3 conv (1280 x 11520) takes about a minute on two CPU cores,
    the randomized one about 2 s. Any factors are valid: the residual is computed from them.

    Args:
        w_s: smoothed weight (N, K).
        rank: r <= min(N, K); 0 gives empty factors.
        dtype: storage dtype of L1 and L2.

    Returns:
        ``(l1, l2, residual)``: L1 (K, r) and L2 (r, N) in ``dtype`` with L1 @ L2 ≈ W_s^T,
        and float32 (N, K) residual W_s - (L1 L2)^T computed from the rounded factors.
    """
    w = w_s.float()
    n, k = w.shape
    rank = min(rank, n, k)
    if rank > 0 and min(n, k) >= RANDOMIZED_SVD_MIN:
        with torch.random.fork_rng(devices=[w.device] if w.is_cuda else []):
            torch.manual_seed(0)
            u, s, v = torch.svd_lowrank(w, q=min(rank + 16, n, k), niter=4)
        vh = v.T  # (q, K)
    else:
        u, s, vh = torch.linalg.svd(w, full_matrices=False)  # u (N, q), s (q,), vh (q, K)
    root = s[:rank].sqrt()
    l1 = (vh[:rank].T * root).to(dtype)  # (K, r)
    l2 = (u[:, :rank] * root).T.contiguous().to(dtype)  # (r, N)
    residual = w - (l1.float() @ l2.float()).T
    return l1, l2, residual


def fake_quant_int4(t: torch.Tensor, group_size: int | None) -> torch.Tensor:
    """Quantize-dequantize (R, K) to symmetric int4, per row and group, or per tensor if None."""
    if group_size is None:
        s = t.float().abs().amax().clamp(min=1e-12) / QMAX
        return round_half_up(t.float() / s).clamp(-8, 7) * s
    packed, scales = quantize_int4_groups(t, group_size)
    return dequantize_int4_groups(packed, scales, t.shape[-1])


def naive_w4a4_ref(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, group_size: int | None
) -> torch.Tensor:
    """Baseline W4A4 without smoothing or low rank: float32 (M, N).

    Args:
        x: (M, K); weight: (N, K); bias: (N,) or None.
        group_size: per-group scales along K for both operands, or None for one scale per
            tensor.
    """
    y = fake_quant_int4(x, group_size) @ fake_quant_int4(weight, group_size).T
    return y + bias.float() if bias is not None else y
