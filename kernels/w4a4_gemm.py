"""Kernel 2: W4A4 GEMM on packed int4 with the low-rank up-projection and bias in the epilogue.

y (M, N) = sum_g (qx_g . qw_g) * ascale_g * wscale_g + lr @ L2 + b.

Hopper (H100/H200) has no 4-bit tensor-core MMA, so each program loads packed bytes, sign-extends
the low and high nibbles to two int8 tiles in registers and runs two int8 MMAs (int32
accumulation, exact) per quantization group: nibble j of a byte of x meets nibble j of the
matching byte of W, so no interleaving is needed. The group's integer sum is scaled into a
float32 accumulator; after the K loop the low-rank term (BLOCK_M, R) @ (R, BLOCK_N) is one more
16-bit MMA on the same accumulator, and the bias is added before the single store: the low-rank
branch never makes its own pass over y.

Reference: `kernels.quant_ref.w4a4_gemm_ref` (same order of float operations).

This module imports triton at import time: import it only when a kernel is to run, and set
``TRITON_INTERPRET=1`` before that to run on CPU.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels._triton_launch import check_device, interpreting, next_pow2

# GPU autotune table (int8 MMA tiles; half a group, 32 by default, is the MMA's K).
_CONFIGS = [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "GROUP_M": 8}, num_warps=w, num_stages=s)
    for bm, bn, w, s in [
        (128, 128, 8, 3),
        (128, 128, 4, 4),
        (128, 256, 8, 3),
        (64, 128, 4, 4),
        (128, 64, 4, 4),
        (64, 64, 4, 3),
    ]
]


@triton.jit
def _w4a4_gemm_kernel(
    qx_ptr,  # (M, Kp/2) int8, packed int4 activations
    as_ptr,  # (M, G) float32 activation scales
    qw_ptr,  # (N, Kp/2) int8, packed int4 weights
    ws_ptr,  # (N, G) float weight scales
    lr_ptr,  # (M, R) float32, x_s @ L1
    l2_ptr,  # (R, N) float
    b_ptr,  # (N,) float or dummy
    y_ptr,  # (M, N) out
    M,
    N,
    R,
    NUM_GROUPS,
    stride_qxm,
    stride_asm,
    stride_qwn,
    stride_wsn,
    stride_lrm,
    stride_l2r,
    stride_l2n,
    stride_ym,
    stride_yn,
    HALF: tl.constexpr,
    BLOCK_R: tl.constexpr,
    HAS_LR: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    LR_PREC: tl.constexpr,
    DOT_F32: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    GROUP_M: tl.constexpr,
):
    # grouped launch order: GROUP_M row tiles share each weight tile while it is in L2
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    width = GROUP_M * num_pid_n
    first_m = (pid // width) * GROUP_M
    group_rows = tl.minimum(num_pid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % width) % group_rows
    pid_n = (pid % width) // group_rows

    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    m_mask = offs_m < M
    n_mask = offs_n < N
    offs_h = tl.arange(0, HALF)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for g in range(0, NUM_GROUPS):
        cols = g * HALF + offs_h
        px = tl.load(
            qx_ptr + offs_m[:, None] * stride_qxm + cols[None, :], mask=m_mask[:, None], other=0
        ).to(tl.int32)  # (BLOCK_M, HALF)
        pw = tl.load(
            qw_ptr + offs_n[None, :] * stride_qwn + cols[:, None], mask=n_mask[None, :], other=0
        ).to(tl.int32)  # (HALF, BLOCK_N)
        # sign-extend the nibbles in int32, then narrow to int8 for the MMA
        x_lo = ((px << 28) >> 28).to(tl.int8)
        x_hi = ((px << 24) >> 28).to(tl.int8)
        w_lo = ((pw << 28) >> 28).to(tl.int8)
        w_hi = ((pw << 24) >> 28).to(tl.int8)
        part = tl.dot(x_lo, w_lo, out_dtype=tl.int32)
        part = tl.dot(x_hi, w_hi, acc=part, out_dtype=tl.int32)  # exact: |part| <= 64 * gs
        sa = tl.load(as_ptr + offs_m * stride_asm + g, mask=m_mask, other=0.0)
        sw = tl.load(ws_ptr + offs_n * stride_wsn + g, mask=n_mask, other=0.0).to(tl.float32)
        acc += part.to(tl.float32) * sa[:, None] * sw[None, :]
    if HAS_LR:
        offs_r = tl.arange(0, BLOCK_R)
        r_mask = offs_r < R
        lr = tl.load(
            lr_ptr + offs_m[:, None] * stride_lrm + offs_r[None, :],
            mask=m_mask[:, None] & r_mask[None, :],
            other=0.0,
        )  # (BLOCK_M, BLOCK_R) float32
        l2 = tl.load(
            l2_ptr + offs_r[:, None] * stride_l2r + offs_n[None, :] * stride_l2n,
            mask=r_mask[:, None] & n_mask[None, :],
            other=0.0,
        )  # (BLOCK_R, BLOCK_N)
        if DOT_F32:  # interpreter: its bfloat16 dot and fp32->bf16 rounding are wrong
            acc += tl.dot(lr, l2.to(tl.float32), input_precision="ieee")
        else:
            acc += tl.dot(lr.to(l2.dtype), l2, input_precision=LR_PREC)
    if HAS_BIAS:
        acc += tl.load(b_ptr + offs_n, mask=n_mask, other=0.0).to(tl.float32)[None, :]
    y_ptrs = y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :] * stride_yn
    tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=m_mask[:, None] & n_mask[None, :])


_autotuned = triton.autotune(configs=_CONFIGS, key=["N", "NUM_GROUPS", "R"])(_w4a4_gemm_kernel)


def w4a4_gemm(
    qx: torch.Tensor,
    ascales: torch.Tensor,
    qw: torch.Tensor,
    wscales: torch.Tensor,
    lr: torch.Tensor,
    l2: torch.Tensor,
    bias: torch.Tensor | None,
    out_dtype: torch.dtype,
    *,
    block_m: int | None = None,
    block_n: int | None = None,
) -> torch.Tensor:
    """Packed-int4 x packed-int4 GEMM, plus lr @ L2 and bias, in one kernel.

    Args:
        qx: int8 (M, Kp/2) packed activations from `act_quant_lowrank`, row-contiguous.
        ascales: float32 (M, G), G = Kp / group_size.
        qw: int8 (N, Kp/2) packed weights, row-contiguous.
        wscales: (N, G), float16/bfloat16/float32.
        lr: float32 (M, R), R may be 0.
        l2: (R, N) float16/bfloat16 (float32 computes in IEEE fp32); lr is rounded to its
            dtype for the product (bfloat16 in the interpreter multiplies in float32).
        bias: (N,) float or None.
        out_dtype: float16, bfloat16 or float32.
        block_m, block_n: output tile; None autotunes on GPU and uses 64 x 64 in the
            interpreter. A GPU needs >= 16.

    Returns:
        (M, N) tensor in ``out_dtype``.
    """
    if qx.dtype != torch.int8 or qw.dtype != torch.int8:
        raise ValueError(f"packed operands must be int8, got {qx.dtype} and {qw.dtype}")
    m, kh = qx.shape
    n = qw.shape[0]
    if qw.shape[1] != kh:
        raise ValueError(f"packed K differs: qx {tuple(qx.shape)} vs qw {tuple(qw.shape)}")
    if ascales.dim() != 2 or ascales.shape[0] != m or ascales.dtype != torch.float32:
        raise ValueError(f"ascales must be float32 ({m}, G), got {tuple(ascales.shape)}")
    groups = ascales.shape[1]
    if groups == 0 or (2 * kh) % groups or wscales.shape != (n, groups):
        raise ValueError(
            f"scales do not match K: Kp={2 * kh}, ascales G={groups}, wscales "
            f"{tuple(wscales.shape)}"
        )
    half = kh // groups
    if half < 16 or half & (half - 1):
        raise ValueError(f"group_size must be a power of two >= 32, got {2 * half}")
    r = lr.shape[1]
    if lr.shape[0] != m or l2.shape != (r, n) or lr.dtype != torch.float32:
        raise ValueError(f"lr (M, R) float32 and l2 (R, N) needed, got {lr.shape}, {l2.shape}")
    if bias is not None and bias.shape != (n,):
        raise ValueError(f"bias must be ({n},), got {tuple(bias.shape)}")
    if out_dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise ValueError(f"out_dtype must be a float dtype, got {out_dtype}")
    check_device(qx, ascales, qw, wscales, lr, l2, *([] if bias is None else [bias]))
    if qx.stride(1) != 1 or qw.stride(1) != 1:
        raise ValueError("packed operands must be contiguous along K")
    y = torch.empty(m, n, dtype=out_dtype, device=qx.device)
    if m == 0 or n == 0:
        return y
    # empty (M, 0) / (0, N) tensors may have null pointers, which a GPU launch refuses
    lr_arg, l2_arg = (lr, l2) if r else (ascales, wscales)
    args = (qx, ascales, qw, wscales, lr_arg, l2_arg, y if bias is None else bias, y, m, n, r)
    args += (groups,)
    args += (qx.stride(0), ascales.stride(0), qw.stride(0), wscales.stride(0))
    args += (max(lr.stride(0), 1), max(l2.stride(0), 1), l2.stride(1), y.stride(0), y.stride(1))
    meta = {
        "HALF": half,
        "BLOCK_R": next_pow2(r),
        "HAS_LR": r > 0,
        "HAS_BIAS": bias is not None,
        "LR_PREC": "ieee" if l2.dtype == torch.float32 else "tf32",
        "DOT_F32": interpreting() and l2.dtype == torch.bfloat16,
    }
    if block_m is None and block_n is None and not interpreting():

        def grid(cfg: dict) -> tuple[int]:
            return (triton.cdiv(m, cfg["BLOCK_M"]) * triton.cdiv(n, cfg["BLOCK_N"]),)

        _autotuned[grid](*args, **meta)
    else:
        bm, bn = block_m or 64, block_n or 64
        grid = (triton.cdiv(m, bm) * triton.cdiv(n, bn),)
        _w4a4_gemm_kernel[grid](*args, **meta, BLOCK_M=bm, BLOCK_N=bn, GROUP_M=8)
    return y
