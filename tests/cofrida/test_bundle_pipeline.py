"""How the default bundle is made: pre-train the autoencoder, train the edit model on it (or,
for CoFRIDA's ablation, on the unpainted sources), quantize it to W4A4."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("accelerate")
pytest.importorskip("datasets")

from cofrida.commands import quantize as quantize_cli
from cofrida.commands import train_autoencoder as ae_cli
from cofrida.model import EditModel
from cofrida.train import ShardDataset, train
from tests.cofrida.test_train import config, write_shard


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    write_shard(folder, n=6)
    return folder


@pytest.fixture(scope="module")
def autoencoder(data_dir, tmp_path_factory):
    """A 32 px x8 autoencoder trained for 150 steps; returns (output folder, CLI JSON)."""
    out = tmp_path_factory.mktemp("ae")
    args = ["--data-dir", str(data_dir), "--output-dir", str(out), "--resolution", "32"]
    args += ["--blocks", "8", "8", "16", "16", "--batch-size", "6", "--max-steps", "150"]
    args += ["--learning-rate", "3e-3", "--save-every", "50", "--log-every", "100"]
    import contextlib
    import io

    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert ae_cli.main(args) == 0
    return out, json.loads(stdout.getvalue().strip().splitlines()[-1])


def test_autoencoder_learns_to_reconstruct_and_resumes(autoencoder, data_dir):
    out, result = autoencoder
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 151))
    first = sum(r["psnr_db"] for r in log[:5]) / 5
    last = sum(r["psnr_db"] for r in log[-5:]) / 5
    assert last > first + 3, (first, last)  # a random decoder starts near 7-9 dB
    assert result["step"] == 150 and result["psnr_db"] == log[-1]["psnr_db"]

    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_pretrained(out / "vae")
    # scaling_factor makes the latents unit-variance (diffusers' convention), not the default 1
    assert vae.config.scaling_factor != 1.0
    images = torch.stack([ShardDataset(data_dir, 32)[i]["full"] for i in range(6)])
    with torch.no_grad():
        z = vae.encode(images * 2 - 1).latent_dist.mode() * vae.config.scaling_factor
    assert 0.5 < float(z.std()) < 2.0

    args = ["--data-dir", str(data_dir), "--output-dir", str(out), "--resolution", "32"]
    args += ["--blocks", "8", "8", "16", "16", "--batch-size", "6", "--max-steps", "155"]
    assert ae_cli.main([*args, "--resume"]) == 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log[150:]] == [151, 152, 153, 154, 155]


def test_bad_autoencoder_arguments(data_dir, tmp_path, capsys):
    assert ae_cli.main(["--data-dir", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert ae_cli.main(["--data-dir", str(tmp_path), "--resolution", "18"]) == 2
    assert "multiple of the downsampling factor 4" in capsys.readouterr().err
    assert ae_cli.main(["--data-dir", str(tmp_path), "--crop", "30"]) == 2
    assert "crop 30 must be a multiple of the downsampling factor 4" in capsys.readouterr().err
    args = ["--data-dir", str(data_dir), "--output-dir", str(tmp_path), "--resume"]
    assert ae_cli.main(args) == 2
    assert "nothing to resume" in capsys.readouterr().err


def test_edit_model_trains_on_the_pretrained_autoencoder_and_ships_it(
    autoencoder, data_dir, tmp_path
):
    """--init-vae replaces the VAE; it stays frozen and is what the final bundle holds."""
    from diffusers import AutoencoderKL

    from cofrida.model import tiny

    init = tmp_path / "init"
    tiny.build_edit_model("tiny_clip", resolution=32, vae_blocks=(8, 8, 16, 16)).save_pretrained(
        init
    )
    vae_dir = autoencoder[0] / "vae"
    cfg = config(data_dir, init, tmp_path / "out", init_vae=str(vae_dir), skip_connections=True)
    result = train(cfg)
    final = EditModel.from_pretrained(result["final"])
    pretrained = AutoencoderKL.from_pretrained(vae_dir).state_dict()
    assert all(torch.equal(v, pretrained[k]) for k, v in final.vae.state_dict().items())
    assert final.vae_skips is not None

    with pytest.raises(FileNotFoundError, match="no autoencoder"):
        final.replace_vae(tmp_path)


def test_ablation_target_reads_the_unpainted_sources(tmp_path):
    """target='source' trains towards the source image instead of the sim painting."""
    folder = tmp_path / "shards"
    write_shard(folder, n=2)
    import pyarrow.parquet as pq

    path = folder / "data" / "shard-00000.parquet"
    table = pq.read_table(path)
    blank = ShardDataset(folder, 32)[0]["partial"]  # a different image than "full"
    from tests.cofrida.test_train import _png

    png = _png((blank.permute(1, 2, 0).numpy() * 255).round().astype("uint8"))
    table = table.set_column(table.column_names.index("source"), "source", [[png] * table.num_rows])
    pq.write_table(table, path)
    paintings = ShardDataset(folder, 32)[0]["full"]
    sources = ShardDataset(folder, 32, target="source")[0]["full"]
    assert torch.allclose(sources, blank, atol=1 / 255)
    assert not torch.allclose(sources, paintings, atol=0.05)
    with pytest.raises(ValueError, match="target"):
        config(folder, tmp_path, tmp_path / "o", target="sketch")


def test_quantize_writes_a_w4a4_bundle_close_to_fp32(data_dir, tmp_path, capsys):
    import kernels
    from cofrida.model import tiny

    fp32 = tmp_path / "fp32"
    tiny.build_edit_model("tiny_clip", resolution=32, vae_blocks=(8, 8, 16, 16)).save_pretrained(
        fp32
    )
    out = tmp_path / "w4a4"
    args = ["--model", str(fp32), "--data-dir", str(data_dir), "--out", str(out)]
    assert quantize_cli.main([*args, "--records", "2", "--rank", "8", "--group-size", "32"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    loaded = EditModel.from_pretrained(out)
    assert result["layers"] == len(list(kernels.quantized_layers(loaded.unet))) > 0
    assert result["w4a4_vs_fp32_psnr_db"] > 20
    assert 0 < result["bundle_mb"] < 25

    code = quantize_cli.main(["--model", str(out), "--data-dir", str(data_dir), "--out", str(out)])
    assert code == 2 and "quantized already" in capsys.readouterr().err


def test_quantize_a_lora_bundle_merges_the_adapter(data_dir, tmp_path, capsys):
    """A LoRA-trained bundle quantizes into a loadable W4A4 bundle that keeps the adapter."""
    import kernels
    from cofrida.model import tiny

    model = tiny.build_edit_model("tiny_clip", resolution=32, vae_blocks=(8, 8, 16, 16),
                                  unet_blocks=(64, 128))  # fmt: skip
    base_weights = {k: v.clone() for k, v in model.unet.state_dict().items()}
    model.add_lora(rank=4)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in model.unet.named_parameters():
            if "lora_B" in name:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    model.save_pretrained(tmp_path / "lora")
    out = tmp_path / "w4a4"
    args = ["--model", str(tmp_path / "lora"), "--data-dir", str(data_dir), "--out", str(out)]
    assert quantize_cli.main([*args, "--records", "2", "--rank", "8"]) == 0
    loaded = EditModel.from_pretrained(out)  # before: Missing key(s) ... to_q.weight
    assert loaded.propose(torch.rand(3, 32, 32), "a red sun", n=1).shape == (1, 3, 32, 32)
    # the W4A4 weights are the merged ones (base + adapter), not the base alone
    from cofrida.model import unet_io

    unet_io.merge_lora(model.unet)
    merged = model.unet.state_dict()
    layers = dict(kernels.quantized_layers(loaded.unet))
    adapted = [n for n in layers if n.endswith(("to_q", "to_k", "to_v", "to_out.0"))]
    assert adapted
    for name in adapted:
        w = layers[name].dequantize()
        base = base_weights[f"{name}.weight"]
        assert (w - merged[f"{name}.weight"]).norm() < 0.5 * (w - base).norm(), name


def test_calibration_runs_the_chosen_steps_and_says_how_long_first(data_dir, tmp_path, capsys):
    """A multi-step (InstructPix2Pix-style) model calibrates on 2-step proposals, not 20."""
    from cofrida.model import tiny
    from cofrida.model.quantize import quantize_edit_model

    model = tiny.build_edit_model("tiny_clip", resolution=32, vae_blocks=(8, 8, 16, 16),
                                  unet_blocks=(64, 128), mode="multi_step")  # fmt: skip
    model.save_pretrained(tmp_path / "ip2p")
    calls = []
    handle = model.unet.register_forward_hook(lambda _m, args, _o: calls.append(args[0].shape[0]))
    quantize_edit_model(model, [torch.rand(3, 32, 32)] * 2, ["a red sun", "a boat"], steps=2)
    handle.remove()
    assert calls == [3, 3, 3, 3]  # 2 records x 2 steps, three guidance branches per pass

    out = tmp_path / "w4a4"
    args = ["--model", str(tmp_path / "ip2p"), "--data-dir", str(data_dir), "--out", str(out)]
    capsys.readouterr()
    assert quantize_cli.main([*args, "--records", "1", "--calibration-steps", "2"]) == 0
    captured = capsys.readouterr()
    said = [ln for ln in captured.err.splitlines() if ln.startswith("calibrating on")]
    assert "1 records x 2 UNet passes (multi_step" in said[0] and "min in all" in said[0]
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert 0 < result["quantized_param_share"] <= 1 and result["estimated_seconds"] > 0
