"""`cofrida bench model` on tiny bundles: the JSON it prints last, W4A4 forms, the fallback."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("diffusers")

from cofrida.benchmarks import model as bench
from cofrida.model import edit_model, tiny
from cofrida.model.quantize import quantize_edit_model

KEYS = ("one_step_ms", "multi_step_ms", "speedup", "w4a4_vs_fp32_psnr_db", "bundle_mb")


def tiny_model():
    return tiny.build_edit_model("tiny_clip", resolution=32, vae_blocks=(8, 8, 16, 16), seed=0)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """A tiny fp32 bundle and its W4A4 copy."""
    root = tmp_path_factory.mktemp("bench_model")
    tiny_model().save_pretrained(root / "fp32")
    model = tiny_model()
    quantize_edit_model(model, [torch.rand(3, 32, 32)], ["a red sun"], dtype=torch.float32)
    model.save_pretrained(root / "w4a4")
    return root


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_fp32_bundle_is_timed_quantized_and_checked_against_the_targets(bundles, capsys):
    assert bench.main(["--model", str(bundles / "fp32"), "--quick", "--steps", "4"]) == 0
    result = last_json(capsys)
    for key in KEYS:
        assert isinstance(result[key], float) and result[key] > 0, key
    assert result["quantized"] is False and result["fallback"] is None
    assert result["multi_step_steps"] == 4 and result["resolution"] == 32
    assert result["speedup"] == pytest.approx(result["multi_step_ms"] / result["one_step_ms"], 0.01)
    assert result["w4a4_vs_fp32_psnr_db"] > 20  # the quantized copy proposes nearly the same
    assert 0 < result["w4a4_bundle_mb"] < 25 and result["bundle_mb"] < 25
    assert set(result["targets"]) == set(bench.TARGETS)
    one_step = result["targets"]["one_step_ms"]
    assert one_step["max"] == 150 and one_step["pass"] == (result["one_step_ms"] <= 150)
    assert result["targets"]["speedup"]["min"] == 10
    assert result["hybrid_ms"] is None and result["structure_steps"] == 0  # no teacher
    # issue 14: object figures on painted held-out object partials (2 with --quick)
    assert result["object_records"] == 2
    assert 0.0 <= result["object_recall"] <= result["object_recall_best"] <= 1.0
    assert 0.0 <= result["damage"] <= 1.0 and 0.0 < result["diversity"] < 1.0


def test_a_bundle_with_a_teacher_times_its_hybrid(tmp_path, capsys):
    model = tiny_model()
    model.teacher_unet = tiny.tiny_unet(seed=3)
    model.config.structure_steps = 2
    model.save_pretrained(tmp_path / "hybrid")
    assert bench.main(["--model", str(tmp_path / "hybrid"), "--quick", "--steps", "4"]) == 0
    result = last_json(capsys)
    assert result["structure_steps"] == 2 and result["hybrid_ms"] > 0


def test_w4a4_bundle_compares_with_its_fp32_source_when_given(bundles, capsys):
    args = ["--model", str(bundles / "w4a4"), "--quick", "--steps", "2"]
    assert bench.main([*args, "--fp32-model", str(bundles / "fp32")]) == 0
    result = last_json(capsys)
    assert result["quantized"] is True and result["w4a4_bundle_mb"] is None
    assert result["one_step_ms"] == result["one_step_ms_w4a4"] and result["one_step_ms_fp32"] > 0
    assert result["w4a4_vs_fp32_psnr_db"] > 20
    assert result["object_recall_fp32"] is not None and result["diversity_fp32"] > 0
    assert bench.main(args) == 0  # no fp32 source: no PSNR, and the target is not passed
    result = last_json(capsys)
    assert result["w4a4_vs_fp32_psnr_db"] is None
    assert result["targets"]["w4a4_vs_fp32_psnr_db"]["pass"] is None
    assert result["all_pass"] is False


def test_without_a_shipped_bundle_quick_falls_back_and_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(edit_model, "DEFAULT_BUNDLE", tmp_path / "not-built")
    assert bench.main(["--steps", "2"]) == 2
    assert "not built yet" in capsys.readouterr().err
    assert bench.main(["--quick", "--steps", "2"]) == 0
    result = last_json(capsys)
    assert result["model"] == "fallback" and "untrained" in result["fallback"]
    assert result["resolution"] == 128 and all(k in result for k in KEYS)


def test_bad_model_folder_is_refused(tmp_path, capsys):
    assert bench.main(["--model", str(tmp_path / "nope"), "--quick"]) == 2
    assert "not a bundle folder" in capsys.readouterr().err
