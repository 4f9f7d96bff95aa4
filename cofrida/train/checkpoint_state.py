"""What a training checkpoint holds: the parameters that train, never the frozen ones.

accelerate's ``save_state`` writes every prepared model's whole state dict. For LoRA on a real
UNet that is the frozen 3.4 GB UNet and VAE again in every checkpoint, for a few MB of adapter.
`keep_only_trainable` registers two accelerate hooks: on save each model's weights are cut down
to its parameters with ``requires_grad`` (and its buffers, e.g. a discriminator's statistics);
on load those are put back into the models built fresh from the init model (strictly: a
trainable parameter missing from the checkpoint is an error, not a silent re-initialisation).
Optimizer, scheduler, sampler and RNG states are saved by accelerate as before.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file


def trainable_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The parameters of ``model`` that train plus its buffers, by state-dict name."""
    names = {name for name, p in model.named_parameters() if p.requires_grad}
    names |= {name for name, _ in model.named_buffers()}
    return {k: v for k, v in model.state_dict().items() if k in names}


def _weights_file(folder: Path, index: int) -> Path:
    """accelerate's name for the i-th model's safetensors file."""
    return folder / ("model.safetensors" if index == 0 else f"model_{index}.safetensors")


def keep_only_trainable(accelerator) -> None:
    """Make ``accelerator.save_state`` / ``load_state`` keep only the trainable weights."""

    def on_save(models: list, weights: list, _output_dir: str) -> None:
        for i, model in enumerate(models):
            keep = set(trainable_state(model))
            weights[i] = {k: v for k, v in weights[i].items() if k in keep}

    def on_load(models: list, input_dir: str) -> None:
        for i, model in enumerate(models):
            path = _weights_file(Path(input_dir), i)
            if not path.is_file():
                raise FileNotFoundError(f"checkpoint {input_dir} lacks {path.name}")
            stored = load_file(str(path), device="cpu")
            wanted = trainable_state(model)
            missing = sorted(set(wanted) - set(stored))
            if missing:
                raise ValueError(
                    f"checkpoint {input_dir} does not hold trainable weights {missing[:5]} "
                    f"({len(missing)} in all): was it written by a run with other settings?"
                )
            unknown = sorted(set(stored) - set(model.state_dict()))
            if unknown:
                raise ValueError(f"checkpoint {input_dir} holds unknown weights {unknown[:5]}")
            model.load_state_dict(stored, strict=False)
        models.clear()  # loaded here; accelerate would expect whole state dicts

    accelerator.register_save_state_pre_hook(on_save)
    accelerator.register_load_state_pre_hook(on_load)
