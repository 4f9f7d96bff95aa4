"""What `cofrida eval` compares: one `Candidate` per table row, each a way to propose paintings.

Rows are built from edit-model bundles (one-step or as configured), a model's multi-step
teacher, a W4A4 copy of an fp32 model, and the reference (the held-out record's own sim
painting). A test can pass any function as a candidate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

KINDS = ("model", "teacher", "w4a4", "fp32", "reference", "baseline", "custom")


@dataclass
class EvalRecord:
    """One held-out record: the canvas before the robot's turn, its caption, the painting.

    Attributes:
        index: row index in the data folder.
        partial: (3, H, W) float in 0..1, the partial canvas (the model's input).
        full: (3, H, W) float in 0..1, the finished sim painting the caption describes.
        caption: the prompt.
        target: for an ``object`` partial of procedural data, the removed object
            (`cofrida.evaluation.objects.ObjectTarget`); None otherwise.
    """

    index: int
    partial: torch.Tensor
    full: torch.Tensor
    caption: str
    target: object | None = None


ProposeFn = Callable[[EvalRecord, int, int], torch.Tensor]


@dataclass
class Candidate:
    """One row of the evaluation table.

    Attributes:
        name: the row's label (unique).
        propose: ``propose(record, n, seed) -> (k, 3, H, W)`` float in 0..1 at the record's size
            (k = n for models; 1 for the reference).
        kind: one of `KINDS` (what the row is, for the comparisons).
        mode: how a model row proposes (``"one_step"``, ``"multi_step (20 steps)"``, ...),
            "" otherwise.
        precision: ``"fp32"`` or ``"w4a4"`` (UNet weights), "" for the reference.
        source: where it came from (bundle folder, "default", ...).
        timed: whether latency means anything for it (False for the reference).
    """

    name: str
    propose: ProposeFn
    kind: str = "custom"
    mode: str = ""
    precision: str = ""
    source: str = ""
    timed: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Candidate.kind must be one of {KINDS}, got {self.kind!r}")

    def describe(self) -> dict:
        """The row's identity for results.json (everything but the function)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "propose"}


def load_edit_model(path: str, device: str = "cpu"):
    """An `EditModel` from a bundle folder, or the shipped one for ``"default"``.

    Raises:
        FileNotFoundError: the folder does not exist, or ``"default"`` and no bundle is built.
    """
    from cofrida.model import EditModel

    if path == "default":
        return EditModel.from_pretrained(None, device=device)
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no model folder {path!r} (give an EditModel bundle folder or 'default')"
        )
    return EditModel.from_pretrained(folder, device=device)


def is_w4a4(model) -> bool:
    """Whether the model's UNet is W4A4-quantized."""
    from cofrida.model import unet_io

    return unet_io.is_quantized(model.unet)


def model_candidate(
    name: str,
    model,
    kind: str = "model",
    mode: str | None = None,
    steps: int | None = None,
    source: str = "",
) -> Candidate:
    """A row that proposes with an `EditModel`.

    Args:
        name: row label.
        model: the `EditModel`.
        kind: see `KINDS`.
        mode: ``"one_step"`` / ``"multi_step"``; None uses the model's configured mode.
        steps: multi-step sampler steps; None uses the model's config.
        source: where the model came from.
    """
    mode = mode or model.config.mode

    def propose(record: EvalRecord, n: int, seed: int) -> torch.Tensor:
        return model.propose(
            record.partial, record.caption, n=n, seed=seed, mode=mode, num_inference_steps=steps
        )

    precision = "w4a4" if is_w4a4(model) else "fp32"
    label = mode
    if mode == "one_step" and model.config.structure_steps:  # the diversity hybrid
        label = f"one_step + {model.config.structure_steps} teacher step(s)"
    elif mode == "multi_step":
        label = f"multi_step ({steps or model.config.num_inference_steps} steps)"
    return Candidate(name, propose, kind, label, precision, source)


def quantized_copy(path: str, records: Sequence[EvalRecord], device: str = "cpu", seed: int = 0):
    """A W4A4 copy of the fp32 bundle at `path` (loaded afresh), calibrated on the records.

    Uses `cofrida.model.quantize.quantize_edit_model` (SVDQuant through `kernels.quantize_`,
    the same call `cofrida quantize` makes), float32 low-rank factors for CPU.
    """
    from cofrida.model.quantize import quantize_edit_model

    model = load_edit_model(path, device)
    canvases = [r.partial for r in records]
    prompts = [r.caption for r in records]
    quantize_edit_model(model, canvases, prompts, dtype=torch.float32, seed=seed)
    return model


def reference_candidate() -> Candidate:
    """The record's own finished sim painting as the single 'proposal' (the data's ceiling)."""

    def propose(record: EvalRecord, n: int, seed: int) -> torch.Tensor:
        return record.full[None]

    return Candidate("reference (sim painting)", propose, "reference", timed=False)


def unchanged_candidate() -> Candidate:
    """The canvas itself, unchanged (what a model that paints nothing proposes)."""

    def propose(record: EvalRecord, n: int, seed: int) -> torch.Tensor:
        return record.partial[None]

    return Candidate("canvas unchanged", propose, "baseline", timed=False)


def inpaint_candidate(radius: int = 3) -> Candidate:
    """OpenCV inpainting (Telea) of the known hole: the removed object's region of each
    ``object`` record (the canvas unchanged where the record has none)."""
    import cv2
    import numpy as np

    def propose(record: EvalRecord, n: int, seed: int) -> torch.Tensor:
        if record.target is None:
            return record.partial[None]
        image = (record.partial.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        hole = record.target.removed.numpy().astype(np.uint8) * 255
        out = cv2.inpaint(np.ascontiguousarray(image), hole, radius, cv2.INPAINT_TELEA)
        return torch.from_numpy(out).permute(2, 0, 1).float().div(255)[None]

    return Candidate("OpenCV inpaint of the hole", propose, "baseline", timed=False)
