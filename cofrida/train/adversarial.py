"""Training a one-step model that paints what the prompt names, in varied ways (issue 14).

A one-step model trained by regression alone learns the mean of all completions: where a
missing object could go is uncertain, so the mean is an empty or smeared canvas and the noise
input stops mattering. Three pieces counter that, each a `TrainConfig` option:

* **A conditional, multi-scale discriminator** (`ConditionalPatchDiscriminator`,
  ``discriminator="conditional"``): it sees the canvas and the painting side by side (6
  channels) at ``discriminator_scales`` resolutions, and the prompt's pooled embedding through a
  projection (Miyato & Koyama 2018: logit = head(features) + <embed(prompt), features> per
  patch). It learns that a painting must fit *its* canvas and *its* prompt: besides real and
  generated paintings, real paintings with another record's prompt or canvas are fakes
  (matching-aware, as in text-to-image GANs). Hinge losses.
* **Best of K** (``diversity_samples=K``): each record is proposed from K noise draws and the
  regression terms (pixel + perceptual) count only the closest of the K. The mean of the
  completions no longer minimises the loss, so the draws can specialise (one puts the bird
  left, one right); the adversarial term sees every draw, so every draw must look real.
* **A diversity hinge** (``diversity_weight``, ``diversity_target``): per record,
  ``relu(target - d) / target`` with d the mean absolute difference of two draws' paintings
  (0..1) *where the target changes the canvas* (dilated by `CHANGE_DILATE_PX`), so different
  seeds paint the new things differently, up to the target and no further (a bounded form of
  the mode-seeking loss of MSGAN, Mao et al. 2019). Measured: over the whole image it bought
  diversity with noise all over the kept canvas (damage 0.22 -> 0.59 in 100 steps).
* **Change weight** (``change_weight``): the regression adds the mean L1 over the region the
  target changes, so the removed object (1-5 % of the image) weighs as much as the rest, and
  the closest of the K draws is the one that painted it best, not the one with least speckle.
* **Keep** (``keep_weight``): every draw, not only the closest, is pulled (L1) to the canvas
  where the target keeps it (per-pixel mean |target - canvas| below `KEEP_TOLERANCE`): what
  stays is certain, so there is no mean to fear there.

Shapes: images (B, 3, S, S) in 0..1, prompts' pooled embeddings (B, D).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from cofrida.model.placement import training_bumps
from cofrida.model.text_encoder import TextEmbeddings
from cofrida.train.losses import EdgeStatsLoss

KEEP_TOLERANCE = 0.04  # mean |target - canvas| over RGB (0..1) below which a pixel is kept
CHANGE_DILATE_PX = 4  # the changed region is grown by this before diversity is measured there


def change_mask(target: torch.Tensor, canvas: torch.Tensor) -> torch.Tensor:
    """(B, 1, S, S) float: 1 where the target changes the canvas (dilated), else 0."""
    changed = ((target - canvas).abs().mean(1, keepdim=True) >= KEEP_TOLERANCE).float()
    k = 2 * CHANGE_DILATE_PX + 1
    return F.max_pool2d(changed, k, 1, CHANGE_DILATE_PX)


class ConditionalPatchDiscriminator(nn.Module):
    """Patch realness of a painting given its canvas and prompt, at several scales.

    Args:
        text_dim: D, the pooled prompt embedding's size.
        width: channels of the first layer (doubled twice); ~0.3M parameters per scale at 32.
        scales: resolutions judged (full, 1/2, ...): coarse scales see layout, fine ones strokes.
    """

    def __init__(self, text_dim: int, width: int = 32, scales: int = 2) -> None:
        super().__init__()
        if scales < 1 or width < 1 or text_dim < 1:
            raise ValueError("ConditionalPatchDiscriminator needs scales, width, text_dim >= 1")
        sn = nn.utils.parametrizations.spectral_norm
        self.scales = scales
        self.bodies, self.heads, self.embeds = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        for _ in range(scales):
            layers, ch = [], 6
            for out in (width, 2 * width, 4 * width):
                layers += [sn(nn.Conv2d(ch, out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
                ch = out
            self.bodies.append(nn.Sequential(*layers))
            self.heads.append(sn(nn.Conv2d(ch, 1, 3, padding=1)))
            self.embeds.append(sn(nn.Linear(text_dim, ch)))

    def forward(
        self, canvas: torch.Tensor, image: torch.Tensor, text: torch.Tensor
    ) -> list[torch.Tensor]:
        """Logits (B, 1, h_s, w_s) per scale for paintings `image` on `canvas` with prompt `text`.

        Args:
            canvas, image: (B, 3, S, S) in 0..1.
            text: (B, D) pooled prompt embeddings.
        """
        x = torch.cat([canvas, image], dim=1) * 2 - 1
        out = []
        for s in range(self.scales):
            if s > 0:
                x = F.avg_pool2d(x, 2)
            feats = self.bodies[s](x)  # (B, C, h, w)
            proj = (self.embeds[s](text.to(feats.dtype))[:, :, None, None] * feats).sum(1, True)
            out.append(self.heads[s](feats) + proj / math.sqrt(feats.shape[1]))
        return out


def hinge_d(real: list[torch.Tensor], fakes: list[list[torch.Tensor]], weights) -> torch.Tensor:
    """Hinge discriminator loss over scales: real patches above +1, each fake set below -1."""
    total = real[0].new_zeros(())
    for s, logits in enumerate(real):
        total = total + F.relu(1 - logits).mean()
        for fake, w in zip(fakes, weights, strict=True):
            total = total + w * F.relu(1 + fake[s]).mean()
    return total / len(real)


def hinge_g(fake: list[torch.Tensor]) -> torch.Tensor:
    """Hinge generator loss over scales: -mean logit."""
    return -sum(logits.mean() for logits in fake) / len(fake)


def discriminator_loss(
    disc: ConditionalPatchDiscriminator,
    canvas: torch.Tensor,
    real: torch.Tensor,
    fake: torch.Tensor,
    text: torch.Tensor,
) -> torch.Tensor:
    """The discriminator's loss on one batch.

    Real: (canvas, real painting, prompt). Fakes: generated paintings (K per record allowed:
    ``fake`` (K*B, ...) with canvas and text repeated inside), and, when B >= 2, real paintings
    with the next record's prompt or canvas (weight 1/2 each): a painting that ignores its
    prompt or canvas is a fake.
    """
    b = real.shape[0]
    k = fake.shape[0] // b
    rep = (k, 1, 1, 1)
    fakes = [disc(canvas.repeat(rep), fake.detach(), text.repeat(k, 1))]
    weights = [1.0]
    if b >= 2:
        fakes.append(disc(canvas, real, text.roll(1, 0)))
        fakes.append(disc(canvas.roll(1, 0), real, text))
        weights += [0.5, 0.5]
    return hinge_d(disc(canvas, real, text), fakes, weights)


class DiversityObjective(nn.Module):
    """The one-step generator terms of issue 14 on K draws per record.

    Args:
        config: `TrainConfig` (reconstruction kind and weight, perceptual weight, adversarial
            weight, diversity_samples, diversity_weight, diversity_target).
        perceptual: a per-sample perceptual loss ``(pred, target) -> (N,)``; None: the
            offline `EdgeStatsLoss`.
        discriminator: the conditional discriminator when adversarial_weight > 0.
        scorer: the frozen scorer when text_alignment_weight > 0.
    """

    def __init__(self, config, perceptual=None, discriminator=None, scorer=None) -> None:
        super().__init__()
        self.config, self.discriminator, self.scorer = config, discriminator, scorer
        self.perceptual = perceptual or EdgeStatsLoss()

    def per_sample(
        self, pred: torch.Tensor, target: torch.Tensor, canvas: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(N,) weighted pixel + perceptual loss of each painting against its target.

        With ``change_weight`` > 0 (and the canvases given), adds that times the mean L1 over
        the region the target changes (`change_mask`; 0 for a record that changes nothing).
        """
        cfg = self.config
        diff = pred - target
        rec = diff.abs() if cfg.reconstruction == "l1" else diff.pow(2)
        loss = cfg.reconstruction_weight * rec.mean((1, 2, 3))
        if cfg.change_weight > 0 and canvas is not None:
            region = change_mask(target, canvas)  # (N, 1, S, S)
            area = (3 * region.sum((1, 2, 3))).clamp_min(1.0)
            loss = loss + cfg.change_weight * (diff.abs() * region).sum((1, 2, 3)) / area
        if cfg.perceptual_weight > 0:
            loss = loss + cfg.perceptual_weight * self.perceptual(pred, target, per_sample=True)
        return loss

    def forward(
        self,
        pred: torch.Tensor,
        target: torch.Tensor,
        canvas: torch.Tensor,
        text: torch.Tensor,
        captions: list[str] | None = None,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of (K*B, 3, S, S) paintings: draw k of record i at row k * B + i.

        Args:
            pred: the K draws' paintings; target, canvas: (B, 3, S, S); text: (B, D) pooled.
            captions: the B prompts (for the text-alignment term).

        Returns:
            (total, {term: value}) with ``best_of_k`` (the regression of the closest draw),
            ``adversarial``, ``diversity`` (hinge) and ``pair_difference`` (mean |draw 0 - draw
            1|, the figure the hinge raises).
        """
        cfg = self.config
        b = target.shape[0]
        k = pred.shape[0] // b
        pred = pred.float()
        regression = self.per_sample(
            pred, target.repeat(k, 1, 1, 1), canvas.repeat(k, 1, 1, 1)
        ).view(k, b)
        best = regression.min(0).values.mean()
        parts = {"best_of_k": best}
        total = best
        if cfg.adversarial_weight > 0 and self.discriminator is not None:
            logits = self.discriminator(canvas.repeat(k, 1, 1, 1), pred, text.repeat(k, 1))
            parts["adversarial"] = hinge_g(logits)
            total = total + cfg.adversarial_weight * parts["adversarial"]
        if cfg.text_alignment_weight > 0 and self.scorer is not None:
            parts["text_alignment"] = -self.scorer(pred.clamp(0, 1), list(captions) * k).mean()
            total = total + cfg.text_alignment_weight * parts["text_alignment"]
        if cfg.keep_weight > 0:
            kept = ((target - canvas).abs().mean(1, keepdim=True) < KEEP_TOLERANCE).float()
            kept = kept.repeat(k, 1, 1, 1)
            off = (pred - canvas.repeat(k, 1, 1, 1)).abs() * kept
            parts["keep"] = off.sum() / (3 * kept.sum()).clamp_min(1.0)
            total = total + cfg.keep_weight * parts["keep"]
        if k >= 2:
            draws = pred.view(k, b, *pred.shape[1:])
            diff = (draws[0] - draws[1]).abs()  # (B, 3, S, S)
            parts["pair_difference"] = diff.mean()
            if cfg.diversity_weight > 0:
                region = change_mask(target, canvas)  # (B, 1, S, S)
                area = region.sum((1, 2, 3))
                d = (diff * region).sum((1, 2, 3)) / (3 * area).clamp_min(1.0)
                tau = cfg.diversity_target
                hinge = F.relu(tau - d) / tau * (area > 0).float()
                parts["diversity"] = hinge.mean()
                total = total + cfg.diversity_weight * parts["diversity"]
        return total, {k_: float(v.detach()) for k_, v in parts.items()}


def repeat_draws(k: int, *tensors: torch.Tensor | None) -> list[torch.Tensor | None]:
    """Each (B, ...) tensor repeated K times along the batch (draw k of record i at k*B + i)."""
    return [None if t is None else t.repeat(k, *([1] * (t.dim() - 1))) for t in tensors]


def uses_objective(config) -> bool:
    """Whether a one-step run trains with `DiversityObjective` (any issue-14 option set)."""
    return (
        config.discriminator == "conditional"
        or config.diversity_samples > 1
        or config.diversity_weight > 0
        or config.keep_weight > 0
        or config.change_weight > 0
        or config.placement_strength > 0
    )


def build_discriminator(config, model) -> nn.Module:
    """The discriminator `config` asks for: the small unconditional `PatchDiscriminator`, or
    a `ConditionalPatchDiscriminator` sized to the model's pooled prompt embedding."""
    from cofrida.train.losses import PatchDiscriminator

    if config.discriminator != "conditional":
        return PatchDiscriminator()
    with torch.no_grad():
        dim = int(model.text_encoder([""], allow_empty=True).pooled.shape[-1])
    width, scales = config.discriminator_width, config.discriminator_scales
    return ConditionalPatchDiscriminator(dim, width, scales)


def objective_step(objective: DiversityObjective, trainable, model, batch, text, config, device):
    """One step's generator side with K draws per record.

    Returns:
        (paintings (K*B, 3, S, S), total loss, {term: value}).
    """
    from cofrida.train.objectives import finish_inputs

    k = config.diversity_samples
    b, _, h, w = batch["partial"].shape
    f = model.vae_scale_factor
    noise = torch.randn(k * b, 4, h // f, w // f, device=device)
    if config.placement_strength > 0:
        bumps = training_bumps(
            change_mask(batch["full"], batch["partial"]),
            h // f,
            w // f,
            config.placement_prob,
            config.placement_distractor_prob,
        )  # (B, h/f, w/f): every draw of a record gets its record's bump
        noise = noise + config.placement_strength * bumps.repeat(k, 1, 1)[:, None]
    full, hidden, pooled, mask = repeat_draws(
        k, batch["full"], text.hidden_states, text.pooled, text.mask
    )
    t = None
    if config.finish_from_timestep:
        noise, t = finish_inputs(model, full, noise, config.finish_from_timestep)
    pred = trainable(batch["partial"], TextEmbeddings(hidden, pooled, mask), noise, t, draws=k)
    loss, parts = objective(pred, batch["full"], batch["partial"], text.pooled, batch["caption"])
    return pred, loss, parts


def discriminator_step_loss(discriminator, config, batch, pred, text) -> torch.Tensor:
    """The discriminator's loss for this step, conditional or not."""
    from cofrida.train.losses import hinge_discriminator_loss

    fake = pred.detach().float()
    if config.discriminator == "conditional":
        return discriminator_loss(discriminator, batch["partial"], batch["full"], fake, text.pooled)
    return hinge_discriminator_loss(discriminator(batch["full"]), discriminator(fake))
