"""The training loop: accelerate, checkpoints and resume, validation grids, the final bundle.

Runs unchanged on one CPU, one GPU, or under ``accelerate launch`` on many GPUs and nodes
(accelerate picks the process group from its launcher). Layout of ``output_dir``::

    train_config.json          the TrainConfig of the run
    log.jsonl                  one line per optimizer step: step, loss terms, lr, steps/s
    checkpoint-<step>/         accelerate state: the weights that train (LoRA: the adapters and
                               conv_in, not the frozen UNet/VAE), optimizer, scheduler, sampler,
                               RNG + training_state.json ({"step": ...}); the last m are kept
    validation/step-<step>.png rows of [canvas | proposal | target] for fixed records
    final/                     the fine-tuned EditModel bundle (EditModel.from_pretrained)
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cofrida.train.adversarial import (
    DiversityObjective,
    build_discriminator,
    discriminator_step_loss,
    objective_step,
    uses_objective,
)
from cofrida.train.checkpoint_state import keep_only_trainable
from cofrida.train.config import TrainConfig
from cofrida.train.data import ShardDataset, collate
from cofrida.train.objectives import (
    MultiStepDenoiser,
    OneStepGenerator,
    OneStepLosses,
    check_finish_timestep,
    encode_captions,
    finish_inputs,
    multi_step_loss,
)
from cofrida.train.optim import AdamWBF16
from cofrida.train.world import check_world

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
STATE_FILE = "training_state.json"


def load_init_model(config: TrainConfig):
    """The `EditModel` training starts from (see `TrainConfig.init_model`)."""
    from cofrida.model import EditModel, tiny

    if config.init_model.startswith("tiny:"):
        encoder = config.init_model.split(":", 1)[1]
        model = tiny.build_edit_model(
            encoder, resolution=config.resolution, mode=config.mode, seed=config.seed
        )
    else:
        model = EditModel.from_pretrained(
            config.init_model, resolution=config.resolution, mode=config.mode
        )
    if config.init_vae:
        model.replace_vae(config.init_vae)
    if config.prediction_type:  # saved with the bundle's schedule
        model.scheduler = type(model.scheduler).from_config(
            model.scheduler.config, prediction_type=config.prediction_type
        )
    return model


def list_checkpoints(output_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint in ``output_dir``, oldest first."""
    found = []
    root = Path(output_dir)
    if root.is_dir():
        for p in root.iterdir():
            m = CHECKPOINT_RE.match(p.name)
            if m and (p / STATE_FILE).is_file():
                found.append((int(m.group(1)), p))
    return sorted(found)


def resolve_resume(resume: str | None, output_dir: str | Path) -> Path | None:
    """``None``; ``"latest"`` (the newest checkpoint, or None when there is none); or a folder.

    Raises:
        FileNotFoundError: a named checkpoint folder lacks ``training_state.json``.
    """
    if not resume:
        return None
    if resume == "latest":
        found = list_checkpoints(output_dir)
        return found[-1][1] if found else None
    path = Path(resume)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"{path} is not a checkpoint folder (no {STATE_FILE})")
    return path


def _setup_trainable(model, config: TrainConfig) -> list[torch.nn.Parameter]:
    """Freeze what stays fixed; add LoRA / skips; return the parameters to optimise."""
    from cofrida.model import unet_io

    model.vae.requires_grad_(False)
    model.text_encoder.requires_grad_(False)
    if config.pooled_text:
        model.add_pooled_text()
    if config.finetune == "lora":
        if unet_io.has_lora(model.unet):
            model.unet.requires_grad_(False)
            for name, p in model.unet.named_parameters():
                p.requires_grad_(".lora_" in name)
        else:
            model.add_lora(rank=config.lora_rank, conv=config.lora_conv)
        # the first layer trains in full (pix2pix-Turbo): the canvas channels a text-to-image
        # UNet gets start at zero, and frozen they would keep the canvas unseen for good
        model.unet.conv_in.requires_grad_(True)
        if unet_io.uses_pooled_text(model.unet):  # new, not part of the base model
            model.unet.class_embedding.requires_grad_(True)
    else:
        model.unet.requires_grad_(True)
    if config.skip_connections and config.mode == "one_step":
        model.add_skip_connections()
    if model.vae_skips is not None:
        model.vae_skips.requires_grad_(config.mode == "one_step")
    decoder = [model.vae.decoder, model.vae.post_quant_conv]
    if config.train_decoder and config.mode == "one_step":
        for part in decoder:
            part.requires_grad_(True)
    if config.gradient_checkpointing:
        model.unet.enable_gradient_checkpointing()
    model.unet.train()
    params = [p for p in model.unet.parameters() if p.requires_grad]
    if model.vae_skips is not None:
        params += [p for p in model.vae_skips.parameters() if p.requires_grad]
    params += [p for part in decoder for p in part.parameters() if p.requires_grad]
    return params


