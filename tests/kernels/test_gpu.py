"""The compiled kernels on a real GPU (skipped without CUDA): same checks as the interpreter."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import torch
from kernels.act_quant_lowrank import act_quant_lowrank
from kernels.quant_ref import act_quant_lowrank_ref, w4a4_gemm_ref
from kernels.w4a4_gemm import w4a4_gemm
torch.manual_seed(0)
for m, k, n, r, dt in [(4096, 1280, 1280, 32, torch.bfloat16), (333, 640, 700, 40, torch.float16),
                       (17, 200, 96, 0, torch.bfloat16)]:
    x = torch.randn(m, k, device="cuda", dtype=dt)
    inv = torch.rand(k, device="cuda") + 0.5
    l1 = (torch.randn(k, r, device="cuda") / k**0.5).to(dt)
    q, s, lr = act_quant_lowrank(x, inv, l1, 64)
    q_ref, s_ref, lr_ref = act_quant_lowrank_ref(x, inv, l1, 64)
    assert torch.equal(q, q_ref) and torch.equal(s, s_ref), (m, k)
    if r:
        torch.testing.assert_close(lr, lr_ref, rtol=2e-2, atol=2e-2)
    from kernels.quant_ref import quantize_int4_groups
    qw, sw = quantize_int4_groups(torch.randn(n, k, device="cuda"), 64, dt)
    l2 = torch.randn(r, n, device="cuda").to(dt) / 4
    b = torch.randn(n, device="cuda").to(dt)
    y = w4a4_gemm(q, s, qw, sw, lr_ref, l2, b, dt).float()
    y_ref = w4a4_gemm_ref(q, s, qw, sw, lr_ref, l2, b, dt).float()
    assert (y - y_ref).abs().max() / y_ref.abs().max() < 1e-2, (m, n, k)
print("ok")
"""


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_compiled_kernels_match_references_on_gpu():
    env = {**os.environ, "TRITON_INTERPRET": "0"}  # compiled, not interpreted
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-4000:]
