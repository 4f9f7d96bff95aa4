"""Co-painting: what on the canvas is the person's work that the plan must leave alone.

A pixel is *protected* when the canvas is already painted there (farther than
`paper_delta_e` from the paper colour) and the target agrees with the canvas (within
`agree_delta_e`): the target keeps the person's work. Where the target changes painted pixels,
the robot may paint over them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sim.palette import delta_e_cie76, srgb_to_lab


def _lab(image: torch.Tensor) -> torch.Tensor:
    return srgb_to_lab(image.permute(1, 2, 0).clamp(0, 1).double()).float()  # (H, W, 3)


def paper_color(canvas_image: torch.Tensor) -> torch.Tensor:
    """The paper's colour: the brightest common colour, the per-channel 90th percentile. (3,)"""
    return canvas_image.reshape(3, -1).quantile(0.9, dim=1)


def color_difference(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """CIE76 Delta-E per pixel between (3, H, W) images -> (H, W)."""
    return delta_e_cie76(_lab(a), _lab(b))


def keep_mask(
    canvas_image: torch.Tensor,
    target: torch.Tensor,
    paper_delta_e: float = 8.0,
    agree_delta_e: float = 12.0,
) -> torch.Tensor:
    """Protected pixels: painted on the canvas and kept by the target. (H, W) bool.

    Args:
        canvas_image, target: (3, H, W) in 0..1, same size.
        paper_delta_e: CIE76 distance from the paper colour above which a pixel is painted.
        agree_delta_e: CIE76 distance between canvas and target below which the target keeps it.
    """
    paper = paper_color(canvas_image).view(3, 1, 1).expand_as(canvas_image)
    painted = color_difference(canvas_image, paper) > paper_delta_e
    agrees = color_difference(canvas_image, target) < agree_delta_e
    return painted & agrees


def soften(mask: torch.Tensor, size_px: tuple[int, int]) -> torch.Tensor:
    """A (H, W) mask as float weights resized by area to (h, w), dilated by a pixel so strokes
    are kept off the edges of protected regions too."""
    m = mask.float()[None, None]
    m = F.max_pool2d(m, 3, stride=1, padding=1)
    return F.interpolate(m, size=size_px, mode="area")[0, 0]


def preserved_fraction(
    canvas_image: torch.Tensor, painting: torch.Tensor, mask: torch.Tensor, delta_e: float = 5.0
) -> float:
    """Fraction of protected pixels whose colour the painting leaves within `delta_e` (CIE76)
    of the canvas. 1.0 when nothing is protected."""
    n = int(mask.sum())
    if n == 0:
        return 1.0
    same = color_difference(canvas_image, painting) <= delta_e
    return float((same & mask).sum()) / n
