"""`cofrida eval` on tiny models and a tiny shard folder: the table, the metrics, bad input."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("datasets")

from PIL import Image

from cofrida.commands import eval as eval_cli
from cofrida.evaluation import (
    Candidate,
    EvalRecord,
    EvalSettings,
    Paintability,
    PaintabilityConfig,
    evaluate,
)
from cofrida.evaluation.metrics import preservation, protected_pixels
from cofrida.model import tiny
from cofrida.model.quantize import quantize_edit_model
from cofrida.scorer import SceneScorer, SceneScorerConfig
from sim.palette import Palette
from tests.cofrida.test_train import write_shard

VAE_BLOCKS = (8, 8, 16, 16)
PAPER = 0.97  # the shards' paper grey level (247 / 255)


def tiny_model(seed: int = 0):
    return tiny.build_edit_model("tiny_clip", resolution=32, vae_blocks=VAE_BLOCKS, seed=seed)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("heldout")
    write_shard(folder, n=6)
    return folder


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """Two tiny fp32 bundles ('sim', 'source') and a W4A4 copy of 'sim'."""
    root = tmp_path_factory.mktemp("bundles")
    tiny_model(0).save_pretrained(root / "sim")
    tiny_model(1).save_pretrained(root / "source")
    model = tiny_model(0)
    canvas = torch.full((3, 64, 64), PAPER)
    quantize_edit_model(model, [canvas], ["a red sun"], dtype=torch.float32)
    model.save_pretrained(root / "sim-w4a4")
    return root


@pytest.fixture(scope="module")
def scorer_dir(tmp_path_factory):
    """An untrained tiny offline scene scorer (image side tiny; text side the packaged MiniLM)."""
    folder = tmp_path_factory.mktemp("scorer")
    torch.manual_seed(0)
    SceneScorer(SceneScorerConfig(image_size=32, widths=(8, 16), embed_dim=16)).save(folder)
    return folder


def square_canvas(size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(partial, full): a blue square on paper; the full painting adds a red disc beside it."""
    partial = torch.full((3, size, size), PAPER)
    partial[:, 8:28, 8:28] = torch.tensor([0.1, 0.2, 0.7]).view(3, 1, 1)
    full = partial.clone()
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    disc = (yy - 44) ** 2 + (xx - 44) ** 2 < 12**2
    full[:, disc] = torch.tensor([0.8, 0.1, 0.1]).view(3, 1)
    return partial, full


def test_preservation_is_one_for_the_canvas_and_drops_when_its_paint_is_covered():
    partial, full = square_canvas()
    protected = protected_pixels(partial, full)
    assert int(protected.sum()) == 20 * 20  # the square: painted, and the painting keeps it
    assert preservation(partial, partial, protected) == 1.0
    assert preservation(partial, full, protected) == 1.0  # additions elsewhere cost nothing
    blank = torch.full_like(partial, PAPER)
    assert preservation(blank, blank, protected_pixels(blank, blank)) is None

    def same(record: EvalRecord, n: int, seed: int) -> torch.Tensor:
        return record.partial.expand(n, -1, -1, -1).clone()

    def over(record: EvalRecord, n: int, seed: int) -> torch.Tensor:
        props = same(record, n, seed)
        props[:, :, 8:28, 8:18] = torch.tensor([0.2, 0.7, 0.2]).view(3, 1, 1)  # half the square
        return props

    rows = [Candidate("keeps", same), Candidate("paints over", over)]
    records = [EvalRecord(0, partial, full, "a blue square and a red sun")]
    settings = EvalSettings(n=3, paint=None, examples=0)
    result = evaluate(records, rows, None, settings, pairs=[("paints over", "keeps")])
    keeps, covers = result.rows
    assert keeps["preservation"] == 1.0 and keeps["diversity"] == 0.0
    assert covers["preservation"] == pytest.approx(0.5)
    assert keeps["text_alignment"] is None  # no scorer given
    assert result.comparisons[0]["d_preservation"] == pytest.approx(-0.5)


def test_paintability_error_is_lower_for_a_paintable_proposal_than_for_noise():
    partial = torch.ones(3, 64, 64)
    easy = partial.clone()
    easy[:, 24:40, 20:44] = Palette.preset("acrylic").colors[2].view(3, 1, 1)  # one paint, a block
    noise = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    paint = Paintability(PaintabilityConfig(strokes=24, coarse_steps=20), (64, 64))
    easy_result, noise_result = paint(partial, easy), paint(partial, noise)
    assert easy_result.painting.shape == (3, 64, 64)
    assert easy_result.error_de < 0.5 * easy_result.gap_de  # the robot painted most of it
    assert easy_result.error_de < 0.2 * noise_result.error_de, (easy_result, noise_result)


