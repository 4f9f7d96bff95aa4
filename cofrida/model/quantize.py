"""W4A4 quantization of an `EditModel`'s UNet (SVDQuant, `kernels.quantize_`), calibrated on use.

The smoothing factors of SVDQuant come from the activations each layer sees. They are recorded
while the model proposes paintings for real (canvas, prompt) pairs, so the calibration covers
exactly the inputs the quantized model will meet: the one-step pass at the model's timestep (and
the multi-step passes when the model runs in that mode).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from cofrida.model import canvas_io, unet_io

DEFAULT_RANK = 32  # the low-rank branch that absorbs outliers (SVDQuant's default)
DEFAULT_GROUP_SIZE = 64  # one 4-bit scale per 64 input channels


def calibration_passes(model, mode: str | None = None, steps: int | None = None) -> int:
    """UNet passes one calibration proposal runs (one-step: 1 + structure steps; multi-step:
    ``steps`` guided passes of 3 branches each, batched)."""
    mode = mode or model.config.mode
    steps = steps or model.config.num_inference_steps
    if mode == "one_step":
        return 1 + min(model.config.structure_steps, steps - 1)
    return steps


@torch.no_grad()
def seconds_per_pass(model, mode: str | None = None) -> float:
    """Seconds of one UNet pass at the model's resolution, timed once (batch 3 for multi-step:
    its three guidance branches)."""
    mode = mode or model.config.mode
    device, dtype = model._device_dtype()
    res = model.config.resolution
    h, w = canvas_io.model_size(res, res, res, model.size_multiple)  # px the model works at
    side_h, side_w = h // model.vae_scale_factor, w // model.vae_scale_factor
    batch = 1 if mode == "one_step" else 3
    text = model._encode_prompt("a painting")
    latents = torch.randn(batch, model.unet.config.in_channels, side_h, side_w, device=device)
    t = torch.full((batch,), 999, device=device, dtype=torch.long)
    start = time.perf_counter()
    model.unet(
        latents.to(dtype),
        t,
        **unet_io.text_inputs(model.unet, text.repeat(batch), dtype),
    )
    return time.perf_counter() - start


@torch.no_grad()
def estimate_layer_seconds(unet, rank: int = DEFAULT_RANK, convs: bool = True) -> float:
    """Seconds `kernels.quantize_` will spend on the layers themselves (SVD branch, int4),
    from timing the widest planned layer once and scaling by weight elements."""
    import kernels
    from kernels.svdquant_linear import SVDQuantLinear

    config = kernels.SVDQuantConfig(rank=rank, convs=convs, dtype=torch.bfloat16)
    shapes = []
    for name in kernels.planned_layers(unet, config):
        weight = unet.get_submodule(name).weight
        shapes.append((weight.shape[0], weight[0].numel()))  # (N, K)
    if not shapes:
        return 0.0
    n, k = max(shapes, key=lambda s: s[0] * s[1])
    w = torch.randn(n, k, generator=torch.Generator().manual_seed(0))
    start = time.perf_counter()
    SVDQuantLinear._from_weight(w, None, None, config)
    per_element = (time.perf_counter() - start) / (n * k)
    return per_element * sum(a * b for a, b in shapes)


def quantized_param_share(unet) -> float:
    """Share of the UNet's weights (elements) that sit in quantized layers, 0..1."""
    import kernels

    quantized = dict(kernels.quantized_layers(unet))
    inside = sum(layer.weight_numel() for layer in quantized.values())
    outside = sum(
        p.numel() for name, p in unet.named_parameters() if name.rpartition(".")[0] not in quantized
    )
    quantized_bias = sum(
        layer.out_features for layer in quantized.values() if layer.bias is not None
    )
    return inside / max(inside + outside + quantized_bias, 1)


def quantize_edit_model(
    model,
    canvases: Sequence[torch.Tensor],
    prompts: Sequence[str],
    rank: int = DEFAULT_RANK,
    group_size: int = DEFAULT_GROUP_SIZE,
    dtype: torch.dtype = torch.bfloat16,
    seed: int = 0,
    mode: str | None = None,
    steps: int | None = None,
    convs: bool = True,
):
    """Quantize ``model.unet`` (and ``teacher_unet``) to W4A4 in place, calibrated on pairs.

    The UNet is calibrated on the model proposing as configured (with its structure steps, when
    it has them, so both kinds of passes are seen); the teacher on full multi-step proposals.
    ``mode`` / ``steps`` make calibration cheaper: an InstructPix2Pix-sized UNet takes about
    10 s a pass on two CPU cores, so 16 records of 20-step proposals would take hours, while
    ``mode="multi_step", steps=2`` (early and late timesteps) or ``mode="one_step"`` takes
    minutes (`calibration_passes` and `seconds_per_pass` give the estimate).
    A LoRA-adapted UNet has its adapters merged into its weights first; its multi-step teacher,
    the base UNet with the adapters switched off, is then gone (a ``teacher_unet`` stays).
    Afterwards every weight outside the quantized layers is rounded to float16, as the bundle
    stores it, so the model in memory proposes what its saved bundle will.

    Args:
        model: an `EditModel` in full precision.
        canvases: (3, H, W) float tensors in 0..1, one per prompt (at least one pair).
        prompts: the prompts, same length as `canvases`.
        rank: rank of the 16-bit (or `dtype`) low-rank branch.
        group_size: input channels per quantization group (power of two >= 32).
        dtype: dtype of the low-rank factors, scales and biases of quantized layers (16 bit:
            the bundle is then about 3.4x smaller than fp16 at SD-1.5 size; float32 factors
            make it larger).
        seed: seeds the proposals that calibration runs.
        mode: calibration proposals' mode (None: the model's).
        steps: calibration proposals' sampler steps (None: the model's num_inference_steps).
        convs: quantize the k x k convolutions too (63% of an SD-1.5 UNet's weights).

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
    config = kernels.SVDQuantConfig(rank=rank, group_size=group_size, dtype=dtype, convs=convs)
    overrides = {"mode": mode, "num_inference_steps": steps}
    if mode in (None, "one_step") and steps is not None:
        overrides["structure_steps"] = min(model.config.structure_steps, steps - 1)

    def run(_unet) -> None:  # calibration: the model proposing, as it will in use
        for i, (canvas, prompt) in enumerate(zip(canvases, prompts, strict=True)):
            model.propose(canvas, prompt, n=1, seed=seed + i, **overrides)

    kernels.quantize_(model.unet, config, calibration=run)
    unet_io.round_unquantized_(model.unet)
    layers = sum(1 for _ in kernels.quantized_layers(model.unet))
    teacher = model.teacher_model()
    if teacher is not model and not any(True for _ in kernels.quantized_layers(teacher.unet)):

        def run_teacher(_unet) -> None:  # the teacher sampling its whole schedule
            for i, (canvas, prompt) in enumerate(zip(canvases, prompts, strict=True)):
                teacher.propose(canvas, prompt, n=1, seed=seed + i, num_inference_steps=steps)

        kernels.quantize_(model.teacher_unet, config, calibration=run_teacher)
        unet_io.round_unquantized_(model.teacher_unet)
        layers += sum(1 for _ in kernels.quantized_layers(model.teacher_unet))
    return layers
