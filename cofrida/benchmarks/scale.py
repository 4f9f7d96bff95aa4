"""`cofrida bench scale`: is the real-size path actually small? (SD-1.5-shaped, random weights)

Example:
    cofrida bench scale                      # SD-1.5 / InstructPix2Pix UNet, 512 px (~10 GB RAM)
    cofrida bench scale --resolution 256     # the same UNet, a cheaper calibration and timing
    cofrida bench scale --quick              # a narrow UNet of the same layout (a smoke test)

Builds in code, no download, a UNet in the exact layout of ``timbrooks/instruct-pix2pix``
(SD-1.5: blocks 320/640/1280/1280, 2 layers per block, 768-d cross-attention, 8 input channels;
859.5M parameters) with seeded random weights, then:

1. ``lora_checkpoint_mb``: adds the LoRA adapters ``cofrida train --finetune lora`` adds (rank
   ``--lora-rank``, conv_in trainable), runs one AdamW step on an 8x8-latent batch, and writes an
   accelerate checkpoint with the training loop's hooks (`checkpoint_state`); the adapters are
   then removed again.
2. ``one_step_seconds_fp32``: one UNet pass (batch 1, timestep 999) at ``--resolution`` px.
3. ``quantize_seconds``: `kernels.quantize_` (bf16 factors, rank 32, group 64, 3x3 convs too)
   calibrated on ONE such pass, plus the layers' SVD and int4 rounding, as `cofrida quantize`
   does with ``--calibration-mode one_step --records 1`` (``quantize_cpu_seconds``: CPU time
   of all its threads; on a shared machine the wall time also holds other processes' work).
4. ``one_step_seconds_w4a4`` (after a warm-up pass that dequantizes the weights once), and
   ``w4a4_rel_error``: |y_w4a4 - y_fp32| / |y_fp32| of that pass (random weights: a check that
   nothing broke, not a fidelity figure).
5. ``unet_fp16_mb``: 2 bytes a parameter (what an fp16 safetensors file holds);
   ``unet_w4a4_mb``: the ``w4a4.safetensors`` file `EditModel.save_pretrained` writes, measured;
   ``ratio_vs_fp16``; ``quantized_param_share``: weights inside quantized layers / all.

Targets: ratio_vs_fp16 >= 3, quantized_param_share >= 0.95, lora_checkpoint_mb <= 50,
quantize_seconds <= 600 (2 CPU cores). The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

TARGETS = {  # key: (limit, "max" | "min")
    "ratio_vs_fp16": (3.0, "min"),
    "quantized_param_share": (0.95, "min"),
    "lora_checkpoint_mb": (50.0, "max"),
    "quantize_seconds": (600.0, "max"),
}
SD15_BLOCKS = (320, 640, 1280, 1280)
QUICK_BLOCKS = (32, 64, 128, 128)


def sd15_unet(blocks: tuple[int, ...] = SD15_BLOCKS, seed: int = 0):
    """A `UNet2DConditionModel` in SD-1.5 / InstructPix2Pix layout, seeded random weights."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=64,
        in_channels=8,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=blocks,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=768,
        attention_head_dim=8,
    ).eval()


def unet_inputs(latent: int, seed: int = 1) -> dict:
    """One-step inputs: (1, 8, latent, latent) noise + canvas, t = 999, 77 x 768 text states."""
    g = torch.Generator().manual_seed(seed)
    return {
        "sample": torch.randn(1, 8, latent, latent, generator=g),
        "timestep": torch.tensor([999]),
        "encoder_hidden_states": torch.randn(1, 77, 768, generator=g),
    }


