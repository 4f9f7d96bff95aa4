"""Image losses for one-step training: pixel, offline perceptual, adversarial (hinge).

No pretrained perception network exists offline (no LPIPS/VGG weights, no torchvision), so the
perceptual term is built from what matters in a painting: edges at several scales (where strokes
begin and end) and local colour statistics (mean and spread in small windows: flat fills vs
texture), compared at full, 1/2 and 1/4 resolution. With ``perceptual="scorer"`` the features of
the project's trained scene-scorer image encoder are compared instead.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "l2") -> torch.Tensor:
    """Mean L2 (squared) or L1 error of (B, 3, H, W) images in 0..1."""
    if kind == "l1":
        return (pred - target).abs().mean()
    return F.mse_loss(pred, target)


def _gradients(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, 2C, H, W): horizontal and vertical Sobel responses per channel."""
    c = x.shape[1]
    sobel = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 4
    kernel = torch.stack([sobel, sobel.t()]).to(x)[:, None].repeat(c, 1, 1, 1)  # (2C, 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=c)


def _local_stats(x: torch.Tensor, window: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Local mean and standard deviation in window x window neighbourhoods."""
    pad = window // 2
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    mean = F.avg_pool2d(padded, window, stride=1)
    var = F.avg_pool2d(padded * padded, window, stride=1) - mean * mean
    return mean, var.clamp_min(0).add(1e-6).sqrt()


class EdgeStatsLoss(nn.Module):
    """Offline perceptual loss: multi-scale gradient + local mean/std L1 distances.

    Args:
        scales: number of resolutions (each half the previous).
        window: px of the local statistics window.
    """

    def __init__(self, scales: int = 3, window: int = 5) -> None:
        super().__init__()
        self.scales, self.window = scales, window

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, per_sample: bool = False
    ) -> torch.Tensor:
        """Loss of (B, 3, H, W) images in 0..1: a scalar, or (B,) with `per_sample` (0 for
        equal images)."""
        dims = (1, 2, 3) if per_sample else None

        def mean(x: torch.Tensor) -> torch.Tensor:
            return x.mean(dims) if dims else x.mean()

        total = pred.new_zeros(pred.shape[0] if per_sample else ())
        for s in range(self.scales):
            if s > 0:
                if min(pred.shape[-2:]) < 8:
                    break
                pred, target = F.avg_pool2d(pred, 2), F.avg_pool2d(target, 2)
            total = total + mean((_gradients(pred) - _gradients(target)).abs())
            pm, ps = _local_stats(pred, self.window)
            tm, ts = _local_stats(target, self.window)
            total = total + 0.5 * mean((pm - tm).abs()) + mean((ps - ts).abs())
        return total / self.scales


class FeatureLoss(nn.Module):
    """Perceptual loss from a frozen image encoder's intermediate features (e.g. the scorer's).

    Args:
        feature_fn: (B, 3, H, W) in 0..1 -> list of (B, C_i, H_i, W_i) feature maps.
    """

    def __init__(self, feature_fn) -> None:
        super().__init__()
        self.feature_fn = feature_fn

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean over layers of the L2 distance between channel-normalised features."""
        with torch.no_grad():
            target_feats = self.feature_fn(target)
        total = pred.new_zeros(())
        for a, b in zip(self.feature_fn(pred), target_feats, strict=True):
            total = total + F.mse_loss(F.normalize(a, dim=1), F.normalize(b, dim=1))
        return total / max(len(target_feats), 1)


class PatchDiscriminator(nn.Module):
    """A small PatchGAN: (B, 3, H, W) in 0..1 -> (B, 1, H/8, W/8) realness logits.

    Spectral normalisation keeps it stable without a gradient penalty; ~70K parameters at
    ``width=32``.

    Args:
        width: channels of the first layer (doubled twice).
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        layers, ch = [], 3
        for out in (width, 2 * width, 4 * width):
            layers += [sn(nn.Conv2d(ch, out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            ch = out
        layers.append(sn(nn.Conv2d(ch, 1, 3, padding=1)))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images * 2 - 1)


def hinge_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the discriminator: mean relu(1 - real) + mean relu(1 + fake)."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def hinge_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the generator: -mean(fake logits)."""
    return -fake_logits.mean()
