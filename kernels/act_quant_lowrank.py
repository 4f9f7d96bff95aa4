"""Kernel 1: activation smoothing + int4 quantization fused with the low-rank down-projection.

One pass over x (M, K): each program owns BLOCK_M tokens and walks K one quantization group at a
time; for each group it smooths (x * 1/λ), finds the per-token absmax, writes packed int4 and the
scale, and accumulates x_s @ L1 for the low-rank branch, so the branch costs no extra read of x.
Even and odd channels are loaded as two half-group tiles: that gives the nibble pairs for packing
without a register shuffle, and L1's rows are split the same way for the two MMAs.

Reference: `kernels.quant_ref.act_quant_lowrank_ref` (same maths, same rounding: packed int4 and
scales are bit-exact; the low-rank product matches to float32 accumulation order).

This module imports triton at import time: import it only when a kernel is to run (the layers
do so lazily), and set ``TRITON_INTERPRET=1`` before that to run on CPU.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels._triton_launch import check_device, interpreting, next_pow2

# GPU autotune table: the kernel is memory-bound (reads x once), so only the token tile varies.
_CONFIGS = [
    triton.Config({"BLOCK_M": bm}, num_warps=w, num_stages=s)
    for bm, w, s in [(32, 4, 2), (64, 4, 2), (64, 4, 3), (128, 8, 2), (128, 4, 3)]
]


@triton.jit
def _act_quant_lowrank_kernel(
    x_ptr,  # (M, K) float
    inv_ptr,  # (K,) float32, 1 / smoothing
    l1_ptr,  # (K, R) float
    q_ptr,  # (M, Kp/2) int8 out
    s_ptr,  # (M, G) float32 out
    lr_ptr,  # (M, R) float32 out
    M,
    K,
    R,
    NUM_GROUPS,
    stride_xm,
    stride_xk,
    stride_l1k,
    stride_l1r,
    stride_qm,
    stride_sm,
    stride_lrm,
    GROUP: tl.constexpr,
    BLOCK_R: tl.constexpr,
    HAS_LR: tl.constexpr,
    LR_PREC: tl.constexpr,
    DOT_F32: tl.constexpr,
    BLOCK_M: tl.constexpr,
):
    HALF: tl.constexpr = GROUP // 2
    pid = tl.program_id(0)
    offs_m = pid * BLOCK_M + tl.arange(0, BLOCK_M)
    m_mask = offs_m < M
    offs_h = tl.arange(0, HALF)
    offs_r = tl.arange(0, BLOCK_R)
    r_mask = offs_r < R
    acc = tl.zeros((BLOCK_M, BLOCK_R), dtype=tl.float32)
    for g in range(0, NUM_GROUPS):
        k_even = g * GROUP + 2 * offs_h  # (HALF,)
        k_odd = k_even + 1
        e_mask = k_even < K
        o_mask = k_odd < K
        x_rows = x_ptr + offs_m[:, None] * stride_xm
        xe = tl.load(x_rows + k_even[None, :] * stride_xk, mask=m_mask[:, None] & e_mask[None, :])
        xo = tl.load(x_rows + k_odd[None, :] * stride_xk, mask=m_mask[:, None] & o_mask[None, :])
        ie = tl.load(inv_ptr + k_even, mask=e_mask, other=0.0)
        io = tl.load(inv_ptr + k_odd, mask=o_mask, other=0.0)
        xe = tl.where(m_mask[:, None] & e_mask[None, :], xe.to(tl.float32), 0.0) * ie[None, :]
        xo = tl.where(m_mask[:, None] & o_mask[None, :], xo.to(tl.float32), 0.0) * io[None, :]
        # per-token scale of this group; round-half-up with IEEE division (bit-exact to torch)
        amax = tl.maximum(tl.max(tl.abs(xe), axis=1), tl.max(tl.abs(xo), axis=1))  # (BLOCK_M,)
        scale = tl.math.div_rn(amax, 7.0)
        denom = tl.where(scale > 0.0, scale, 1.0)[:, None]
        qe = tl.floor(tl.math.div_rn(xe, denom) + 0.5)
        qo = tl.floor(tl.math.div_rn(xo, denom) + 0.5)
        qe = tl.minimum(tl.maximum(qe, -8.0), 7.0).to(tl.int32)
        qo = tl.minimum(tl.maximum(qo, -8.0), 7.0).to(tl.int32)
        packed = ((qe & 15) | ((qo & 15) << 4)).to(tl.int8)  # (BLOCK_M, HALF)
        q_cols = g * HALF + offs_h
        tl.store(
            q_ptr + offs_m[:, None] * stride_qm + q_cols[None, :], packed, mask=m_mask[:, None]
        )
        tl.store(s_ptr + offs_m * stride_sm + g, scale, mask=m_mask)
        if HAS_LR:
            l1e = tl.load(
                l1_ptr + k_even[:, None] * stride_l1k + offs_r[None, :] * stride_l1r,
                mask=e_mask[:, None] & r_mask[None, :],
                other=0.0,
            )  # (HALF, BLOCK_R)
            l1o = tl.load(
                l1_ptr + k_odd[:, None] * stride_l1k + offs_r[None, :] * stride_l1r,
                mask=o_mask[:, None] & r_mask[None, :],
                other=0.0,
            )
            if DOT_F32:  # interpreter: its bfloat16 dot and fp32->bf16 rounding are wrong
                acc = tl.dot(xe, l1e.to(tl.float32), acc=acc, input_precision="ieee")
                acc = tl.dot(xo, l1o.to(tl.float32), acc=acc, input_precision="ieee")
            else:
                acc = tl.dot(xe.to(l1e.dtype), l1e, acc=acc, input_precision=LR_PREC)
                acc = tl.dot(xo.to(l1o.dtype), l1o, acc=acc, input_precision=LR_PREC)
    if HAS_LR:
        lr_ptrs = lr_ptr + offs_m[:, None] * stride_lrm + offs_r[None, :]
        tl.store(lr_ptrs, acc, mask=m_mask[:, None] & r_mask[None, :])


_autotuned = triton.autotune(configs=_CONFIGS, key=["K", "R"])(_act_quant_lowrank_kernel)


def act_quant_lowrank(
    x: torch.Tensor,
    inv_smooth: torch.Tensor,
    l1: torch.Tensor,
    group_size: int = 64,
    *,
    block_m: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Smooth, quantize to int4 per token and group, and compute x_s @ L1, in one pass over x.

    Args:
        x: activations (M, K), float16/bfloat16/float32, any strides.
        inv_smooth: float32 (K,), contiguous: 1 / λ.
        l1: low-rank down-projection (K, R), float16/bfloat16 (float32 computes in IEEE fp32);
            R may be 0. x_s is rounded to l1's dtype for the product, except for bfloat16 in
            the interpreter, which multiplies in float32 (its bfloat16 maths is unreliable).
        group_size: channels per scale, a power of two >= 32.
        block_m: token tile; None autotunes on GPU and uses 64 in the interpreter. A GPU needs
            >= 16.

    Returns:
        ``(qx, ascales, lr)``: int8 (M, Kp/2) packed int4 (Kp = K rounded up to the group
        size, padding is zero), float32 (M, Kp/group_size) scales (absmax / 7), float32 (M, R).
    """
    if x.dim() != 2 or not x.is_floating_point():
        raise ValueError(f"x must be a 2-D float tensor, got {tuple(x.shape)} {x.dtype}")
    m, k = x.shape
    if inv_smooth.shape != (k,) or inv_smooth.dtype != torch.float32:
        raise ValueError(f"inv_smooth must be float32 ({k},), got {tuple(inv_smooth.shape)}")
    if l1.dim() != 2 or l1.shape[0] != k or not l1.is_floating_point():
        raise ValueError(f"l1 must be a float ({k}, R) tensor, got {tuple(l1.shape)}")
    if group_size < 32 or group_size & (group_size - 1):
        raise ValueError(f"group_size must be a power of two >= 32, got {group_size}")
    check_device(x, inv_smooth, l1)
    inv_smooth = inv_smooth.contiguous()
    r = l1.shape[1]
    groups = -(-k // group_size)
    qx = torch.empty(m, groups * group_size // 2, dtype=torch.int8, device=x.device)
    ascales = torch.empty(m, groups, dtype=torch.float32, device=x.device)
    lr = torch.empty(m, r, dtype=torch.float32, device=x.device)
    if m == 0:
        return qx, ascales, lr
    # an empty (K, 0) / (M, 0) tensor may have a null pointer, which a GPU launch refuses
    l1_arg, lr_arg = (l1, lr) if r else (inv_smooth, ascales)
    args = (x, inv_smooth, l1_arg, qx, ascales, lr_arg, m, k, r, groups)
    args += (x.stride(0), x.stride(1), l1.stride(0), l1.stride(1))
    args += (qx.stride(0), ascales.stride(0), max(lr.stride(0), 1))
    meta = {
        "GROUP": group_size,
        "BLOCK_R": next_pow2(r),
        "HAS_LR": r > 0,
        "LR_PREC": "ieee" if l1.dtype == torch.float32 else "tf32",
        "DOT_F32": interpreting() and l1.dtype == torch.bfloat16,
    }
    if block_m is None and not interpreting():
        _autotuned[lambda cfg: (triton.cdiv(m, cfg["BLOCK_M"]),)](*args, **meta)
    else:
        bm = block_m or 64
        _act_quant_lowrank_kernel[(triton.cdiv(m, bm),)](*args, **meta, BLOCK_M=bm)
    return qx, ascales, lr
