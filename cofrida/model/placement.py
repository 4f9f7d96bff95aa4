"""Placement-coded noise: a one-step proposal reads from its noise where to paint new things.

A one-step model trained by regression paints the mean of all completions; where a missing
object could go is the main uncertainty, so the mean is a faint smear or nothing, and the noise
input stops mattering. Here the noise carries a place: the one-step input is

    z_T = eps + strength * bump(centre, sigma),   eps ~ N(0, I), (4, h, w) latents,

with ``bump`` a Gaussian of peak 1 on the latent grid, added to all 4 channels.

* **Training** (`training_bumps`): for most records the bump sits on the region the target
  changes (an object's centroid, or a point of a wide change; its spread as sigma), so given
  the bump the target is nearly deterministic and plain regression learns to paint the new
  thing *there*, crisp; some records also get a distractor bump where nothing changes (the
  model must not paint at every bump: a house bump in the sky is ignored), and some get no
  bump (the model keeps a fallback).
* **Proposing** (`random_bump` at `spread_centre`): proposal i of a call gets its bump at the
  i-th point of a shifted Halton sequence (any n proposals spread over the canvas; the shift
  comes from the call's seed) with a size from its own seed, so n proposals put the new things
  in n places, and a bump where the thing does not belong is (learned to be) ignored.

Sizes are fractions of the latent grid's shorter side (`SIGMA_RANGE`); centres in latent px.
"""

from __future__ import annotations

import torch

SIGMA_RANGE = (0.03, 0.08)  # bump sigma, fraction of the latent side (32 px: 1.0 to 2.6 px)
MIN_SIGMA_PX = 1.0  # and never under a latent px (a narrower bump falls between grid points)


def sigma_range(side: int) -> tuple[float, float]:
    """(low, high) bump sigma in latent px for a latent grid whose shorter side is `side`."""
    lo = max(MIN_SIGMA_PX, SIGMA_RANGE[0] * side)
    return lo, max(lo, SIGMA_RANGE[1] * side)


def bump(h: int, w: int, cy: torch.Tensor, cx: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """(B, h, w) Gaussian bumps of peak 1 at (cy, cx) latent px with spread sigma (each (B,))."""
    ys = torch.arange(h, dtype=torch.float32, device=cy.device).view(1, h, 1)
    xs = torch.arange(w, dtype=torch.float32, device=cy.device).view(1, 1, w)
    d2 = (ys - cy.view(-1, 1, 1)) ** 2 + (xs - cx.view(-1, 1, 1)) ** 2
    return torch.exp(-d2 / (2 * sigma.view(-1, 1, 1) ** 2))


def _uniform(n: int, lo: float, hi: float, generator=None, device=None) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator, device=device)


def random_bump(
    h: int,
    w: int,
    generator: torch.Generator | None = None,
    n: int = 1,
    centre: tuple[float, float] | None = None,
):
    """(n, h, w) bumps with a random sigma in `sigma_range`, at uniform random centres or at
    ``centre`` = (y, x) as fractions of the grid (0..1).

    Drawn from ``generator`` (a proposal's own), so a proposal's bump is a function of its seed.
    """
    cy = _uniform(n, 0, h - 1, generator)
    cx = _uniform(n, 0, w - 1, generator)
    sigma = _uniform(n, *sigma_range(min(h, w)), generator)
    if centre is not None:
        cy, cx = torch.full((n,), centre[0] * (h - 1)), torch.full((n,), centre[1] * (w - 1))
    return bump(h, w, cy, cx, sigma)


def _radical_inverse(i: int, base: int) -> float:
    out, f = 0.0, 1.0 / base
    while i > 0:
        i, digit = divmod(i, base)
        out += digit * f
        f /= base
    return out


def spread_centre(seed: int, index: int) -> tuple[float, float]:
    """(y, x) in 0..1 of proposal ``index`` of a call with ``seed``: the Halton (2, 3) point
    index + 1, shifted by a per-call random offset (mod 1). Any n proposals of one call spread
    over the canvas (uniform random centres often put two in one place), each is a function of
    (seed, index) only, and over many seeds every place is equally likely."""
    shift = torch.rand(2, generator=torch.Generator().manual_seed(int(seed)))
    y = (_radical_inverse(index + 1, 2) + float(shift[0])) % 1.0
    x = (_radical_inverse(index + 1, 3) + float(shift[1])) % 1.0
    return y, x


def change_bumps(change: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bumps on the regions the targets change.

    A compact change (spread within twice the largest bump sigma: an object) gets its bump at
    its centroid. A wide one (a blank or sparse canvas the target paints all over, or scattered
    strokes) gets it at a point drawn from the region (global torch RNG): its centroid says
    nothing (it may even lie where nothing changes), and a proposal's bump on such a canvas can
    fall anywhere, so the model must learn to paint the whole change whatever the bump's place.

    Args:
        change: (B, 1, S, S') float/bool, 1 where the target changes the canvas.
        h, w: the latent grid.

    Returns:
        ((B, h, w) bumps with sigma each change's spread, clamped to `sigma_range`; (B,) bool,
        True where the record changes anything).
    """
    b, _, sh, sw = change.shape
    m = change.float().view(b, sh, sw)
    area = m.sum((1, 2))
    has = area > 0
    ys = (torch.arange(sh, dtype=torch.float32, device=m.device) + 0.5) * (h / sh) - 0.5
    xs = (torch.arange(sw, dtype=torch.float32, device=m.device) + 0.5) * (w / sw) - 0.5
    wy, wx = m.sum(2), m.sum(1)  # (B, sh), (B, sw) marginals
    a = area.clamp_min(1.0)
    cy = (wy * ys).sum(1) / a
    cx = (wx * xs).sum(1) / a
    vy = (wy * (ys - cy[:, None]) ** 2).sum(1) / a
    vx = (wx * (xs - cx[:, None]) ** 2).sum(1) / a
    spread = ((vy + vx) / 2).sqrt()
    lo, hi = sigma_range(min(h, w))
    wide = spread > 2 * hi
    if bool(wide.any()):
        pick = torch.multinomial(m[wide].view(int(wide.sum()), -1), 1)[:, 0]  # (wide,)
        cy, cx = cy.clone(), cx.clone()
        cy[wide], cx[wide] = ys[pick // sw], xs[pick % sw]
    return bump(h, w, cy, cx, spread.clamp(lo, hi)) * has[:, None, None].float(), has


def training_bumps(
    change: torch.Tensor,
    h: int,
    w: int,
    placed: float = 0.8,
    distractor: float = 0.3,
) -> torch.Tensor:
    """(B, h, w) the bumps of a training batch (global torch RNG; accelerate seeds it).

    Args:
        change: (B, 1, S, S') where each target changes its canvas (`change_mask`).
        h, w: the latent grid.
        placed: share of records whose bump sits on their change (the rest: none).
        distractor: share of records that also get a bump at a random place.
    """
    b = change.shape[0]
    on_change, _ = change_bumps(change, h, w)
    keep = (torch.rand(b, device=change.device) < placed).float()[:, None, None]
    extra = (torch.rand(b, device=change.device) < distractor).float()[:, None, None]
    other = random_bump(h, w, n=b).to(change.device)
    return torch.maximum(on_change * keep, other * extra)


def check_strength(strength: float) -> None:
    """Raise ValueError unless 0 <= strength <= 10 (0: plain noise, old bundles)."""
    if not 0 <= strength <= 10:
        raise ValueError(f"placement_strength must lie in [0, 10], got {strength}")
