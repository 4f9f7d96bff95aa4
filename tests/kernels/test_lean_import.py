"""`import kernels` must stay light: no CUDA initialisation, no triton import."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_kernels_initialises_no_cuda_and_imports_no_triton():
    code = (
        "import sys, kernels, torch\n"
        "assert not torch.cuda.is_initialized(), 'CUDA initialised'\n"
        "assert 'triton' not in sys.modules, 'triton imported'\n"
        "assert 'kernels.w4a4_gemm' not in sys.modules\n"
        "kernels.SVDQuantConfig(); kernels.quantize_\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
