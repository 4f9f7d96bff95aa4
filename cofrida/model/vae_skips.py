"""pix2pix-Turbo's skip connections from the VAE encoder to the VAE decoder, as hooks.

A one-step edit model decodes a proposal that should keep the canvas' fine detail (the
person's strokes) where it does not change it; the 8x-downsampled latents lose that detail.
pix2pix-Turbo feeds the encoder's intermediate activations of the input image into the
decoder through zero-initialised 1x1 convolutions. Here the stock `AutoencoderKL` is left
untouched: forward hooks record the encoder activations while the canvas is encoded, and
pre-hooks add ``gamma * conv(activation)`` to the input of each decoder up block of the same
resolution while proposals are decoded. Zero-initialised, so adding them changes nothing
until training moves them.

Resolutions (n VAE blocks, canvas of S px): decoder ``up_blocks[j]`` (j >= 1) takes
S / 2^(n-1-j) px, the size ``encoder.down_blocks[n-2-j]`` puts out (``encoder.conv_in`` for
j = n-1, full size). Channels: encoder block i has ``block_out_channels[i]``, decoder up block
j takes ``block_out_channels[n-j]``.
"""

from __future__ import annotations

import torch
from torch import nn


class VAESkips(nn.Module):
    """1x1 convolutions from encoder activations to decoder up-block inputs of equal size.

    Args:
        vae: the `AutoencoderKL` to hook (hooks are installed at construction).
        gamma: scale of the added skip signal (pix2pix-Turbo: 1 in training).
    """

    def __init__(self, vae, gamma: float = 1.0) -> None:
        super().__init__()
        channels = list(vae.config.block_out_channels)
        n = len(channels)
        self.gamma = gamma
        self.sources = [n - 2 - j for j in range(1, n)]  # encoder index per up block 1..n-1
        self.convs = nn.ModuleList()
        for j, i in zip(range(1, n), self.sources, strict=True):
            conv = nn.Conv2d(channels[max(i, 0)], channels[n - j], kernel_size=1)
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
            self.convs.append(conv)
        self.capture = False  # set while the canvas is encoded
        self.inject = False  # set while proposals are decoded
        self._acts: dict[int, torch.Tensor] = {}
        encoder, decoder = vae.encoder, vae.decoder
        for i in set(self.sources):
            module = encoder.conv_in if i < 0 else encoder.down_blocks[i]
            module.register_forward_hook(self._recorder(i))
        for k, j in enumerate(range(1, n)):
            decoder.up_blocks[j].register_forward_pre_hook(self._injector(k))

    def _recorder(self, index: int):
        def hook(_module, _args, output):
            if self.capture:
                self._acts[index] = output

        return hook

    def _injector(self, k: int):
        def hook(_module, args):
            act = self._acts.get(self.sources[k])
            if not self.inject or act is None:
                return None
            sample = args[0]
            if act.shape[-2:] != sample.shape[-2:]:
                raise RuntimeError(f"skip {k}: encoder {act.shape} vs decoder {sample.shape}")
            return (sample + self.gamma * self.convs[k](act.to(sample.dtype)), *args[1:])

        return hook

    def repeat(self, k: int) -> None:
        """Repeat the recorded activations k times along the batch (k draws per canvas, draw j
        of canvas i at row j * B + i), so one encoding serves k proposals."""
        self._acts = {i: a.repeat(k, *([1] * (a.dim() - 1))) for i, a in self._acts.items()}

    def clear(self) -> None:
        """Forget the recorded canvas activations."""
        self._acts.clear()
