"""Pre-training the small autoencoder a from-scratch edit model needs (`cofrida train-autoencoder`).

Real edit models (InstructPix2Pix, sd-turbo) come with a trained VAE. The default bundle is
trained from scratch on CPU, and no small pretrained autoencoder exists offline, so its
`AutoencoderKL` is first trained here to reconstruct painting images (the shards' partial
canvases, finished paintings and source images), then frozen while the UNet trains
(``cofrida train --init-vae``).

Loss: L1 + the offline perceptual term (multi-scale edges and local statistics) on the
reconstruction, plus a small KL term that keeps the latents near a unit Gaussian. At the end the
latents' spread over a sample of images sets ``scaling_factor`` (diffusers' convention: scaled
latents have unit standard deviation, so the noise schedule fits them).

Layout of ``output_dir``::

    autoencoder_config.json   the AutoencoderConfig of the run
    log.jsonl                 one line per step: step, loss terms, steps/s
    vae/                      the AutoencoderKL (diffusers save_pretrained), rewritten at every
                              save; training_state.json beside it holds the step reached
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from cofrida.train.data import decode_png, shard_files
from cofrida.train.losses import EdgeStatsLoss

IMAGE_COLUMNS = ("partial", "full", "source")
STATE_FILE = "training_state.json"


@dataclass
class AutoencoderConfig:
    """How `train_autoencoder` trains; written as ``autoencoder_config.json``."""

    data_dir: str = ""  # folder of shards (the make-data layout)
    output_dir: str = "out/autoencoder"
    resolution: int = 128  # px of the square images (shorter side resized, centre crop)
    blocks: tuple[int, ...] = (16, 32, 64)  # channels per block; 3 blocks = x4 downsampling
    mid_attention: bool = False  # no mid-block attention: fully convolutional, crop-trainable
    crop: int = 64  # px of the random square crops trained on (0 or >= resolution: whole images)
    learning_rate: float = 5e-4  # AdamW
    batch_size: int = 16
    max_steps: int = 2000
    kl_weight: float = 1e-4  # per latent value; small: the KL only keeps latents tame
    perceptual_weight: float = 0.5  # edges + local statistics (EdgeStatsLoss)
    save_every: int = 250  # steps between saves of vae/ (0 = only at the end)
    log_every: int = 25
    seed: int = 0

    def __post_init__(self) -> None:
        self.blocks = tuple(int(b) for b in self.blocks)
        if self.resolution < 16 or self.resolution % 2 ** (len(self.blocks) - 1):
            raise ValueError(
                f"AutoencoderConfig: resolution {self.resolution} must be >= 16 and a multiple "
                f"of the downsampling factor {2 ** (len(self.blocks) - 1)}"
            )
        if self.crop >= self.resolution:
            self.crop = 0  # a crop as large as the image is the whole image
        if self.crop < 0 or self.crop % 2 ** (len(self.blocks) - 1):
            raise ValueError(
                f"AutoencoderConfig: crop {self.crop} must be a multiple of the downsampling "
                f"factor {2 ** (len(self.blocks) - 1)} (0 = whole images)"
            )
        if self.crop and self.mid_attention:
            raise ValueError(
                "AutoencoderConfig: crops need mid_attention off (attention sees "
                "the whole image, so it would not transfer from crops)"
            )
        if self.batch_size < 1 or self.max_steps < 1 or len(self.blocks) < 2:
            raise ValueError("AutoencoderConfig: batch_size, max_steps >= 1 and >= 2 blocks")


class ImageColumns(torch.utils.data.Dataset):
    """Every image of a shard folder, one item per (record, column): (3, S, S) in 0..1.

    Args:
        data_dir: folder with ``data/*.parquet``.
        resolution: S.
        columns: which PNG columns to use (those present in the shards).
        crop: if > 0, items are random crop x crop windows of the S x S image (a new window
            each time an item is read).
    """

    def __init__(
        self, data_dir: str | Path, resolution: int, columns=IMAGE_COLUMNS, crop: int = 0
    ) -> None:
        import datasets

        files = shard_files(data_dir)
        try:
            table = datasets.load_dataset("parquet", data_files=files, split="train")
        except Exception as e:  # a corrupt or foreign file: say which folder
            raise ValueError(f"could not read the shards in {data_dir}: {e}") from e
        self.columns = [c for c in columns if c in table.column_names]
        if not self.columns or len(table) == 0:
            raise ValueError(f"shards in {data_dir} hold no image columns {list(columns)}")
        self.table = table.select_columns(self.columns)
        self.resolution, self.crop = resolution, crop

    def __len__(self) -> int:
        return len(self.table) * len(self.columns)

    def __getitem__(self, index: int) -> torch.Tensor:
        row, col = divmod(int(index), len(self.columns))
        image = decode_png(self.table[row][self.columns[col]], self.resolution)
        if self.crop and self.crop < self.resolution:
            y, x = torch.randint(0, self.resolution - self.crop + 1, (2,)).tolist()
            image = image[:, y : y + self.crop, x : x + self.crop]
        return image


class _Reconstruct(torch.nn.Module):
    """The VAE as one module whose forward runs every parameter (so DDP syncs them all)."""

    def __init__(self, vae) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, S, S) in 0..1 -> (reconstruction in about 0..1, KL per latent value)."""
        posterior = self.vae.encode(images * 2 - 1).latent_dist
        recon = (self.vae.decode(posterior.sample()).sample + 1) / 2
        return recon, posterior.kl().mean() / posterior.mean[0].numel()


def _latent_scale(vae, images: torch.Tensor) -> float:
    """1 / std of the posterior means of `images` (B, 3, S, S) in 0..1."""
    with torch.no_grad():
        latents = vae.encode(images * 2 - 1).latent_dist.mode()
    return float(1.0 / latents.std().clamp_min(1e-3))


def _save(vae, out: Path, step: int, scale_images: torch.Tensor) -> None:
    """Write vae/ with an up-to-date scaling_factor, then the step reached (atomically)."""
    vae.eval()
    vae.register_to_config(scaling_factor=_latent_scale(vae, scale_images))
    vae.save_pretrained(out / "vae")
    tmp = out / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps({"step": step}))
    tmp.replace(out / STATE_FILE)
    vae.train()


def train_autoencoder(
    config: AutoencoderConfig,
    resume: bool = False,
    on_log: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Train the autoencoder; returns {"step", "vae" (folder), "loss", "psnr_db", "stopped"}.

    Args:
        config: the run.
        resume: continue from ``output_dir/vae`` and its step (the optimizer restarts).
        on_log: called with each logged step's record.
        should_stop: polled after every step; True saves and returns early.

    Raises:
        FileNotFoundError: no shards; ``resume`` without a saved vae/.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from diffusers import AutoencoderKL

    from cofrida.model import tiny

    out = Path(config.output_dir)
    accelerator = Accelerator()
    set_seed(config.seed)
    dataset = ImageColumns(config.data_dir, config.resolution, crop=config.crop)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=len(dataset) >= config.batch_size,
        generator=torch.Generator().manual_seed(config.seed),
    )
    step = 0
    if resume:
        if not (out / "vae").is_dir() or not (out / STATE_FILE).is_file():
            raise FileNotFoundError(f"nothing to resume in {out}: no vae/ and {STATE_FILE}")
        vae = AutoencoderKL.from_pretrained(out / "vae")
        step = int(json.loads((out / STATE_FILE).read_text())["step"])
    else:
        vae = tiny.tiny_vae(config.blocks, seed=config.seed, mid_attention=config.mid_attention)
    out.mkdir(parents=True, exist_ok=True)
    if accelerator.is_main_process:
        cfg = dataclasses.asdict(config)
        (out / "autoencoder_config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    whole = ImageColumns(config.data_dir, config.resolution)
    scale_images = torch.stack([whole[i] for i in range(min(64, len(whole)))])
    perceptual = EdgeStatsLoss()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=config.learning_rate, weight_decay=0.0)
    model, optimizer, loader = accelerator.prepare(_Reconstruct(vae), optimizer, loader)
    model.train()
    log = (out / "log.jsonl").open("a") if accelerator.is_main_process else None
    t0, first_step, last, stopped = time.perf_counter(), step, {}, False
    while step < config.max_steps and not stopped:
        for images in loader:
            recon, kl = model(images)
            l1 = (recon - images).abs().mean()
            edges = perceptual(recon, images)
            loss = l1 + config.perceptual_weight * edges + config.kl_weight * kl
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step += 1
            mse = float(((recon.detach().clamp(0, 1) - images) ** 2).mean())
            last = {
                "step": step, "loss": float(loss.detach()), "l1": float(l1.detach()),
                "perceptual": float(edges.detach()), "kl": float(kl.detach()),
                "psnr_db": round(-10 * float(torch.log10(torch.tensor(max(mse, 1e-10)))), 2),
                "steps_per_s": round((step - first_step) / (time.perf_counter() - t0), 3),
            }  # fmt: skip
            if log is not None:
                log.write(json.dumps(last) + "\n")
                log.flush()
            if on_log is not None and (step % config.log_every == 0 or step == config.max_steps):
                on_log(last)
            stopped = bool(should_stop and should_stop())
            if accelerator.is_main_process and (
                stopped
                or step == config.max_steps
                or (config.save_every and step % config.save_every == 0)
            ):
                _save(accelerator.unwrap_model(model).vae, out, step, scale_images)
            if stopped or step >= config.max_steps:
                break
    if log is not None:
        log.close()
    return {
        "step": step,
        "vae": str(out / "vae"),
        "loss": last.get("loss"),
        "psnr_db": last.get("psnr_db"),
        "stopped": stopped,
    }
