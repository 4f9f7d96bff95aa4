"""Shared test configuration: marker handling and the location of the shared real data."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

# Triton reads TRITON_INTERPRET when kernels are defined, and test modules imported early in
# collection (diffusers, the W4A4 edit model) may pull triton in: so decide here, first. Without
# a GPU the kernels run in Triton's CPU interpreter; with one, on the GPU.
_WE_SET_INTERPRET = "TRITON_INTERPRET" not in os.environ
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

if _WE_SET_INTERPRET and torch.cuda.is_available():
    del os.environ["TRITON_INTERPRET"]

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _has_rclpy() -> bool:
    try:
        return importlib.util.find_spec("rclpy") is not None
    except (ImportError, ValueError):
        return False


def pytest_collection_modifyitems(config, items):
    """`gpu` tests skip without CUDA; `ros` tests skip without the ROS 2 wheels (rclpy)."""
    skips = {}
    if not torch.cuda.is_available():
        skips["gpu"] = pytest.mark.skip(reason="needs a CUDA GPU")
    if not _has_rclpy():
        skips["ros"] = pytest.mark.skip(reason="needs rclpy (the ROS 2 Jazzy wheels)")
    for item in items:
        for marker, skip in skips.items():
            if marker in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _test_numerics():
    """The numerics of every `cofrida` command (denormals flushed: 10-40x faster rendering),
    and one intra-op thread: test tensors are small, and on a shared 2-core machine spinning
    threads made them 5-50x slower (measured in the kernels, planner and model tests)."""
    threads = torch.get_num_threads()
    torch.set_flush_denormal(True)
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def shared_data() -> Path:
    """Folder of ../shared/data beside the checkout; skips if the checkout has none."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def isolated_user_data(tmp_path_factory, monkeypatch):
    """Every test gets its own user data directory: nothing is read from or written to ~."""
    monkeypatch.setenv("COFRIDA_HOME", str(tmp_path_factory.mktemp("cofrida_home")))
