"""Objectives: differentiable losses between a rendered painting and a target.

Every loss takes (3, H, W) images in 0..1 (or a pyramid of them) and returns a 0-d tensor;
lower is better. `Objective` composes them with the weights of a `PlannerConfig`:

- pixel: mean squared error in sRGB and in Lab (/100^2), over an image pyramid;
- structure: L1 between multi-scale luminance gradients (edges), an offline perceptual term;
- scorer: ``-weight * scorer(image[None], prompt).mean()`` for any differentiable image(-text)
  scorer ``scorer(images (B, 3, H, W) in 0..1, prompt: str) -> (B,)``, higher is better;
- keep: mean stroke coverage on protected pixels (co-painting), and
- margin: how far (m) stroke paths leave the canvas' margin.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from planner.config import PlannerConfig
from sim.palette import srgb_to_lab

Scorer = Callable[[torch.Tensor, str], torch.Tensor]

_LUMA = (0.299, 0.587, 0.114)


def pyramid(image: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[image, image/2, image/4, ...] by 2x2 average pooling; (C, H, W) each, `levels` long."""
    out = [image]
    for _ in range(levels - 1):
        if min(out[-1].shape[-2:]) < 8:
            break
        out.append(F.avg_pool2d(out[-1][None], 2, ceil_mode=True)[0])
    return out


def pixel_loss(
    render: torch.Tensor, target: torch.Tensor, rgb_weight: float = 1.0, lab_weight: float = 0.5
) -> torch.Tensor:
    """Weighted mean squared error in sRGB (0..1) and in Lab scaled by 1/100^2. (3, H, W) each."""
    loss = render.new_zeros(())
    if rgb_weight:
        loss = loss + rgb_weight * ((render - target) ** 2).mean()
    if lab_weight:
        lab_r = srgb_to_lab(render.permute(1, 2, 0).clamp(0, 1))  # (H, W, 3)
        lab_t = srgb_to_lab(target.permute(1, 2, 0).clamp(0, 1))
        loss = loss + lab_weight * (((lab_r - lab_t) / 100.0) ** 2).mean()
    return loss


def luminance(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) sRGB -> (1, H, W) luma."""
    w = image.new_tensor(_LUMA).view(3, 1, 1)
    return (image * w).sum(0, keepdim=True)


def gradients(gray: torch.Tensor) -> torch.Tensor:
    """(1, H, W) -> (2, H, W) central-difference gradients (x, y), replicate-padded."""
    p = F.pad(gray[None], (1, 1, 1, 1), mode="replicate")[0]  # (1, H+2, W+2)
    gx = (p[:, 1:-1, 2:] - p[:, 1:-1, :-2]) / 2
    gy = (p[:, 2:, 1:-1] - p[:, :-2, 1:-1]) / 2
    return torch.cat([gx, gy], 0)


def structure_loss(render_levels: list[torch.Tensor], target_levels: list[torch.Tensor]):
    """Mean L1 between luminance gradients of render and target over pyramid levels.

    Edges and texture count, flat colour offsets do not: complements the pixel loss the way a
    perceptual network's early layers would, without any pretrained weights.
    """
    loss = render_levels[0].new_zeros(())
    for r, t in zip(render_levels, target_levels, strict=False):
        loss = loss + (gradients(luminance(r)) - gradients(luminance(t))).abs().mean()
    return loss / len(render_levels)


def keep_loss(coverage: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Mean stroke coverage (H, W) over protected pixels, weighted by `keep` (H, W) in 0..1.

    0 when nothing is protected. Scaled by the protected fraction so the term's size does not
    depend on how much of the canvas the person painted.
    """
    total = keep.sum()
    if float(total) <= 0:
        return coverage.new_zeros(())
    return (coverage * keep).sum() / total


class Objective:
    """The weighted sum of the planner's losses against one target.

    Args:
        target: (3, H, W) in 0..1 at the render size.
        config: weights and pyramid depths.
        scorer: optional differentiable image(-text) scorer; used with `prompt` when
            `config.scorer_weight` > 0.
        prompt: text passed to the scorer.
        keep: optional (H, W) protection weights in 0..1 (co-painting keep-mask).
    """

    def __init__(
        self,
        target: torch.Tensor,
        config: PlannerConfig,
        scorer: Scorer | None = None,
        prompt: str = "",
        keep: torch.Tensor | None = None,
    ):
        self.config = config
        self.target = target
        self.levels = max(config.pixel_scales, config.structure_scales)
        self.target_levels = pyramid(target, self.levels)
        self.scorer = scorer if config.scorer_weight > 0 else None
        self.prompt = prompt
        self.keep = keep

    def pixel(self, render_levels: list[torch.Tensor]) -> torch.Tensor:
        """Pixel term averaged over the first `pixel_scales` pyramid levels."""
        c = self.config
        n = min(c.pixel_scales, len(render_levels))
        # Lab is costly (cube roots per pixel): it is evaluated from the half-size level down,
        # where colour differences are as visible, unless the pyramid has one level only.
        lab_from = 1 if n > 1 else 0
        terms = [
            pixel_loss(
                render_levels[i],
                self.target_levels[i],
                c.rgb_weight,
                c.lab_weight * n / (n - lab_from) if i >= lab_from else 0.0,
            )
            for i in range(n)
        ]
        return torch.stack(terms).mean()

    def __call__(
        self, render: torch.Tensor, coverage: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Total loss (0-d) and its parts as floats (for progress reports)."""
        c = self.config
        levels = pyramid(render, self.levels)
        parts = {"pixel": self.pixel(levels)}
        if c.structure_weight > 0:
            s = c.structure_scales
            parts["structure"] = c.structure_weight * structure_loss(
                levels[:s], self.target_levels[:s]
            )
        if self.scorer is not None:
            score = self.scorer(render[None].clamp(0, 1), self.prompt)
            if not isinstance(score, torch.Tensor) or score.dim() != 1:
                raise ValueError("scorer must return a (B,) tensor of scores")
            parts["scorer"] = -c.scorer_weight * score.mean()
        if self.keep is not None and coverage is not None and c.keep_weight > 0:
            parts["keep"] = c.keep_weight * keep_loss(coverage, self.keep)
        total = torch.stack(list(parts.values())).sum()
        return total, {k: float(v.detach()) for k, v in parts.items()}


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean squared sRGB error between two (3, H, W) images: the reported `loss_*` figures."""
    return float(((a.detach() - b.detach()) ** 2).mean())
