"""`ClipScorer`: CLIPScore-style alignment from any transformers CLIP model (hub id or folder).

Preprocessing is done in torch (resize the shorter side, centre crop, normalise) rather than by
`CLIPProcessor`, so the score stays differentiable in the image and needs no image-processor
classes (which pull torchvision in).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.nn import functional as F

from cofrida.scorer.base import Scorer, check_images, prompt_list

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def _features(out) -> torch.Tensor:
    """get_*_features returns a tensor (transformers 4) or an output with pooler_output (5)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


class ClipScorer(Scorer):
    """Cosine similarity of CLIP image and text embeddings.

    Args:
        source: hub id (e.g. ``"openai/clip-vit-base-patch32"``) or a folder with a
            transformers `CLIPModel` and its tokenizer (``preprocessor_config.json`` optional:
            its image_mean/std are used when present, else OpenAI's).
        device: where the model goes.
    """

    def __init__(self, source: str | Path, device: str | torch.device = "cpu") -> None:
        super().__init__()
        from transformers import AutoTokenizer, CLIPModel

        self.source = str(source)
        self.model = CLIPModel.from_pretrained(self.source).to(device).eval().requires_grad_(False)
        self.tokenizer = AutoTokenizer.from_pretrained(self.source)
        mean, std = OPENAI_MEAN, OPENAI_STD
        pre = Path(self.source) / "preprocessor_config.json"
        if pre.is_file():
            stored = json.loads(pre.read_text())
            mean, std = stored.get("image_mean", mean), stored.get("image_std", std)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.image_size = int(self.model.config.vision_config.image_size)
        self._text_cache: dict[str, torch.Tensor] = {}

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in 0..1 -> (B, 3, S, S) normalised CLIP input (differentiable)."""
        h, w = images.shape[-2:]
        s = self.image_size
        scale = s / min(h, w)
        size = (max(s, round(h * scale)), max(s, round(w * scale)))
        x = F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False)
        y0, x0 = (size[0] - s) // 2, (size[1] - s) // 2
        x = x[:, :, y0 : y0 + s, x0 : x0 + s]
        return (x - self.mean) / self.std

    @torch.no_grad()
    def text_embeddings(self, prompts: list[str]) -> torch.Tensor:
        """(B, D) unit text embeddings, cached per prompt."""
        missing = [p for p in dict.fromkeys(prompts) if p not in self._text_cache]
        if missing:
            tokens = self.tokenizer(missing, padding=True, truncation=True, return_tensors="pt").to(
                self.mean.device
            )
            feats = _features(self.model.get_text_features(**tokens))
            for p, f in zip(missing, F.normalize(feats.float(), dim=-1), strict=True):
                self._text_cache[p] = f
        return torch.stack([self._text_cache[p] for p in prompts])

    def image_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        """(B, D) unit image embeddings of (B, 3, H, W) images in 0..1 (differentiable)."""
        pixels = self.preprocess(check_images(images).to(self.mean.device))
        dtype = next(self.model.parameters()).dtype
        feats = _features(self.model.get_image_features(pixel_values=pixels.to(dtype)))
        return F.normalize(feats.float(), dim=-1)

    def forward(self, images: torch.Tensor, prompts: list[str] | str) -> torch.Tensor:
        """(B,) cosine similarity of each image with its prompt."""
        images = check_images(images)
        text = self.text_embeddings(prompt_list(prompts, images.shape[0]))
        return (self.image_embeddings(images) * text).sum(-1)


def clip_score(scorer: ClipScorer, images: torch.Tensor, prompts: list[str] | str) -> torch.Tensor:
    """CLIPScore as CoFRIDA/Hessel et al. report it: 100 * max(cos, 0), per image (B,)."""
    return 100 * scorer(images, prompts).clamp_min(0)
