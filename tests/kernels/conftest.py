"""Kernel tests run Triton in its CPU interpreter unless a caller chose otherwise.

TRITON_INTERPRET must be set before any kernel module is imported (the kernels are defined at
import of `kernels.act_quant_lowrank` / `kernels.w4a4_gemm`, which `import kernels` never does).
"""

import os

os.environ.setdefault("TRITON_INTERPRET", "1")
