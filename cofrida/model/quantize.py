"""W4A4 quantization of an `EditModel`'s UNet (SVDQuant, `kernels.quantize_`), calibrated on use.

The smoothing factors of SVDQuant come from the activations each layer sees. They are recorded
while the model proposes paintings for real (canvas, prompt) pairs, so the calibration covers
exactly the inputs the quantized model will meet: the one-step pass at the model's timestep (and
the multi-step passes when the model runs in that mode).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from cofrida.model import unet_io

DEFAULT_RANK = 32  # the low-rank branch that absorbs outliers (SVDQuant's default)
DEFAULT_GROUP_SIZE = 64  # one 4-bit scale per 64 input channels


def quantize_edit_model(
    model,
    canvases: Sequence[torch.Tensor],
    prompts: Sequence[str],
    rank: int = DEFAULT_RANK,
    group_size: int = DEFAULT_GROUP_SIZE,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
):
    """Quantize ``model.unet`` (and ``teacher_unet``) to W4A4 in place, calibrated on pairs.

    The UNet is calibrated on the model proposing as configured (with its structure steps, when
    it has them, so both kinds of passes are seen); the teacher on full multi-step proposals.
    A LoRA-adapted UNet has its adapters merged into its weights first; its multi-step teacher,
    the base UNet with the adapters switched off, is then gone (a ``teacher_unet`` stays).

    Args:
        model: an `EditModel` in full precision.
        canvases: (3, H, W) float tensors in 0..1, one per prompt (at least one pair).
        prompts: the prompts, same length as `canvases`.
        rank: rank of the 16-bit (or `dtype`) low-rank branch.
        group_size: input channels per quantization group (power of two >= 32).
        dtype: dtype of the low-rank factors and scales; float32 suits CPU inference.
        seed: seeds the proposals that calibration runs.

    Returns:
        The number of layers quantized (both UNets).

    Raises:
        ValueError: no pairs, mismatched lengths, or a UNet quantized already.
    """
    import kernels

    if not canvases or len(canvases) != len(prompts):
        raise ValueError(
            f"calibration needs one canvas per prompt (>= 1): got {len(canvases)} canvases "
            f"and {len(prompts)} prompts"
        )
    if any(True for _ in kernels.quantized_layers(model.unet)):
        raise ValueError("the UNet is quantized already")
    # LoRA adapters are folded into the weights first: the quantized layers then carry them
    # (the plain layers' weights, rounded to W4A4) and the bundle is one plain W4A4 UNet.
    unet_io.merge_lora(model.unet)
    # layers narrower than 64 features stay in full precision (kernels' default: they save
    # little and are the most sensitive)
    config = kernels.SVDQuantConfig(rank=rank, group_size=group_size, dtype=dtype)

    def run(_unet) -> None:  # calibration: the model proposing, as it will in use
        for i, (canvas, prompt) in enumerate(zip(canvases, prompts, strict=True)):
            model.propose(canvas, prompt, n=1, seed=seed + i)

    kernels.quantize_(model.unet, config, calibration=run)
    layers = sum(1 for _ in kernels.quantized_layers(model.unet))
    teacher = model.teacher_model()
    if teacher is not model and not any(True for _ in kernels.quantized_layers(teacher.unet)):

        def run_teacher(_unet) -> None:  # the teacher sampling its whole schedule
            for i, (canvas, prompt) in enumerate(zip(canvases, prompts, strict=True)):
                teacher.propose(canvas, prompt, n=1, seed=seed + i)

        kernels.quantize_(model.teacher_unet, config, calibration=run_teacher)
        layers += sum(1 for _ in kernels.quantized_layers(model.teacher_unet))
    return layers
