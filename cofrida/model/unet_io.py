"""Loading and saving the edit model's UNet in its three forms, and converting text-to-image UNets.

Forms inside a bundle's ``unet/`` folder:
    * plain: diffusers ``config.json`` + ``diffusion_pytorch_model.safetensors``;
    * plain + LoRA: the same base weights, and the peft adapter beside it in ``unet_lora/``
      (``adapter_config.json`` + ``adapter_model.safetensors``), so training can go on;
    * W4A4: ``config.json`` + ``w4a4.safetensors`` written by `kernels.save_quantized`
      (LoRA adapters, if any, live inside it as part of the low-rank branch).
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

W4A4_FILE = "w4a4.safetensors"
LORA_DIR = "unet_lora"
ATTENTION_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
CONV_TARGETS = ("conv1", "conv2", "conv_shortcut")


def extend_conv_in(unet, in_channels: int = 8):
    """Give a text-to-image UNet (4 input channels) zero-initialised extra input channels.

    The InstructPix2Pix recipe: the new channels carry the canvas latents; with zero weights
    the converted UNet computes exactly what it did before until fine-tuning teaches it to
    use them. Returns the same UNet (modified in place, config updated).
    """
    old = unet.conv_in
    if old.in_channels >= in_channels:
        return unet
    new = nn.Conv2d(
        in_channels,
        old.out_channels,
        old.kernel_size,
        old.stride,
        old.padding,
        device=old.weight.device,
        dtype=old.weight.dtype,
    )
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_channels] = old.weight
        new.bias.copy_(old.bias)
    unet.conv_in = new
    unet.register_to_config(in_channels=in_channels)
    return unet


def add_pooled_text(unet, dim: int):
    """Give the UNet a zero-initialised path from the pooled prompt vector to its time embedding.

    diffusers' ``class_embed_type="projection"``: a `TimestepEmbedding` (linear, SiLU, linear)
    maps the (B, ``dim``) pooled prompt to the time-embedding width and adds it to the timestep
    embedding, so every ResNet block of every resolution sees the prompt (cross-attention only
    reaches the attention blocks). The last linear starts at zero, so the converted UNet
    computes exactly what it did before until training teaches it to use the prompt. Returns
    the same UNet (modified in place, config updated); a no-op when it has the path already.
    """
    from diffusers.models.embeddings import TimestepEmbedding

    if uses_pooled_text(unet):
        return unet
    if unet.config.class_embed_type is not None or unet.config.num_class_embeds is not None:
        raise ValueError(
            f"the UNet has a class embedding already ({unet.config.class_embed_type!r}); "
            "a pooled-text path would replace it"
        )
    width = unet.time_embedding.linear_2.out_features
    ref = unet.time_embedding.linear_2.weight
    embedding = TimestepEmbedding(dim, width).to(ref.device, ref.dtype)
    with torch.no_grad():
        embedding.linear_2.weight.zero_()
        embedding.linear_2.bias.zero_()
    unet.class_embedding = embedding
    unet.register_to_config(
        class_embed_type="projection", projection_class_embeddings_input_dim=dim
    )
    return unet


def uses_pooled_text(unet) -> bool:
    """Whether the UNet takes the pooled prompt as ``class_labels`` (`add_pooled_text`)."""
    return getattr(unet.config, "class_embed_type", None) == "projection"


def text_inputs(unet, text, dtype: torch.dtype) -> dict:
    """The UNet's keyword inputs for `TextEmbeddings` ``text``: per-token states and mask, and
    the pooled vector when the UNet has the pooled-text path."""
    inputs = {
        "encoder_hidden_states": text.hidden_states.to(dtype),
        "encoder_attention_mask": text.mask,
    }
    if uses_pooled_text(unet):
        inputs["class_labels"] = text.pooled.to(dtype)
    return inputs


def unquantized_floats(unet) -> dict[str, torch.Tensor]:
    """Float parameters and buffers outside the quantized layers, by state-dict name."""
    import kernels

    quantized = {name for name, _ in kernels.quantized_layers(unet)}
    return {
        k: v
        for k, v in unet.state_dict().items()
        if v.is_floating_point() and k.rpartition(".")[0] not in quantized
    }


@torch.no_grad()
def round_unquantized_(unet, dtype: torch.dtype = torch.float16) -> None:
    """Round the weights a W4A4 bundle stores in 16 bit (norms, conv_in, conv_out, narrow
    layers) to ``dtype`` in place, keeping their dtype: the model then computes what its saved
    bundle will."""
    for v in unquantized_floats(unet).values():
        v.copy_(v.to(dtype))


@torch.no_grad()
def cast_unquantized_(unet, dtype: torch.dtype) -> None:
    """Cast the float weights outside the quantized layers to ``dtype`` (e.g. fp16 on a GPU);
    the quantized layers keep the dtypes they were quantized with."""
    import kernels

    quantized = {name for name, _ in kernels.quantized_layers(unet)}
    for name, module in unet.named_modules():
        if name in quantized or any(name.startswith(q + ".") for q in quantized if q):
            continue
        for p in module.parameters(recurse=False):
            if p.is_floating_point():
                p.data = p.data.to(dtype)
        for key, b in module.named_buffers(recurse=False):
            if b.is_floating_point():
                setattr(module, key, b.to(dtype))


def has_lora(unet) -> bool:
    """Whether peft adapters are injected in the UNet."""
    return bool(getattr(unet, "peft_config", None))


def is_quantized(unet) -> bool:
    """Whether `kernels.quantize_` replaced layers of the UNet."""
    import kernels

    return any(True for _ in kernels.quantized_layers(unet))


def add_lora(unet, rank: int = 8, alpha: float | None = None, conv: bool = False) -> None:
    """Inject peft LoRA adapters into the UNet's attention projections (and resnet convs).

    The adapters start as an identity change (peft initialises B to zero) and are the only
    parameters left trainable. pix2pix-Turbo adapts the same layers.

    Args:
        rank: LoRA rank r.
        alpha: scaling numerator (scale = alpha / r); default r.
        conv: also adapt the resnet 3x3 convolutions and shortcuts.
    """
    from peft import LoraConfig

    targets = list(ATTENTION_TARGETS) + (list(CONV_TARGETS) if conv else [])
    config = LoraConfig(
        r=rank, lora_alpha=alpha or rank, target_modules=targets, init_lora_weights="gaussian"
    )
    unet.requires_grad_(False)
    unet.add_adapter(config)


def merge_lora(unet) -> bool:
    """Fold the UNet's peft LoRA adapters into its weights and remove them, in place.

    Afterwards the UNet is a plain one that computes what the adapted one did (to float
    rounding); used before quantizing, as `kernels.quantize_` replaces plain layers only.
    Returns whether there was anything to merge.
    """
    if not has_lora(unet):
        return False
    unet.fuse_lora()
    unet.unload_lora()
    return True


def save_unet(unet, folder: Path) -> None:
    """Write the UNet into ``folder/unet`` (and ``folder/unet_lora``) in the matching form."""
    import kernels

    target = folder / "unet"
    if is_quantized(unet):
        target.mkdir(parents=True, exist_ok=True)
        unet.save_config(target)
        # the weights outside the quantized layers go in 16 bit when that loses nothing (a
        # UNet quantized by `cofrida.model.quantize` has them rounded already), so a saved
        # bundle proposes exactly what the model in memory did
        lossless = all(v.equal(v.half().to(v.dtype)) for v in unquantized_floats(unet).values())
        float_dtype = torch.float16 if lossless else None
        kernels.save_quantized(unet, target / W4A4_FILE, float_dtype=float_dtype)
        return
    if not has_lora(unet):
        unet.save_pretrained(target, safe_serialization=True)
        return
    from peft.utils import get_peft_model_state_dict

    target.mkdir(parents=True, exist_ok=True)
    unet.save_config(target)
    base = {
        k.replace(".base_layer", ""): v.detach().contiguous()
        for k, v in unet.state_dict().items()
        if ".lora_" not in k
    }
    save_file(base, str(target / "diffusion_pytorch_model.safetensors"))
    (folder / LORA_DIR).mkdir(parents=True, exist_ok=True)
    unet.peft_config["default"].save_pretrained(folder / LORA_DIR)
    lora = {k: v.contiguous() for k, v in get_peft_model_state_dict(unet).items()}
    save_file(lora, str(folder / LORA_DIR / "adapter_model.safetensors"))


def load_unet(source: str, subfolder: str = "unet", device: str | torch.device = "cpu"):
    """Load a UNet from a hub id or folder in whichever form it was saved.

    Args:
        source: hub id or local bundle/pipeline folder.
        subfolder: ``"unet"`` or ``"teacher_unet"``.
        device: where the weights go.
    """
    from diffusers import UNet2DConditionModel

    local = Path(source)
    if (local / subfolder / W4A4_FILE).is_file():
        import kernels

        config = UNet2DConditionModel.load_config(local / subfolder)
        return kernels.load_quantized(
            lambda: UNet2DConditionModel.from_config(config), local / subfolder / W4A4_FILE, device
        ).eval()
    unet = UNet2DConditionModel.from_pretrained(source, subfolder=subfolder).to(device)
    if subfolder == "unet" and (local / LORA_DIR / "adapter_config.json").is_file():
        from peft import LoraConfig
        from peft.utils import set_peft_model_state_dict

        unet.add_adapter(LoraConfig.from_pretrained(local / LORA_DIR))
        weights = load_file(str(local / LORA_DIR / "adapter_model.safetensors"), device=str(device))
        result = set_peft_model_state_dict(unet, weights)
        unexpected = getattr(result, "unexpected_keys", None)
        if unexpected:
            raise ValueError(f"LoRA weights do not fit the UNet: {unexpected[:5]}")
    return unet.eval()
