"""Kernel tests run Triton in its CPU interpreter unless a caller chose otherwise.

TRITON_INTERPRET must be set before any kernel module is imported (the kernels are defined at
import of `kernels.act_quant_lowrank` / `kernels.w4a4_gemm`, which `import kernels` never does).
"""

import os

import pytest
import torch

os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """These tests run many tiny ops: intra-op threads only add contention (measured: on a
    loaded 2-core machine they ran 20x slower with the default thread count)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
