"""`cofrida train` on a tiny model and ten records: checkpoints, validation, resume, LoRA,
multi-step dropout, overfitting one batch, bad data."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

pytest.importorskip("accelerate")
pytest.importorskip("datasets")
pytest.importorskip("peft")

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from cofrida.commands import train as train_cli
from cofrida.data import SceneGenerator
from cofrida.data.shards import schema as shard_schema
from cofrida.model import EditModel, tiny
from cofrida.train import ShardDataset, TrainConfig, train
from cofrida.train.objectives import dropout_masks, finish_inputs
from sim.palette import Palette

SCHEMA = shard_schema()  # exactly what `cofrida make-data` writes


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def write_shard(folder, n: int = 10, drop: tuple[str, ...] = ()) -> None:
    """n records in the data contract's schema: full = a scene, partial = its left half."""
    gen = SceneGenerator(Palette.preset("acrylic"), size=(64, 64), seed=0)
    rows = {name: [] for name in SCHEMA.names}
    for i in range(n):
        scene = gen.generate(i)
        partial = scene.image.copy()
        partial[:, 32:] = 247  # paper
        values = {
            "id": f"rec-{i}",
            "source_index": i,
            "partial": _png(partial),
            "full": _png(scene.image),
            "source": _png(scene.image),
            "caption": scene.caption,
            "strokes": "[]",
            "kept": [0, 1],
            "partial_kind": "half",
            "source_id": f"scene-{i}",
            "profile": "test",
            "seed": 0,
        }
        for k, v in values.items():
            rows[k].append(v)
    schema = pa.schema([f for f in SCHEMA if f.name not in drop])
    table = pa.table({k: v for k, v in rows.items() if k not in drop}, schema=schema)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "data" / "shard-00000.parquet")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    write_shard(folder)
    return folder


@pytest.fixture(scope="module")
def init_model(tmp_path_factory):
    """A tiny 32 px edit model (tiny CLIP text encoder) saved as a bundle."""
    folder = tmp_path_factory.mktemp("tiny") / "bundle"
    tiny.build_edit_model("tiny_clip", resolution=32, vae_blocks=(8, 8, 16, 16)).save_pretrained(
        folder
    )
    return folder


def config(data_dir, init_model, out, **kw) -> TrainConfig:
    base = dict(
        data_dir=str(data_dir),
        output_dir=str(out),
        init_model=str(init_model),
        resolution=32,
        batch_size=3,
        max_steps=4,
        checkpoint_every=2,
        keep_checkpoints=2,
        validate_every=0,
        validation_records=2,
        log_every=100,
    )
    return TrainConfig(**{**base, **kw})


def log_of(out) -> list[dict]:
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_smoke_checkpoints_validation_final_and_exact_resume(
    data_dir, init_model, tmp_path, capsys
):
    out = tmp_path / "run"
    argv = [
        "--data-dir", str(data_dir), "--output-dir", str(out), "--init-model", str(init_model),
        "--resolution", "32", "--batch-size", "3", "--max-steps", "4", "--checkpoint-every", "2",
        "--keep-checkpoints", "2", "--validate-every", "2", "--validation-records", "2",
        "--validation-prompts", "a blue boat",
    ]  # fmt: skip
    assert train_cli.main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["step"] == 4
    names = sorted(p.name for p in out.iterdir())
    assert "checkpoint-2" in names and "checkpoint-4" in names
    assert not any(n.startswith(".checkpoint") for n in names)  # no half-written checkpoint
    grids = sorted(p.name for p in (out / "validation").iterdir())
    assert grids == ["step-000002.png", "step-000004.png"]
    with Image.open(out / "validation" / "step-000004.png") as im:
        assert im.size == (3 * 34, 3 * 34)  # 2 records + 1 extra prompt; canvas|proposal|target
    model = EditModel.from_pretrained(out / "final")
    proposals = model.propose(torch.rand(3, 32, 32), "a red sun", n=2, seed=0)
    assert proposals.shape == (2, 3, 32, 32) and torch.isfinite(proposals).all()

    # resume to step 6: continues at 5, prunes checkpoint-2, never repeats a step
    argv[argv.index("--max-steps") + 1] = "6"
    assert train_cli.main([*argv, "--resume", "latest"]) == 0
    assert "resumed from" in capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir() if p.name.startswith("checkpoint"))
    assert names == ["checkpoint-4", "checkpoint-6"]
    resumed = log_of(out)
    assert [r["step"] for r in resumed] == [1, 2, 3, 4, 5, 6]

    # the same six steps without interruption: the loss curve is identical
    straight = tmp_path / "straight"
    train(config(data_dir, init_model, straight, max_steps=6, checkpoint_every=0))
    assert [r["loss"] for r in log_of(straight)] == pytest.approx(
        [r["loss"] for r in resumed], rel=1e-5
    )


