"""`cofrida bench scale --quick`: the SD-1.5 layout at narrow widths, end to end."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("peft")

from cofrida.benchmarks import scale


def test_quick_run_prints_the_figures_and_a_small_lora_checkpoint(capsys):
    assert scale.main(["--quick", "--resolution", "64"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("unet_fp16_mb", "unet_w4a4_mb", "ratio_vs_fp16", "quantized_param_share",
                "quantize_seconds", "one_step_seconds_fp32", "one_step_seconds_w4a4",
                "lora_checkpoint_mb"):  # fmt: skip
        assert isinstance(result[key], (int, float)), key
    assert result["blocks"] == list(scale.QUICK_BLOCKS)
    # 3x3 convs included; here the 32-channel level stays float (< 64 channels): 0.94, while
    # at SD-1.5 widths only conv_in / conv_out do (0.9994)
    assert result["quantized_param_share"] > 0.9
    assert result["unet_w4a4_mb"] < result["unet_fp16_mb"]
    # the adapter checkpoint is a fraction of the frozen UNet, not a copy of it
    assert result["lora_checkpoint_mb"] < 0.5 * result["unet_fp16_mb"]
    assert set(result["targets"]) == set(scale.TARGETS)


def test_bad_resolution_is_refused(capsys):
    assert scale.main(["--quick", "--resolution", "100"]) == 2
    assert "multiple of 64" in capsys.readouterr().err
