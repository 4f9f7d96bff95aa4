"""Which proposer a session uses: the shipped edit model when it exists, else the stand-in.

A proposer is any object with ``propose(canvas, prompt, n, seed, region) -> images`` (canvas a
(3, H, W) float tensor in 0..1; images a list or batch of (3, H, W) tensors) and a
``model_name`` the session record names.
"""

from __future__ import annotations

import torch

from cofrida.session.scene_proposer import SceneProposer
from sim.palette import Palette

DEFAULT_MODEL_NAME = "default-bundle"  # how sessions record the shipped bundle


class EditModelProposer:
    """Adapts `cofrida.model.EditModel` to the session's proposer call.

    Args:
        model: a loaded `EditModel`.
        model_name: what the session record calls it (the bundle id or folder).
    """

    def __init__(self, model, model_name: str) -> None:
        self.model = model
        self.model_name = model_name

    def propose(self, canvas: torch.Tensor, prompt: str, n: int = 4, seed: int = 0, region=None,
                callback=None, should_stop=None) -> list[torch.Tensor]:  # fmt: skip
        props = self.model.propose(
            canvas, prompt, n=n, seed=seed, region=region, callback=callback,
            should_stop=should_stop,
        )  # fmt: skip
        return [p for p in props]


def default_proposer(palette: Palette, source: str | None = None):
    """The best proposer available offline.

    Args:
        palette: the robot's paints (the stand-in paints with them).
        source: an edit-model bundle or hub id; None: the shipped default bundle.
    Returns:
        `EditModelProposer` when the bundle loads, else `SceneProposer` (the stand-in) when no
        bundle is built yet (`EditModel.from_pretrained` raises FileNotFoundError).
    """
    try:
        from cofrida.model import EditModel

        model = EditModel.from_pretrained(source)
    except (FileNotFoundError, ImportError):
        if source is not None:
            raise
        return SceneProposer(palette)
    return EditModelProposer(model, source or DEFAULT_MODEL_NAME)