def test_lora_trains_only_adapters(data_dir, init_model, tmp_path):
    out = tmp_path / "lora"
    cfg = config(data_dir, init_model, out, finetune="lora", lora_rank=4, max_steps=2,
                 checkpoint_every=0, learning_rate=1e-2)  # fmt: skip
    train(cfg)
    before = EditModel.from_pretrained(init_model).unet.state_dict()
    after = EditModel.from_pretrained(out / "final")
    assert (out / "final" / "unet_lora" / "adapter_model.safetensors").is_file()
    lora_changed = False
    for name, value in after.unet.state_dict().items():
        if ".lora_" in name:
            lora_changed |= "lora_B" in name and bool(value.abs().sum() > 0)
            continue
        base = name.replace(".base_layer", "")
        if base.startswith("conv_in."):  # trains in full beside the adapters (pix2pix-Turbo)
            continue
        torch.testing.assert_close(value, before[base], rtol=0, atol=0, msg=name)
    assert lora_changed


def test_multi_step_with_conditioning_dropout(data_dir, init_model, tmp_path):
    out = tmp_path / "multi"
    cfg = config(data_dir, init_model, out, mode="multi_step", max_steps=3, checkpoint_every=0,
                 drop_text_prob=0.3, drop_image_prob=0.3, drop_both_prob=0.3,
                 prediction_type="v_prediction")  # fmt: skip
    result = train(cfg)
    assert result["final"] and (out / "validation" / "step-000003.png").is_file()
    records = log_of(out)
    assert all(np.isfinite(r["diffusion"]) for r in records)
    loaded = EditModel.from_pretrained(out / "final")
    assert loaded.config.mode == "multi_step"
    assert loaded.scheduler.config.prediction_type == "v_prediction"
    with pytest.raises(ValueError, match="prediction_type must be"):
        TrainConfig(prediction_type="x0")


def test_finish_from_timestep_teaches_finishing_a_teachers_steps(data_dir, init_model, tmp_path):
    """Half the records start from pure noise, half from their target noised to t in range."""
    model = EditModel.from_pretrained(init_model)
    full = torch.rand(64, 3, 32, 32)
    noise = torch.randn(64, 4, 4, 4)
    torch.manual_seed(5)
    x_t, t = finish_inputs(model, full, noise, 700)
    torch.manual_seed(5)  # the same draw of the VAE posterior
    x0 = model.vae.encode(full * 2 - 1).latent_dist.sample() * model.vae.config.scaling_factor
    plain = t == 999
    assert 0.3 < plain.float().mean() < 0.7 and t.min() >= 700 and t.max() <= 999
    torch.testing.assert_close(x_t[plain], noise[plain], rtol=0, atol=0)
    a = model.scheduler.alphas_cumprod[t[~plain]].float()[:, None, None, None]
    torch.testing.assert_close(x_t[~plain], a.sqrt() * x0[~plain] + (1 - a).sqrt() * noise[~plain])
    with pytest.raises(ValueError, match=r"finish_from_timestep must lie in \[0, 999\)"):
        finish_inputs(model, full, noise, 999)
    with pytest.raises(ValueError, match="finish_from_timestep"):
        TrainConfig(finish_from_timestep=1000)
    with pytest.raises(ValueError, match=r"finish_from_timestep must lie in \[0, 999\)"):
        train(config(data_dir, init_model, tmp_path / "bad", finish_from_timestep=999))


