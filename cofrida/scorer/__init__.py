"""Image-text alignment scorers: rank proposals, the planner's text objective, evaluation.

- `Scorer` (`base.py`): ``scorer(images (B, 3, H, W) in 0..1, prompt or prompts) -> (B,)``,
  differentiable in the images, higher = better aligned.
- `ClipScorer` (`clip_scorer.py`): any transformers CLIP model (hub id or folder), the role
  CLIPScore plays in CoFRIDA's evaluation.
- `SceneScorer` (`scene_scorer.py`), `train_scene_scorer` (`scene_training.py`): the offline
  scorer, a small image encoder trained against all-MiniLM-L6-v2 on the procedural scenes.
"""

from __future__ import annotations

from pathlib import Path

from cofrida.scorer.base import Scorer, prompt_list
from cofrida.scorer.clip_scorer import ClipScorer, clip_score
from cofrida.scorer.scene_scorer import SceneScorer, SceneScorerConfig
from cofrida.scorer.scene_training import retrieval_accuracy, scene_batch, train_scene_scorer

DEFAULT_SCORER = Path(__file__).resolve().parents[1] / "assets" / "default_scorer"


def load_scorer(source: str | Path | None = None, device: str = "cpu") -> Scorer:
    """A `SceneScorer` folder (has ``scene_scorer.json``), else a CLIP hub id or folder.

    None (or ``"default"``) loads the shipped offline scene scorer (``cofrida/assets/
    default_scorer``, made by ``cofrida train-scorer --scenes 3000 --steps 600``).
    """
    if source is None or str(source) == "default":
        source = DEFAULT_SCORER
    if (Path(source) / "scene_scorer.json").is_file():
        return SceneScorer.load(source, device)
    return ClipScorer(source, device)


__all__ = [
    "DEFAULT_SCORER",
    "ClipScorer",
    "SceneScorer",
    "SceneScorerConfig",
    "Scorer",
    "clip_score",
    "load_scorer",
    "prompt_list",
    "retrieval_accuracy",
    "scene_batch",
    "train_scene_scorer",
]