def folder_mb(folder: str | Path) -> float:
    """Size of every file under `folder`, in MB (10^6 bytes)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 1e6


def lora_checkpoint_mb(unet, rank: int, folder: Path) -> float:
    """MB of an accelerate checkpoint of a LoRA fine-tune (adapters, conv_in, AdamW state)."""
    from accelerate import Accelerator

    from cofrida.model import unet_io
    from cofrida.train.checkpoint_state import keep_only_trainable

    conv_in = {k: v.clone() for k, v in unet.conv_in.state_dict().items()}
    unet_io.add_lora(unet, rank=rank)
    unet.conv_in.requires_grad_(True)  # as cofrida train --finetune lora
    params = [p for p in unet.parameters() if p.requires_grad]
    accelerator = Accelerator(cpu=True)
    keep_only_trainable(accelerator)
    model, optimizer = accelerator.prepare(unet, torch.optim.AdamW(params, lr=1e-4))
    inputs = unet_inputs(8)
    model.train()
    model(**inputs).sample.float().pow(2).mean().backward()
    optimizer.step()
    accelerator.save_state(str(folder))
    mb = folder_mb(folder)
    unet.unload_lora()  # the base UNet again, as it was
    unet.conv_in.load_state_dict(conv_in)
    unet.requires_grad_(False).eval()
    accelerator.free_memory()
    return mb


@torch.no_grad()
def timed_pass(unet, inputs: dict) -> tuple[float, torch.Tensor]:
    """Seconds of one UNet pass and its output."""
    start = time.perf_counter()
    y = unet(**inputs).sample
    return time.perf_counter() - start, y


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cofrida bench scale", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--resolution", type=int, default=512, help="px (latents: px / 8)")
    parser.add_argument("--quick", action="store_true", help="a narrow UNet of the same layout")
    parser.add_argument("--lora-rank", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: as is)")
    args = parser.parse_args(argv)
    if args.resolution < 64 or args.resolution % 64:
        print("cofrida bench scale: --resolution must be a multiple of 64", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    import kernels
    from cofrida.model import unet_io
    from cofrida.model.quantize import quantized_param_share

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    blocks = QUICK_BLOCKS if args.quick else SD15_BLOCKS
    start = time.perf_counter()
    unet = sd15_unet(blocks).requires_grad_(False)
    params = sum(p.numel() for p in unet.parameters())
    say(f"built a {params / 1e6:.1f}M-parameter UNet in {time.perf_counter() - start:.0f} s")
    result: dict = {"unet_params_m": round(params / 1e6, 1), "blocks": list(blocks)}
    result["unet_fp16_mb"] = round(2 * params / 1e6, 1)

    with tempfile.TemporaryDirectory() as tmp:
        result["lora_checkpoint_mb"] = round(lora_checkpoint_mb(unet, args.lora_rank,
                                                                Path(tmp) / "ckpt"), 2)  # fmt: skip
    say(f"LoRA checkpoint: {result['lora_checkpoint_mb']} MB")

    inputs = unet_inputs(args.resolution // 8)
    result["one_step_seconds_fp32"], y_fp32 = timed_pass(unet, inputs)
    say(f"fp32 pass: {result['one_step_seconds_fp32']:.1f} s")

    start, cpu_start = time.perf_counter(), time.process_time()
    config = kernels.SVDQuantConfig(rank=32, group_size=64, dtype=torch.bfloat16)
    kernels.quantize_(unet, config, calibration=[inputs])
    unet_io.round_unquantized_(unet)
    result["quantize_seconds"] = round(time.perf_counter() - start, 1)
    # CPU seconds of all threads: on a shared machine wall time also counts the others' work
    result["quantize_cpu_seconds"] = round(time.process_time() - cpu_start, 1)
    say(f"quantized in {result['quantize_seconds']} s")
    result["quantized_layers"] = sum(1 for _ in kernels.quantized_layers(unet))
    result["quantized_param_share"] = round(quantized_param_share(unet), 4)

    with tempfile.TemporaryDirectory() as tmp:
        unet_io.save_unet(unet, Path(tmp))
        result["unet_w4a4_mb"] = round(folder_mb(Path(tmp) / "unet"), 1)
    result["ratio_vs_fp16"] = round(result["unet_fp16_mb"] / result["unet_w4a4_mb"], 3)

    timed_pass(unet, inputs)  # warm-up: each layer dequantizes its int4 weight once
    result["one_step_seconds_w4a4"], y = timed_pass(unet, inputs)
    result["w4a4_rel_error"] = round(float((y - y_fp32).norm() / y_fp32.norm()), 4)
    for key in ("one_step_seconds_fp32", "one_step_seconds_w4a4"):
        result[key] = round(result[key], 2)
    result["resolution"] = args.resolution
    result["threads"] = torch.get_num_threads()
    result["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    result["targets"] = {
        k: {"value": result[k], "limit": lim, "pass": result[k] >= lim if kind == "min"
            else result[k] <= lim}
        for k, (lim, kind) in TARGETS.items()
    }  # fmt: skip
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