def test_the_final_bundle_carries_its_teacher(data_dir, init_model, tmp_path):
    """--teacher DIR --structure-steps k: the student trains alone; its bundle proposes with
    k steps of the teacher's UNet, which must share the student's autoencoder."""
    teacher = EditModel.from_pretrained(init_model, mode="multi_step")
    teacher.unet = tiny.tiny_unet(seed=3)  # another multi-step UNet on the same autoencoder
    teacher.scheduler = type(teacher.scheduler).from_config(
        teacher.scheduler.config, prediction_type="v_prediction"
    )
    teacher.save_pretrained(tmp_path / "teacher")
    out = tmp_path / "finish"
    train(config(data_dir, init_model, out, max_steps=2, checkpoint_every=0, validate_every=1,
                 finish_from_timestep=700, teacher=str(tmp_path / "teacher"),
                 structure_steps=2))  # fmt: skip
    assert all(np.isfinite(r["reconstruction"]) for r in log_of(out))
    trained = EditModel.from_pretrained(out / "final")
    assert trained.config.structure_steps == 2 and trained.config.mode == "one_step"
    # the teacher keeps predicting v beside the epsilon student
    assert trained.config.teacher_prediction_type == "v_prediction"
    assert trained.scheduler.config.prediction_type == "epsilon"
    assert trained.teacher_model().scheduler.config.prediction_type == "v_prediction"
    for name, p in teacher.unet.state_dict().items():
        torch.testing.assert_close(trained.teacher_unet.state_dict()[name], p, msg=name)
    canvas = torch.rand(3, 32, 32)
    hybrid = trained.propose(canvas, "a red circle", n=2, seed=0)
    assert hybrid.shape == (2, 3, 32, 32) and torch.isfinite(hybrid).all()
    assert not torch.equal(hybrid, trained.propose(canvas, "a red circle", n=2, seed=0,
                                                   structure_steps=0))  # fmt: skip
    trained.config.teacher_prediction_type = None  # read as epsilon: other teacher steps
    assert not torch.equal(hybrid, trained.propose(canvas, "a red circle", n=2, seed=0))

    other = tiny.build_edit_model("tiny_clip", resolution=32, vae_blocks=(8, 8, 16, 16), seed=7)
    other.save_pretrained(tmp_path / "other")  # its own autoencoder: latents of another space
    with pytest.raises(ValueError, match="autoencoder's encoder differs"):
        train(config(data_dir, init_model, tmp_path / "bad", teacher=str(tmp_path / "other")))
    with pytest.raises(FileNotFoundError, match="no bundle there"):
        train(config(data_dir, init_model, tmp_path / "bad", teacher=str(tmp_path / "nowhere")))
    with pytest.raises(ValueError, match="structure_steps > 0 needs --teacher"):
        TrainConfig(structure_steps=1)
    with pytest.raises(ValueError, match=r"structure_steps must lie in \[0, 20\)"):
        train(config(data_dir, init_model, tmp_path / "bad", teacher=str(tmp_path / "teacher"),
                     structure_steps=20))  # fmt: skip


def test_dropout_masks_follow_instruct_pix2pix_split():
    torch.manual_seed(0)
    cfg = TrainConfig(drop_text_prob=0.1, drop_image_prob=0.2, drop_both_prob=0.05)
    text, image = dropout_masks(200_000, cfg, "cpu")
    assert (text & ~image).float().mean().item() == pytest.approx(0.1, abs=0.005)
    assert (text & image).float().mean().item() == pytest.approx(0.05, abs=0.005)
    assert (image & ~text).float().mean().item() == pytest.approx(0.2, abs=0.005)


def test_reconstruction_loss_decreases_on_a_fixed_batch(init_model, tmp_path):
    data = tmp_path / "two"
    write_shard(data, n=2)
    out = tmp_path / "overfit"
    cfg = config(data, init_model, out, batch_size=2, max_steps=20, checkpoint_every=0,
                 learning_rate=2e-3, perceptual_weight=0.0, validation_records=1,
                 train_decoder=True)  # fmt: skip
    train(cfg)
    rec = [r["reconstruction"] for r in log_of(out)]
    assert len(rec) == 20
    # a random tiny VAE first learns the batch's colours (about -18% in 20 steps); fresh
    # noise each step keeps the curve from being monotone
    assert np.mean(rec[-3:]) < 0.88 * rec[0]
    assert np.mean(rec[-5:]) < np.mean(rec[5:10]) < rec[0]


def test_all_one_step_losses_and_skips(data_dir, init_model, tmp_path):
    from cofrida.scorer import SceneScorer

    scorer_dir = tmp_path / "scorer"
    SceneScorer().save(scorer_dir)
    out = tmp_path / "all"
    cfg = config(data_dir, init_model, out, max_steps=2, checkpoint_every=2, skip_connections=True,
                 adversarial_weight=0.1, text_alignment_weight=0.1, scorer=str(scorer_dir),
                 perceptual="scorer")  # fmt: skip
    train(cfg)
    last = log_of(out)[-1]
    for key in ("reconstruction", "perceptual", "adversarial", "text_alignment", "discriminator"):
        assert np.isfinite(last[key]), key
    assert (out / "final" / "vae_skips.safetensors").is_file()


def test_bad_data_gives_clear_errors(init_model, tmp_path, capsys):
    code = train_cli.main(["--data-dir", str(tmp_path / "nowhere"), "--output-dir", str(tmp_path)])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"data/\*\.parquet"):
        ShardDataset(tmp_path / "empty", 32)
    bad = tmp_path / "bad"
    write_shard(bad, n=2, drop=("caption", "full"))
    with pytest.raises(ValueError, match=r"lack the columns \['full', 'caption'\]"):
        train(config(bad, init_model, tmp_path / "out"))
    with pytest.raises(ValueError, match="mode"):
        TrainConfig(mode="three_step")