def _to_bf16(model, config: TrainConfig, device) -> None:
    """Store the model in bfloat16; LoRA adapters and conv_in (the small trainable parts of a
    LoRA run) stay float32. Raises ValueError where the hardware has no bf16."""
    if torch.device(device).type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("weights_dtype bf16: this GPU has no bfloat16 (use fp32)")
    model.to(torch.bfloat16)
    if config.finetune == "lora":
        for p in model.unet.parameters():
            if p.requires_grad:
                p.data = p.data.float()


def _load_scorer(config: TrainConfig, device):
    if not config.scorer:
        return None
    from cofrida.scorer import load_scorer

    return load_scorer(config.scorer).to(device).eval().requires_grad_(False)


def _image_grid(rows: list[list[torch.Tensor]]) -> Image.Image:
    """Rows of (3, S, S) images in 0..1 -> one PIL image with 2 px white gutters."""
    s = rows[0][0].shape[-1]
    cols = max(len(r) for r in rows)
    grid = torch.ones(3, len(rows) * (s + 2), cols * (s + 2))
    for i, row in enumerate(rows):
        for j, im in enumerate(row):
            grid[:, i * (s + 2) : i * (s + 2) + s, j * (s + 2) : j * (s + 2) + s] = im
    arr = (grid.clamp(0, 1).permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    return Image.fromarray(np.ascontiguousarray(arr))


def _validate(
    model, items: list[dict], prompts: list[str], path: Path, mode: str, resolution: int
) -> None:
    """Write [canvas | proposal | target] rows for fixed records (+ extra prompts on the first).

    Nothing is written when there is neither a record nor a prompt to show.
    """
    jobs = [(it["partial"], it["caption"], it["full"]) for it in items]
    first = items[0]["partial"] if items else None
    for p in prompts:  # extra prompts on the first record's canvas (blank paper without one)
        canvas = first if first is not None else torch.ones(3, resolution, resolution)
        jobs.append((canvas, p, None))
    if not jobs:
        return
    was_training = model.unet.training
    model.unet.eval()
    rows = []
    for canvas, prompt, target in jobs:
        out = model.propose(canvas, prompt, n=1, seed=0, mode=mode)[0].cpu()
        rows.append([canvas, out] + ([target] if target is not None else []))
    path.parent.mkdir(parents=True, exist_ok=True)
    _image_grid(rows).save(path)
    model.unet.train(was_training)


def _truncate_log(log_path: Path, step: int) -> None:
    """Drop log lines after ``step`` (a resumed run re-does them, so none is repeated)."""
    if not log_path.is_file():
        return
    keep = [ln for ln in log_path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
    log_path.write_text("".join(ln + "\n" for ln in keep))


def _save_checkpoint(accelerator, output_dir: Path, step: int, keep: int) -> None:
    """accelerate state into ``checkpoint-<step>`` (via a temp folder), then prune old ones."""
    final = output_dir / f"checkpoint-{step}"
    tmp = output_dir / f".checkpoint-{step}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps({"step": step}) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        if keep > 0:
            for _, old in list_checkpoints(output_dir)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def train(
    config: TrainConfig,
    resume: str | None = None,
    on_log: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Fine-tune the edit model on the data shards.

    Args:
        config: the run (see `TrainConfig`).
        resume: None (start fresh), ``"latest"`` (the newest checkpoint in output_dir, if any)
            or a checkpoint folder. The run continues at the checkpoint's step up to
            ``config.max_steps``; data order, noise and optimizer state continue too.
        on_log: called on the main process with each step's log record.
        should_stop: polled after every step; True saves a checkpoint and returns early.

    Returns:
        {"step", "final" (bundle folder or None when stopped), "loss" (last), "stopped"}.

    Raises:
        FileNotFoundError: no shards, or a bad resume folder.
        ValueError: shards without the needed columns; bad config.
    """
    from accelerate import Accelerator, DataLoaderConfiguration
    from accelerate.utils import set_seed
    from diffusers import DDPMScheduler

    out = Path(config.output_dir)
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.grad_accumulation,
        project_dir=str(out),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    check_world(accelerator)
    keep_only_trainable(accelerator)
    set_seed(config.seed)

    # 1. Data first: a bad folder fails before any model is built.
    dataset = ShardDataset(
        config.data_dir,
        config.resolution,
        config.random_crop,
        config.random_flip,
        config.seed,
        config.target,
    )
    val_items = [dataset[i] for i in range(min(config.validation_records, len(dataset)))]
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=True,
        collate_fn=collate,
        num_workers=config.num_workers,
        drop_last=len(dataset) >= config.batch_size,
        # its own generator: starting an epoch must not draw from the global RNG, whose state
        # checkpoints restore (noise and dropout after a resume equal an uninterrupted run)
        generator=torch.Generator().manual_seed(config.seed),
    )

    # 2. Model, trainable parts, optimizer.
    model = load_init_model(config)
    if config.finish_from_timestep and config.mode == "one_step":
        check_finish_timestep(model, config.finish_from_timestep)  # before any step, not at one
    teacher = None
    if config.teacher:  # checked now; teacher and structure steps join the final bundle only
        model.set_teacher(config.teacher, config.structure_steps)
        teacher, model.teacher_unet = model.teacher_unet, None
        model.config.structure_steps = 0
    if config.placement_strength > 0:  # the bundle proposes with the noise it learned from
        model.config.placement_strength = config.placement_strength
    params = _setup_trainable(model, config)
    if not params:
        raise ValueError("nothing to train: the model has no trainable parameters")
    model.to(accelerator.device)
    if config.weights_dtype == "bf16":
        _to_bf16(model, config, accelerator.device)
    one_step = config.mode == "one_step"
    trainable = OneStepGenerator(model) if one_step else MultiStepDenoiser(model)
    adamw = AdamWBF16 if config.weights_dtype == "bf16" else torch.optim.AdamW
    optimizer = adamw(params, lr=config.learning_rate, weight_decay=config.adam_weight_decay)
    warmup = config.lr_warmup_steps * accelerator.num_processes
    lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup > 0 else 1.0
    )
    scorer = _load_scorer(config, accelerator.device)
    discriminator = d_optimizer = None
    if one_step and config.adversarial_weight > 0:
        discriminator = build_discriminator(config, model).to(accelerator.device)
        d_lr = config.discriminator_lr or config.learning_rate
        d_optimizer = torch.optim.AdamW(discriminator.parameters(), lr=d_lr)
    trainable, optimizer, loader, lr_scheduler = accelerator.prepare(
        trainable, optimizer, loader, lr_scheduler
    )
    if discriminator is not None:
        discriminator, d_optimizer = accelerator.prepare(discriminator, d_optimizer)
    losses = OneStepLosses(config, scorer, discriminator) if one_step else None
    objective = None  # issue 14: K draws, best-of-K regression, conditional D, diversity
    if one_step and uses_objective(config):
        objective = DiversityObjective(config, discriminator=discriminator, scorer=scorer)
    noise_scheduler = None if one_step else DDPMScheduler.from_config(model.scheduler.config)
    uncond = None
    if not one_step:
        uncond = encode_captions(model, [""], accelerator.device)

    if accelerator.num_processes > 1:  # each process its own noise (data is sharded already)
        set_seed(config.seed + accelerator.process_index)

    # 3. Resume: state, step, and where in the data order it stopped.
    step = 0
    start = resolve_resume(resume, out)
    if start is not None:
        accelerator.load_state(str(start))
        step = json.loads((start / STATE_FILE).read_text())["step"]
        accelerator.print(f"resumed from {start} at step {step}")
    log_path = out / "log.jsonl"
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        config.save(out)
        _truncate_log(log_path, step)

    # 4. The loop: one optimizer step per grad_accumulation micro-batches.
    per_epoch = max(len(loader), 1)
    consumed = step * config.grad_accumulation
    epoch, skip = divmod(consumed, per_epoch)
    last_loss, stopped = math.nan, False
    tick, tick_step = time.perf_counter(), step
    accum: dict[str, float] = {}
    seen: list[torch.Tensor] = []  # record indices of the current step's micro-batches
    while step < config.max_steps and not stopped:
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        batches = accelerator.skip_first_batches(loader, skip) if skip else loader
        skip = 0
        for batch in batches:
            with accelerator.accumulate(trainable):
                text = encode_captions(model, batch["caption"], accelerator.device)
                with accelerator.autocast():
                    if objective is not None:
                        pred, loss, parts = objective_step(
                            objective, trainable, model, batch, text, config, accelerator.device
                        )
                    elif one_step:
                        b, _, h, w = batch["partial"].shape
                        f = model.vae_scale_factor
                        noise = torch.randn(b, 4, h // f, w // f, device=accelerator.device)
                        t = None
                        if config.finish_from_timestep:
                            noise, t = finish_inputs(
                                model, batch["full"], noise, config.finish_from_timestep
                            )
                        pred = trainable(batch["partial"], text, noise, t)
                        loss, parts = losses(pred, batch["full"], batch["caption"])
                    else:
                        loss, parts = multi_step_loss(
                            trainable, model, noise_scheduler, batch, text, uncond, config
                        )
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                if discriminator is not None:
                    # the generator's loss left gradients on the discriminator too (they would
                    # push it the generator's way): its update uses its own loss only
                    d_optimizer.zero_grad(set_to_none=True)
                    with accelerator.autocast():
                        d_loss = discriminator_step_loss(discriminator, config, batch, pred, text)
                    accelerator.backward(d_loss)
                    d_optimizer.step()
                    d_optimizer.zero_grad(set_to_none=True)
                    parts["discriminator"] = float(d_loss.detach())
            for k, v in {"loss": float(loss.detach()), **parts}.items():
                accum[k] = accum.get(k, 0.0) + v / config.grad_accumulation
            seen.append(batch["index"])
            if not accelerator.sync_gradients:
                continue

            # one optimizer step done; loss: the mean over processes; records: the distinct
            # records of the step over all processes (batch x accumulation x processes when
            # the data is sharded as it should be)
            step += 1
            world = accelerator.reduce(torch.tensor([accum["loss"]], device=accelerator.device))
            accum["loss"] = float(world[0]) / accelerator.num_processes
            indices = accelerator.gather(torch.cat(seen).to(accelerator.device))
            seen = []
            last_loss = accum["loss"]
            now = time.perf_counter()
            record = {
                "step": step,
                **{k: round(v, 6) for k, v in accum.items()},
                "records": int(indices.unique().numel()),
                "lr": lr_scheduler.get_last_lr()[0],
                "steps_per_s": round((step - tick_step) / max(now - tick, 1e-9), 3),
            }
            accum = {}
            if accelerator.is_main_process:
                with log_path.open("a") as f:
                    f.write(json.dumps(record) + "\n")
                if on_log is not None:
                    on_log(record)
                if step % max(config.log_every, 1) == 0 or step == config.max_steps:
                    terms = " ".join(
                        f"{k} {v:.4f}" for k, v in record.items() if k not in ("step", "lr")
                    )
                    print(f"step {step}/{config.max_steps} {terms}", flush=True)
                    tick, tick_step = now, step
            stopped = bool(should_stop and should_stop())
            if config.checkpoint_every and (step % config.checkpoint_every == 0 or stopped):
                _save_checkpoint(accelerator, out, step, config.keep_checkpoints)
            if accelerator.is_main_process and (
                (config.validate_every and step % config.validate_every == 0)
                or step == config.max_steps
            ):
                _validate(
                    model, val_items, config.validation_prompts,
                    out / "validation" / f"step-{step:06d}.png", config.mode, config.resolution,
                )  # fmt: skip
            if step >= config.max_steps or stopped:
                break
        epoch += 1

    # 5. The fine-tuned bundle.
    accelerator.wait_for_everyone()
    final = None
    if not stopped:
        final = out / "final"
        if accelerator.is_main_process:
            if teacher is not None:
                model.teacher_unet = teacher
                model.config.structure_steps = config.structure_steps
            if config.weights_dtype == "bf16":
                model.to(torch.float32)  # the bundle in float32, as any other
            model.save_pretrained(final)  # the same modules the wrapped ones hold
    accelerator.end_training()
    loss = None if math.isnan(last_loss) else last_loss  # None: no step ran (valid JSON)
    return {"step": step, "final": None if final is None else str(final), "loss": loss,
            "stopped": stopped}  # fmt: skip
