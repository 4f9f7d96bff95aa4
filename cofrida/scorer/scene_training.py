"""Training and evaluating the offline `SceneScorer` on procedural scenes."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from cofrida.scorer.scene_scorer import SceneScorer, SceneScorerConfig


def scene_batch(num: int, size: int, seed: int, start: int = 0):
    """(N, 3, size, size) float images in 0..1 and N captions of scenes start..start+N-1."""
    from cofrida.data import SceneGenerator
    from sim.palette import Palette

    gen = SceneGenerator(Palette.preset("acrylic"), size=(size, size), seed=seed)
    samples = [gen.generate(i) for i in range(start, start + num)]
    images = torch.from_numpy(np.stack([s.image for s in samples])).permute(0, 3, 1, 2)
    return images.float() / 255.0, [s.caption for s in samples]


@torch.no_grad()
def retrieval_accuracy(
    scorer: SceneScorer, images: torch.Tensor, captions: list[str], candidates: int = 32, seed=0
) -> float:
    """Top-1 caption retrieval: for each image, its caption against candidates-1 random others.

    Captions identical to the true one do not count as distractors. Chance is 1 / candidates.
    """
    n = len(captions)
    img = torch.cat([scorer.image_embeddings(images[i : i + 256]) for i in range(0, n, 256)])
    txt = scorer.text_embeddings(captions)
    sims = img @ txt.t()  # (N, N)
    g = torch.Generator().manual_seed(seed)
    correct = 0
    for i in range(n):
        others = [j for j in torch.randperm(n, generator=g).tolist() if captions[j] != captions[i]]
        pick = torch.tensor([i, *others[: candidates - 1]])
        correct += int(sims[i, pick].argmax() == 0)
    return correct / n


def train_scene_scorer(
    num_scenes: int = 4000,
    steps: int = 1500,
    out_dir: str | Path | None = None,
    *,
    image_size: int = 64,
    batch_size: int = 128,
    learning_rate: float = 2e-3,
    eval_scenes: int = 512,
    candidates: int = 32,
    seed: int = 0,
    text_encoder=None,
    on_progress: Callable[[dict], None] | None = None,
) -> tuple[SceneScorer, dict]:
    """Train a `SceneScorer` contrastively on procedural scenes; optionally save it.

    Training scenes are indices 0..num_scenes-1 of `SceneGenerator(seed)`; held-out scenes
    are the next ``eval_scenes`` indices (never seen in training).

    Args:
        num_scenes: training scenes (generated once at ``image_size``, ~6 ms each).
        steps: optimizer steps (AdamW, cosine decay) of symmetric InfoNCE over in-batch pairs.
        out_dir: where to save (None: do not save).
        image_size: px of the scenes and of the encoder's input.
        batch_size: pairs per step (the other pairs are the negatives).
        learning_rate: peak AdamW rate.
        eval_scenes: held-out scenes for the retrieval accuracy.
        candidates: captions per retrieval query (chance = 1 / candidates).
        seed: scenes, weights and batches are functions of it.
        text_encoder: a loaded `TextEncoder` to reuse (else the packaged MiniLM is loaded).
        on_progress: called with {"step", "steps", "loss", "temperature"} every 50 steps.

    Returns:
        (scorer, metrics): metrics has ``retrieval_top1``, ``chance``, ``train_seconds`` ...
    """
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    scorer = SceneScorer(SceneScorerConfig(image_size=image_size), text_encoder=text_encoder)
    images, captions = scene_batch(num_scenes, image_size, seed)
    pooled = scorer.pooled(captions)  # (N, 384) frozen, computed once
    params = [p for n, p in scorer.named_parameters()]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=learning_rate, total_steps=steps, pct_start=0.1
    )
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(min(batch_size, num_scenes))
    scorer.train()
    loss = torch.tensor(float("nan"))
    for step in range(1, steps + 1):
        idx = torch.randperm(num_scenes, generator=g)[: len(labels)]
        batch = images[idx]
        # small shifts (a painting is never pixel-aligned with its caption's idea of layout)
        dy, dx = torch.randint(-3, 4, (2,), generator=g).tolist()
        batch = torch.roll(batch, shifts=(dy, dx), dims=(2, 3))
        img = scorer.image_embeddings(batch)
        txt = scorer.text_embeddings([], pooled=pooled[idx])
        logits = scorer.logit_scale.exp().clamp(max=100) * img @ txt.t()  # (B, B)
        # identical captions in one batch are both right: soft targets over equal captions
        same = torch.tensor([[captions[i] == captions[j] for j in idx] for i in idx]).float()
        targets = same / same.sum(1, keepdim=True)
        loss = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.t(), targets)) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if on_progress is not None and (step % 50 == 0 or step == steps):
            temp = float(1 / scorer.logit_scale.detach().exp())
            on_progress({"step": step, "steps": steps, "loss": float(loss), "temperature": temp})
    scorer.eval()
    train_seconds = time.perf_counter() - t0
    test_images, test_captions = scene_batch(eval_scenes, image_size, seed, start=num_scenes)
    metrics = {
        "retrieval_top1": retrieval_accuracy(scorer, test_images, test_captions, candidates, seed),
        "train_retrieval_top1": retrieval_accuracy(
            scorer, images[:eval_scenes], captions[:eval_scenes], candidates, seed
        ),
        "candidates": candidates,
        "chance": 1 / candidates,
        "eval_scenes": eval_scenes,
        "num_scenes": num_scenes,
        "steps": steps,
        "final_loss": float(loss.detach()),
        "train_seconds": round(train_seconds, 1),
    }
    if out_dir is not None:
        scorer.save(out_dir, metrics)
    return scorer, metrics