def test_eval_writes_every_metric_for_every_compared_row(
    data_dir, bundles, scorer_dir, tmp_path, capsys
):
    out = tmp_path / "eval"
    argv = [
        "--model", f"sim={bundles / 'sim'}", "--model", f"source={bundles / 'source'}",
        "--w4a4", "--calibration-records", "2", "--steps", "2",
        "--data-dir", str(data_dir), "--records", "2", "--n", "2", "--size", "64",
        "--scorer", str(scorer_dir), "--paint-strokes", "6", "--paint-steps", "5",
        "--examples", "2", "--out", str(out),
    ]  # fmt: skip
    assert eval_cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "[eval] sim: record 2/2" in captured.err  # progress lines
    last = json.loads(captured.out.strip().splitlines()[-1])
    names = ["sim", "sim w4a4", "source", "source w4a4", "sim teacher", "reference (sim painting)"]
    assert list(last["rows"]) == names

    results = json.loads((out / "results.json").read_text())
    rows = {r["name"]: r for r in results["rows"]}
    assert rows["sim w4a4"]["precision"] == "w4a4" and rows["sim"]["precision"] == "fp32"
    assert rows["sim teacher"]["mode"] == "multi_step (2 steps)"
    for name in names:
        keys = ["text_alignment", "preservation", "paint_error_de"]
        if name != "reference (sim painting)":
            keys += ["diversity", "latency_ms", "latency_ms_per_proposal"]
        for key in keys:
            assert isinstance(rows[name][key], float), (name, key)
    assert rows["reference (sim painting)"]["preservation"] == 1.0
    pairs = {(c["row"], c["vs"]): c for c in results["comparisons"]}
    assert set(pairs) == {("sim w4a4", "sim"), ("source w4a4", "source"), ("sim", "sim teacher")}
    assert pairs[("sim w4a4", "sim")]["psnr_db"] > 20  # W4A4 stays close to its fp32 model
    assert len(results["per_record"]["sim"]) == 2

    table = (out / "table.md").read_text()
    for header in ("text alignment", "preservation", "paint error", "diversity", "ms / set"):
        assert header in table
    for name in names:
        assert f"| {name} |" in table
    assert "**sim w4a4** vs **sim**" in table and table in captured.out
    with Image.open(out / "examples.png") as sheet:
        assert sheet.width > 6 * 96 and sheet.height > 2 * 96


def test_eval_compares_a_w4a4_bundle_with_its_fp32_source(data_dir, bundles, tmp_path, capsys):
    argv = [
        "--model", f"shipped={bundles / 'sim-w4a4'}", "--fp32-source", f"shipped={bundles / 'sim'}",
        "--teacher", "none", "--no-reference", "--paint-proposals", "0", "--scorer", "none",
        "--data-dir", str(data_dir), "--records", "2", "--n", "2", "--size", "64",
        "--out", str(tmp_path / "eval"),
    ]  # fmt: skip
    assert eval_cli.main(argv) == 0
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(last["rows"]) == ["shipped", "shipped fp32"]
    assert last["rows"]["shipped"]["paint_error_de"] is None  # paintability skipped
    (comparison,) = last["comparisons"]
    assert comparison["row"] == "shipped" and comparison["vs"] == "shipped fp32"
    assert comparison["psnr_db"] > 20


def test_teacher_of_a_bundle_with_a_teacher_unet_is_that_unet():
    model = tiny_model()
    assert model.teacher_model() is model  # no teacher_unet: the model itself, multi-step
    model.teacher_unet = tiny.tiny_unet(seed=3)
    teacher = model.teacher_model()
    assert teacher.unet is model.teacher_unet and teacher.config.mode == "multi_step"
    assert teacher.vae is model.vae and teacher.text_encoder is model.text_encoder


def test_quantize_covers_the_teacher_and_the_bundle_keeps_it(tmp_path):
    from cofrida.model import EditModel, unet_io

    model = tiny_model()
    model.teacher_unet = tiny.tiny_unet(seed=3)
    model.config.structure_steps = 1  # the hybrid: one teacher step, then the one-step pass
    canvas = torch.full((3, 64, 64), PAPER)
    fp32 = model.propose(canvas, "a red sun", n=2, seed=0)
    quantize_edit_model(model, [canvas], ["a red sun"], dtype=torch.float32)
    assert unet_io.is_quantized(model.unet) and unet_io.is_quantized(model.teacher_unet)
    hybrid = model.propose(canvas, "a red sun", n=2, seed=0)
    assert not torch.equal(hybrid, fp32) and (hybrid - fp32).abs().mean() < 0.05
    model.save_pretrained(tmp_path / "w4a4")
    loaded = EditModel.from_pretrained(tmp_path / "w4a4")
    assert unet_io.is_quantized(loaded.teacher_unet) and loaded.config.structure_steps == 1
    assert torch.equal(loaded.propose(canvas, "a red sun", n=2, seed=0), hybrid)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--n", "0"], "--n must be >= 1"),
        (["--paint-proposals", "-1"], "--paint-proposals must be >= 0"),
        (["--data-dir", "/nonexistent/heldout"], "does not exist"),
        (["--data-dir", "EMPTY"], "no shards"),
        (["--model", "MISSING"], "no model folder"),
        (["--model", "sim=SIM"], "names must be unique"),
        (["--fp32-source", "sim=SIM"], "is not W4A4"),
        (["--fp32-source", "other=SIM"], "match no --model row"),
        (["--scorer", "MISSING"], "could not load the scorer"),
    ],
)
def test_eval_refuses_bad_arguments_clearly(extra, message, data_dir, bundles, tmp_path, capsys):
    sim = str(bundles / "sim")
    (tmp_path / "empty").mkdir()
    swap = {"SIM": sim, "EMPTY": str(tmp_path / "empty"), "MISSING": str(tmp_path / "nope")}
    extra = [swap.get(a, a.replace("SIM", sim)) for a in extra]
    argv = ["--model", f"sim={sim}", "--data-dir", str(data_dir), "--records", "1"]
    argv += ["--teacher", "none", "--paint-proposals", "0", "--scorer", "none"]
    argv += ["--out", str(tmp_path / "o")]
    assert eval_cli.main(argv + extra) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written


def test_default_model_that_is_not_built_yet_is_a_clear_error(
    data_dir, tmp_path, monkeypatch, capsys
):
    from cofrida.model import edit_model

    monkeypatch.setattr(edit_model, "DEFAULT_BUNDLE", tmp_path / "not-built")
    argv = ["--model", "default", "--data-dir", str(data_dir), "--records", "1", "--scorer", "none"]
    assert eval_cli.main([*argv, "--out", str(tmp_path / "o")]) == 2
    assert "default edit-model bundle is not built yet" in capsys.readouterr().err
