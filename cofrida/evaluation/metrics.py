"""What `cofrida eval` measures for each proposal: alignment, preservation, paintability.

Images are sRGB float tensors in 0..1: one image (3, H, W), a set of proposals (n, 3, H, W).
Colour differences are CIE76 Delta-E in Lab (D65), the planner's co-painting measure
(`planner.copaint`): about 2.3 is a just-noticeable difference.

Definitions (the README's evaluation section repeats them):

* **Text alignment**: the scorer's cosine similarity of each proposal with the record's caption
  (`cofrida.scorer`: the offline `SceneScorer` or a CLIP model), mean over the proposals.
  Higher is better; values compare only within one scorer.
* **Preservation**: of the canvas' *protected* pixels, the fraction whose colour the proposal
  keeps within ``PRESERVE_DELTA_E`` (10, a clearly visible difference) of the canvas. A pixel
  is protected when the partial canvas is painted there (farther than 8 Delta-E from the paper
  colour, the canvas' per-channel 90th percentile) and the record's finished painting keeps it
  (within the same 10 Delta-E): exactly where the prompt's painting asks for no change (the
  planner's keep-mask rule, `planner.keep_mask`). The record's own painting scores 1.0 by
  construction. Records with no protected pixel (a blank canvas) have no preservation value.
* **Paintability**: the planner plans the proposal in co-painting mode on the partial canvas
  (keep-mask as in a session turn) with a small stroke budget and the robot profile's fast
  schedule, the physical brush paints the plan in simulation, and the error is the mean Delta-E
  of the executed painting against the proposal over all pixels. Lower is more paintable. A
  proposal that changes nothing is trivially paintable: read it beside alignment.
* **Diversity**: `cofrida.model.proposal_diversity` (mean pairwise mean-absolute pixel
  difference of the n proposals, 0 = collapse).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from planner import Planner, keep_mask, preserved_fraction
from planner.copaint import color_difference, paper_color
from planner.execute import paint_plan

PRESERVE_DELTA_E = 10.0  # CIE76: a painted pixel counts as kept within this of the canvas
PAPER_DELTA_E = 8.0  # CIE76 from the paper colour above which a canvas pixel is painted


@torch.no_grad()
def text_alignment(scorer, proposals: torch.Tensor, caption: str) -> float:
    """Mean scorer alignment of (n, 3, H, W) proposals with one caption (higher = better)."""
    return float(scorer(proposals.float(), caption).mean())


def protected_pixels(
    partial: torch.Tensor,
    full: torch.Tensor | None = None,
    paper_delta_e: float = PAPER_DELTA_E,
    agree_delta_e: float = PRESERVE_DELTA_E,
) -> torch.Tensor:
    """(H, W) bool: painted on the partial canvas and, when `full` is given, kept by it.

    Args:
        partial: (3, H, W) the canvas before the robot's turn.
        full: (3, H, W) the finished painting the caption describes; None protects all paint.
        paper_delta_e: CIE76 distance from the paper colour above which a pixel is painted.
        agree_delta_e: CIE76 distance below which `full` keeps a painted pixel.
    """
    if full is not None:
        return keep_mask(partial, full, paper_delta_e, agree_delta_e)
    paper = paper_color(partial).view(3, 1, 1).expand_as(partial)
    return color_difference(partial, paper) > paper_delta_e


def preservation(
    partial: torch.Tensor,
    proposal: torch.Tensor,
    protected: torch.Tensor,
    delta_e: float = PRESERVE_DELTA_E,
) -> float | None:
    """Fraction of protected pixels the proposal keeps within `delta_e` (CIE76) of the canvas.

    Args:
        partial: (3, H, W) the canvas.
        proposal: (3, H, W) one proposal at the canvas' size.
        protected: (H, W) bool from `protected_pixels`.
        delta_e: the tolerance.

    Returns:
        A fraction in 0..1 (1.0 for a proposal equal to the canvas), or None when no pixel is
        protected (nothing to preserve; such records are left out of the mean).
    """
    if not bool(protected.any()):
        return None
    return preserved_fraction(partial, proposal, protected, delta_e)


def mean_delta_e(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean CIE76 Delta-E between two (3, H, W) images over all pixels."""
    return float(color_difference(a, b).mean())


@dataclass(frozen=True)
class PaintabilityConfig:
    """How proposals are painted in simulation to measure paintability.

    Attributes:
        profile: `cofrida.data` robot profile (brush, paints, canvas meters, stroke model,
            fast planner schedule), the same set-up as the training data.
        strokes: stroke budget per proposal: small, so a record costs about a second on CPU.
        coarse_steps: optimisation steps of the profile's fast schedule (it has no fine phase).
        physical: paint with `sim.PhysicalBrush` (bristles, paint running out: the real-world
            stand-in the sim arm uses); False renders the plan with the differentiable renderer.
    """

    profile: str = "acrylic"
    strokes: int = 60
    coarse_steps: int = 40
    physical: bool = True

    def __post_init__(self) -> None:
        if self.strokes < 1 or self.coarse_steps < 1:
            raise ValueError("paintability needs strokes >= 1 and coarse_steps >= 1")


@dataclass
class PaintResult:
    """One proposal painted in simulation."""

    error_de: float  # mean Delta-E of the executed painting vs the proposal (lower = better)
    gap_de: float  # mean Delta-E of the canvas vs the proposal: how much there was to paint
    painting: torch.Tensor  # (3, H, W) the executed painting


class Paintability:
    """Plans a proposal on its canvas (co-painting mode), paints it in sim, measures the error.

    Args:
        config: the robot set-up and budget.
        size_px: (H, W) of the canvases and proposals.
    """

    def __init__(self, config: PaintabilityConfig, size_px: tuple[int, int]) -> None:
        from cofrida.data.profiles import get_profile
        from sim import Canvas

        self.config = config
        profile = get_profile(config.profile)
        height, width = size_px
        width_m = float(profile.canvas_m[0])
        canvas = Canvas(width_m, width_m * height / width, width, height)
        stroke_model, _ = profile.stroke_model()
        schedule = replace(profile.planner, coarse_steps=config.coarse_steps)
        self.planner = Planner(
            canvas, profile.brush_preset(), profile.palette_preset(), schedule, stroke_model
        )

    def __call__(self, canvas: torch.Tensor, proposal: torch.Tensor, seed: int = 0) -> PaintResult:
        """Plan `proposal` from `canvas` ((3, H, W) each), paint it, compare with the proposal."""
        cfg = self.planner.config
        self.planner.config = replace(cfg, seed=int(seed))
        keep = keep_mask(canvas, proposal, cfg.paper_delta_e, cfg.agree_delta_e)
        plan, _ = self.planner.plan(canvas, proposal, strokes=self.config.strokes, keep_mask=keep)
        with torch.no_grad():
            if self.config.physical:
                painting = paint_plan(plan, canvas, seed=int(seed))
            else:
                painting = self.planner.render(plan, canvas)
        painting = painting.detach().clamp(0, 1)
        return PaintResult(
            mean_delta_e(painting, proposal), mean_delta_e(canvas, proposal), painting
        )


def psnr_db(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two same-shape image batches in 0..1 (inf-free: capped at 120 dB)."""
    mse = float((a.float() - b.float()).pow(2).mean())
    return 120.0 if mse <= 1e-12 else -10.0 * math.log10(mse)
