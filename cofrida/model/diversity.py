"""How different a set of proposals is, and how long proposing takes."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch


def proposal_diversity(images) -> float:
    """Mean pairwise mean-absolute pixel difference between proposals, in 0..1.

    0 means all proposals are identical (collapse). For scale: two independent uniform-noise
    images give 1/3; two proposals that differ only in where one object sits give a few
    hundredths. Pixel L1 is what the robot paints differently, so it is what matters here.

    Args:
        images: (n, 3, H, W) float tensor in 0..1, (n, H, W, 3) uint8 array, or a list of
            PIL images, n >= 2 (as `EditModel.propose` returns them).

    Raises:
        ValueError: fewer than two images.
    """
    if isinstance(images, list):
        images = np.stack([np.asarray(im) for im in images])
    if isinstance(images, np.ndarray):
        x = torch.from_numpy(images).float().div(255.0).permute(0, 3, 1, 2)
    else:
        x = images.detach().float().cpu()
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"diversity needs at least 2 proposals, got {n}")
    flat = x.reshape(n, -1)  # (n, 3*H*W)
    i, j = torch.triu_indices(n, n, offset=1)
    return float((flat[i] - flat[j]).abs().mean(dim=1).mean())


def time_proposal(
    model,
    size: int = 128,
    n: int = 1,
    mode: str = "one_step",
    repeats: int = 5,
    num_inference_steps: int | None = None,
) -> float:
    """Median wall-clock milliseconds of one `EditModel.propose` call (after one warm-up).

    Args:
        model: an `EditModel`.
        size: square canvas side in px (the model computes at its own resolution).
        n: proposals per call.
        mode: ``"one_step"`` or ``"multi_step"``.
        repeats: timed calls.
        num_inference_steps: multi-step steps (default: the model's config).
    """
    g = torch.Generator().manual_seed(0)
    canvas = torch.rand(3, size, size, generator=g)
    prompt = "a red sun over a green hill"
    kw = {"mode": mode, "num_inference_steps": num_inference_steps}
    model.propose(canvas, prompt, n=n, seed=0, **kw)  # warm-up (also caches the prompt)
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        model.propose(canvas, prompt, n=n, seed=r + 1, **kw)
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)
