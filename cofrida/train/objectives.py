"""What one training step computes: the one-step generator and its losses, the multi-step
denoising loss with conditioning dropout.

The trainable parts are wrapped in one `nn.Module` per mode (`OneStepGenerator`,
`MultiStepDenoiser`) so that `accelerator.prepare` sees a single module whose forward runs
every trainable parameter (DDP syncs gradients of what the forward touches).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from cofrida.model.text_encoder import TextEmbeddings
from cofrida.model.unet_io import text_inputs
from cofrida.train.config import TrainConfig
from cofrida.train.losses import (
    EdgeStatsLoss,
    FeatureLoss,
    hinge_generator_loss,
    reconstruction_loss,
)


class OneStepGenerator(nn.Module):
    """Canvas + prompt -> finished painting in one UNet pass, differentiable (pix2pix-Turbo).

    The same computation as ``EditModel.propose`` in one-step mode with ``structure_steps=0``:
    the canvas is encoded (posterior mode, unscaled), the UNet sees pure noise z_T beside it at
    the model's fixed timestep, its prediction becomes clean latents x0, and the VAE decodes
    them (with the encoder->decoder skips when the model has them).

    Args:
        model: the `EditModel` (its unet, vae and vae_skips become submodules here).
    """

    def __init__(self, model) -> None:
        super().__init__()
        self.unet, self.vae, self.vae_skips = model.unet, model.vae, model.vae_skips
        self.timestep = int(model.config.timestep)
        self._x0 = model.predicted_x0

    def forward(
        self,
        partial: torch.Tensor,
        text: TextEmbeddings,
        noise: torch.Tensor,
        timesteps: torch.Tensor | None = None,
        draws: int = 1,
    ) -> torch.Tensor:
        """(B, 3, S, S) canvases in 0..1 -> (K*B, 3, S, S) paintings in about 0..1 (unclamped).

        Args:
            partial: the canvases.
            text: the prompts' `TextEmbeddings`, (K*B, ...).
            noise: (K*B, 4, h, w) latents to finish: z_T, or x_t at ``timesteps``.
            timesteps: (K*B,) timesteps of ``noise``; None = the model's fixed one-step timestep.
            draws: K, proposals per canvas (draw k of canvas i at row k * B + i): each canvas
                is encoded once and its latents and skip activations are repeated.
        """
        skips = self.vae_skips
        with torch.no_grad():
            if skips is not None:
                skips.capture = True
            try:
                canvas = self.vae.encode(partial * 2 - 1).latent_dist.mode()  # (B, 4, h, w)
            finally:
                if skips is not None:
                    skips.capture = False
            if draws > 1:
                canvas = canvas.repeat(draws, 1, 1, 1)  # (K*B, 4, h, w)
                if skips is not None:
                    skips.repeat(draws)
        if timesteps is None:
            t = torch.full((noise.shape[0],), self.timestep, device=noise.device, dtype=torch.long)
        else:
            t = timesteps.to(noise.device, torch.long)
        pred = self.unet(
            torch.cat([noise, canvas.to(noise.dtype)], dim=1),  # (B, 8, h, w)
            t,
            **text_inputs(self.unet, text, noise.dtype),
        ).sample
        x0 = self._x0(pred, noise, t)
        if skips is not None:
            skips.inject = True
        try:
            out = self.vae.decode(x0 / self.vae.config.scaling_factor).sample
        finally:
            if skips is not None:
                skips.inject = False
                skips.clear()
        return (out + 1) / 2


def check_finish_timestep(model, min_timestep: int) -> None:
    """Raise ValueError unless 0 <= min_timestep < the model's one-step timestep."""
    fixed = int(model.config.timestep)
    if not 0 <= min_timestep < fixed:
        raise ValueError(
            f"finish_from_timestep must lie in [0, {fixed}) (the model's one-step timestep), "
            f"got {min_timestep}"
        )


