"""Small seeded components: for tests, and the architecture the default bundle trains from scratch.

Every builder seeds torch before creating weights, so the same call gives the same model.

Sizes (what the shipped default bundle is designed around, see `build_edit_model`):
    * UNet: 2 levels, block_out_channels (32, 64), one cross-attention level, in_channels 8
      (4 noise + 4 canvas latent channels, InstructPix2Pix layout), out_channels 4.
    * VAE: AutoencoderKL with 4 blocks (x8 downsampling, so 128 px -> 16x16 latents; fewer
      blocks make the mid-block attention quadratic in far more tokens), 4 latent channels.
    * Text encoder: all-MiniLM-L6-v2 (384-d, real weights) or a tiny random CLIP (32-d) whose
      tokenizer is built from a byte-level vocabulary written here (no hub).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

UNET_BLOCKS = (32, 64)
VAE_BLOCKS = (8, 16, 32, 64)  # encoder 25 ms + decoder 67 ms at 128 px, 1 CPU thread


def tiny_unet(
    in_channels: int = 8,
    cross_attention_dim: int = 32,
    block_out_channels: tuple[int, ...] = UNET_BLOCKS,
    sample_size: int = 16,
    seed: int = 0,
):
    """A small `UNet2DConditionModel`: down (plain, cross-attn), up (cross-attn, plain).

    Args:
        in_channels: 8 for an edit model (noise + canvas latents), 4 for a text-to-image one.
        cross_attention_dim: width of the text encoder's hidden states.
        block_out_channels: channels per level; one level per entry.
        sample_size: nominal latent size (px / 8); the UNet runs at any multiple of
            2 ** (levels - 1).
        seed: weights are a function of the arguments and this seed.
    """
    from diffusers import UNet2DConditionModel

    levels = len(block_out_channels)
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=in_channels,
        out_channels=4,
        block_out_channels=tuple(block_out_channels),
        layers_per_block=1,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (levels - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (levels - 1) + ("UpBlock2D",),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=8,
        norm_num_groups=min(32, min(block_out_channels)),
    )


def tiny_vae(
    block_out_channels: tuple[int, ...] = VAE_BLOCKS, seed: int = 0, mid_attention: bool = True
):
    """A small `AutoencoderKL`, 4 latent channels, x(2 ** (blocks - 1)) downsampling (x8 for 4).

    ``mid_attention=False`` drops the mid-block self-attention: the autoencoder becomes fully
    convolutional (it can train on crops and run at any size, in time linear in the pixels).
    """
    from diffusers import AutoencoderKL

    n = len(block_out_channels)
    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(block_out_channels),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=min(16, min(block_out_channels)),
        sample_size=128,
        mid_block_add_attention=mid_attention,
    )


def tiny_scheduler(prediction_type: str = "epsilon"):
    """Stable Diffusion's noise schedule (scaled_linear, 1000 steps), Euler-ancestral sampler."""
    from diffusers import EulerAncestralDiscreteScheduler

    return EulerAncestralDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type=prediction_type,
    )


def _byte_level_clip_tokenizer(max_length: int = 77):
    """A CLIP BPE tokenizer with a printable-ASCII vocabulary and no merges (one token a char)."""
    from transformers import CLIPTokenizer

    chars = [chr(c) for c in range(33, 127)]
    vocab = {c: i for i, c in enumerate(chars)}
    vocab.update({c + "</w>": len(chars) + i for i, c in enumerate(chars)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab))
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n")
        return CLIPTokenizer(
            str(Path(tmp) / "vocab.json"),
            str(Path(tmp) / "merges.txt"),
            model_max_length=max_length,
        )


def tiny_clip_text_encoder(hidden_size: int = 32, seed: int = 0):
    """A random 2-layer CLIP text model + byte-level tokenizer wrapped in `TextEncoder`."""
    from transformers import CLIPTextConfig, CLIPTextModel

    from cofrida.model.text_encoder import TextEncoder

    tokenizer = _byte_level_clip_tokenizer()
    config = CLIPTextConfig(
        vocab_size=len(tokenizer.get_vocab()),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return TextEncoder(CLIPTextModel(config), tokenizer)


def build_edit_model(
    text_encoder: str = "minilm",
    resolution: int = 128,
    unet_blocks: tuple[int, ...] = UNET_BLOCKS,
    vae_blocks: tuple[int, ...] = VAE_BLOCKS,
    seed: int = 0,
    **config,
):
    """An untrained `EditModel` of the default bundle's architecture (or a tinier test one).

    Args:
        text_encoder: ``"minilm"`` (packaged all-MiniLM-L6-v2, 384-d) or ``"tiny_clip"``.
        resolution: px of the canvas' shorter side the model computes at.
        unet_blocks: UNet channels per level.
        vae_blocks: VAE channels per block (4 blocks = x8 downsampling).
        seed: seeds all random weights.
        **config: further `EditModelConfig` fields (mode, num_inference_steps, ...).
    """
    from cofrida.model.edit_model import EditModel, EditModelConfig
    from cofrida.model.text_encoder import TextEncoder

    if text_encoder == "minilm":
        encoder = TextEncoder.from_pretrained("minilm")
    elif text_encoder == "tiny_clip":
        encoder = tiny_clip_text_encoder(seed=seed)
    else:
        raise ValueError(f"text_encoder must be 'minilm' or 'tiny_clip', got {text_encoder!r}")
    down = 2 ** (len(vae_blocks) - 1)
    unet = tiny_unet(
        cross_attention_dim=encoder.hidden_size,
        block_out_channels=unet_blocks,
        sample_size=resolution // down,
        seed=seed,
    )
    return EditModel(
        unet=unet,
        vae=tiny_vae(vae_blocks, seed=seed + 1),
        text_encoder=encoder,
        scheduler=tiny_scheduler(),
        config=EditModelConfig(resolution=resolution, **config),
    )
