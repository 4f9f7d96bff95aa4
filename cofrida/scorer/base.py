"""The `Scorer` interface: how well images match a prompt, differentiable in the images."""

from __future__ import annotations

import torch
from torch import nn


class Scorer(nn.Module):
    """Image-text alignment: ``scorer(images, prompts) -> (B,)``, higher = better aligned.

    Subclasses implement `forward`. Calling the scorer (or `score`) is what the planner's text
    objective, proposal ranking, the text-alignment training loss and evaluation use. Scores
    are cosine similarities in -1..1 (comparable within one scorer, not across scorers).
    """

    def forward(self, images: torch.Tensor, prompts: list[str] | str) -> torch.Tensor:
        """Score (B, 3, H, W) images in 0..1 against one prompt or B prompts -> (B,)."""
        raise NotImplementedError

    def score(self, images: torch.Tensor, prompts: list[str] | str) -> torch.Tensor:
        """Same as calling the scorer: (B,) alignment, differentiable wrt ``images``."""
        return self(images, prompts)


def prompt_list(prompts: list[str] | str, batch: int) -> list[str]:
    """One prompt per image: a str is repeated; a list must have B non-empty entries.

    Raises:
        ValueError: wrong count, or an empty prompt.
    """
    items = [prompts] * batch if isinstance(prompts, str) else list(prompts)
    if len(items) != batch:
        raise ValueError(f"got {len(items)} prompts for {batch} images (give 1 or {batch})")
    for i, p in enumerate(items):
        if not isinstance(p, str) or not p.strip():
            raise ValueError(f"prompt {i} must be a non-empty str")
    return items


def check_images(images: torch.Tensor) -> torch.Tensor:
    """Validate a (B, 3, H, W) float batch (a (3, H, W) image gets a batch axis)."""
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise ValueError(f"images must be float (B, 3, H, W) in 0..1, got {tuple(images.shape)}")
    return images