def finish_inputs(
    model, full: torch.Tensor, noise: torch.Tensor, min_timestep: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """One-step inputs that teach the model to finish a teacher's first steps.

    Each record, with probability 1/2, starts from pure noise at the model's fixed timestep
    (the plain one-step proposal), else from its target noised to a timestep drawn uniformly
    from [min_timestep, fixed timestep): x_t = sqrt(a_t) x0 + sqrt(1 - a_t) noise, the form the
    teacher's partial sampling hands over (`EditModel._sample`).

    Args:
        model: the `EditModel` (frozen VAE, schedule).
        full: (B, 3, S, S) targets in 0..1.
        noise: (B, 4, S/8, S/8) standard normal.
        min_timestep: the lowest timestep drawn.

    Returns:
        (x_t (B, 4, S/8, S/8), timesteps (B,) long).
    """
    check_finish_timestep(model, min_timestep)
    fixed = int(model.config.timestep)
    b, device = noise.shape[0], noise.device
    with torch.no_grad():
        x0 = model.vae.encode(full * 2 - 1).latent_dist.sample() * model.vae.config.scaling_factor
    drawn = torch.randint(min_timestep, fixed, (b,), device=device)
    plain = torch.rand(b, device=device) < 0.5
    t = torch.where(plain, torch.full_like(drawn, fixed), drawn)
    a = model.alpha_bar(t, device)[:, None, None, None]
    noised = a.sqrt() * x0.to(noise.dtype) + (1 - a).sqrt() * noise
    return torch.where(plain[:, None, None, None], noise, noised), t


class MultiStepDenoiser(nn.Module):
    """The UNet as InstructPix2Pix trains it: noisy latents + canvas latents -> prediction."""

    def __init__(self, model) -> None:
        super().__init__()
        self.unet = model.unet

    def forward(self, noisy, canvas, t, text: TextEmbeddings) -> torch.Tensor:
        """Noisy latents, canvas latents (B, 4, h, w), timesteps (B,) -> prediction (B, 4, h, w)."""
        return self.unet(
            torch.cat([noisy, canvas], dim=1),  # (B, 8, h, w)
            t,
            **text_inputs(self.unet, text, noisy.dtype),
        ).sample


def encode_captions(model, captions: list[str], device) -> TextEmbeddings:
    """Frozen text encoder on a batch of captions, moved to ``device``."""
    emb = model.text_encoder(list(captions), allow_empty=True)
    mask = None if emb.mask is None else emb.mask.to(device)
    return TextEmbeddings(emb.hidden_states.to(device), emb.pooled.to(device), mask)


class OneStepLosses(nn.Module):
    """Weighted sum of the one-step loss terms (a weight of 0 skips its term).

    Args:
        config: the loss weights and kinds.
        scorer: a `cofrida.scorer.Scorer` (frozen) for text alignment / scorer perceptual.
        discriminator: the patch discriminator when the adversarial weight is > 0.
    """

    def __init__(self, config: TrainConfig, scorer=None, discriminator=None) -> None:
        super().__init__()
        self.config, self.scorer, self.discriminator = config, scorer, discriminator
        if config.perceptual == "scorer":
            if not hasattr(scorer, "image_features"):
                raise ValueError("perceptual='scorer' needs a scorer with image_features (scene)")
            self.perceptual = FeatureLoss(scorer.image_features)
        else:
            self.perceptual = EdgeStatsLoss()

    def forward(self, pred, target, captions) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of (B, 3, S, S) predictions vs targets; returns (total, {term: value})."""
        cfg = self.config
        pred = pred.float()
        parts = {"reconstruction": reconstruction_loss(pred, target, cfg.reconstruction)}
        total = cfg.reconstruction_weight * parts["reconstruction"]
        if cfg.perceptual_weight > 0:
            parts["perceptual"] = self.perceptual(pred, target)
            total = total + cfg.perceptual_weight * parts["perceptual"]
        if cfg.adversarial_weight > 0:
            parts["adversarial"] = hinge_generator_loss(self.discriminator(pred))
            total = total + cfg.adversarial_weight * parts["adversarial"]
        if cfg.text_alignment_weight > 0:
            parts["text_alignment"] = -self.scorer(pred.clamp(0, 1), list(captions)).mean()
            total = total + cfg.text_alignment_weight * parts["text_alignment"]
        return total, {k: float(v.detach()) for k, v in parts.items()}


def dropout_masks(batch: int, config: TrainConfig, device) -> tuple[torch.Tensor, torch.Tensor]:
    """InstructPix2Pix conditioning dropout: (drop_text, drop_image) bool (B,) masks.

    One uniform draw per record: [0, p_text) drops the prompt only, [p_text, p_text + p_both)
    drops both, the next p_image drops the canvas only.
    """
    r = torch.rand(batch, device=device)
    pt, pb, pi = config.drop_text_prob, config.drop_both_prob, config.drop_image_prob
    return r < pt + pb, (r >= pt) & (r < pt + pb + pi)


def multi_step_loss(
    denoiser, model, noise_scheduler, batch: dict, text: TextEmbeddings, uncond, config
) -> tuple[torch.Tensor, dict[str, float]]:
    """Epsilon / v-prediction diffusion loss on noisy target latents, canvas concatenated.

    Args:
        denoiser: the (prepared) `MultiStepDenoiser`.
        model: the `EditModel` (frozen VAE).
        noise_scheduler: a `DDPMScheduler` with the model's schedule and prediction_type.
        batch: ``partial``/``full`` (B, 3, S, S) on the device.
        text: the captions' embeddings; uncond: the embedding of "" (1, T, D).
        config: dropout probabilities.
    """
    vae = model.vae
    with torch.no_grad():
        latents = vae.encode(batch["full"] * 2 - 1).latent_dist.sample()
        latents = latents * vae.config.scaling_factor  # (B, 4, h, w)
        canvas = vae.encode(batch["partial"] * 2 - 1).latent_dist.mode()  # unscaled, as IP2P
    b = latents.shape[0]
    noise = torch.randn_like(latents)
    steps = noise_scheduler.config.num_train_timesteps
    t = torch.randint(0, steps, (b,), device=latents.device, dtype=torch.long)
    noisy = noise_scheduler.add_noise(latents, noise, t)
    if noise_scheduler.config.prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(latents, noise, t)
    else:
        target = noise

    # conditioning dropout for classifier-free guidance on text and image separately
    drop_text, drop_image = dropout_masks(b, config, latents.device)
    hidden = torch.where(drop_text[:, None, None], uncond.hidden_states, text.hidden_states)
    pooled = torch.where(drop_text[:, None], uncond.pooled, text.pooled)
    mask = None
    if text.mask is not None:
        mask = torch.where(drop_text[:, None], uncond.mask, text.mask)
    canvas = canvas * (~drop_image).to(canvas.dtype)[:, None, None, None]

    pred = denoiser(noisy, canvas, t, TextEmbeddings(hidden, pooled, mask))
    loss = F.mse_loss(pred.float(), target.float())
    return loss, {
        "diffusion": float(loss.detach()),
        "dropped_text": float(drop_text.float().mean()),
        "dropped_image": float(drop_image.float().mean()),
    }
