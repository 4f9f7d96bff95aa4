"""Triton kernels with their PyTorch references (SVDQuant W4A4 with a fused low-rank branch).

Importing this package never initialises CUDA and never imports triton eagerly: the two kernel
wrappers (`act_quant_lowrank`, `w4a4_gemm`) are loaded on first use.

Example:
    >>> import kernels
    >>> kernels.quantize_(unet, kernels.SVDQuantConfig(rank=32, group_size=64),
    ...                   calibration=[dict(sample=s, timestep=t, encoder_hidden_states=c)])
    >>> kernels.save_quantized(unet, "unet_w4a4.safetensors")
    >>> unet = kernels.load_quantized(lambda: UNet2DConditionModel(**cfg), "unet_w4a4.safetensors")
"""

from kernels.config import SVDQuantConfig
from kernels.lora import add_lora, add_lora_to_model, remove_lora, remove_lora_from_model
from kernels.quantize import (
    calibrate,
    dequantize_,
    planned_layers,
    quantize_,
    quantized_layers,
    weight_bytes,
)
from kernels.serialization import load_quantized, read_metadata, save_quantized
from kernels.svdquant_conv import SVDQuantConv2d
from kernels.svdquant_linear import SVDQuantConv1x1, SVDQuantLinear

__all__ = [
    "SVDQuantConfig",
    "SVDQuantConv1x1",
    "SVDQuantConv2d",
    "SVDQuantLinear",
    "act_quant_lowrank",
    "add_lora",
    "add_lora_to_model",
    "calibrate",
    "dequantize_",
    "load_quantized",
    "planned_layers",
    "quantize_",
    "quantized_layers",
    "read_metadata",
    "remove_lora",
    "remove_lora_from_model",
    "save_quantized",
    "w4a4_gemm",
    "weight_bytes",
]

_LAZY = {"act_quant_lowrank": "kernels.act_quant_lowrank", "w4a4_gemm": "kernels.w4a4_gemm"}


def __getattr__(name: str):
    if name in _LAZY:  # importing triton only here keeps `import kernels` light
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kernels' has no attribute {name!r}")
