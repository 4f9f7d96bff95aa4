"""`cofrida bench kernels`: SVDQuant W4A4 storage, accuracy and (on a CUDA GPU) kernel speed.

Example:
    cofrida bench kernels
    cofrida bench kernels --rank 16 --repeats 50

Measures, side by side in one run:
  * storage: bf16 bytes / quantized bytes over the layers `quantize_` replaces in a stand-in
    with SDXL UNet layer shapes (`kernels.unet_standin`, built on the meta device: shapes only);
  * accuracy: relative output error (||y - y_fp32|| / ||y_fp32||) of SVDQuant and of naive W4A4
    (per-group and per-tensor, no smoothing, no low rank) on synthetic UNet-sized layers whose
    activations have outlier channels, averaged over the layers;
  * speed, only with CUDA: medians of the fused kernels vs the low-rank branch as separate
    matmuls, and vs bf16 ``F.linear``, at M = 4096 tokens, K = N = 1280 and 640. Without CUDA
    the JSON says ``"gpu": null`` and no speed is reported.

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn

SPEED_SHAPES = [(4096, 1280, 1280), (4096, 640, 640)]  # (M tokens, K, N)
ACCURACY_SHAPES = [(640, 640), (1280, 1280), (1280, 5120)]  # (K, N): attn 640/1280, GEGLU half


def storage(rank: int, group_size: int) -> dict:
    """Bytes of the quantized layers of the SDXL-shaped stand-in (meta device, no weights)."""
    from kernels import SVDQuantConfig, SVDQuantLinear, planned_layers
    from kernels.unet_standin import UNetStandIn

    with torch.device("meta"):
        unet = UNetStandIn()
    config = SVDQuantConfig(rank=rank, group_size=group_size)
    bf16 = quant = 0
    names = planned_layers(unet, config)
    for name in names:
        m = unet.get_submodule(name)
        w = m.weight.flatten(1)  # (N, K)
        layer = SVDQuantLinear(
            w.shape[1], w.shape[0], rank=rank, group_size=group_size, bias=m.bias is not None,
            device="meta",
        )  # fmt: skip
        bf16 += 2 * (w.numel() + (0 if m.bias is None else m.bias.numel()))
        quant += layer.quantized_bytes()
    total = sum(p.numel() for p in unet.parameters())
    return {
        "layers": len(names),
        "quantized_params_share": round(bf16 / 2 / total, 4),
        "bf16_mb": round(bf16 / 2**20, 2),
        "quantized_mb": round(quant / 2**20, 2),
        "weight_bytes_ratio": round(bf16 / quant, 3),
    }


def _outlier_acts(m: int, k: int, g: torch.Generator) -> torch.Tensor:
    x = torch.randn(m, k, generator=g)  # (M, K)
    idx = torch.arange(0, k, k // 16)  # 1 channel in 16 is an outlier, 40-80x larger
    x[:, idx] *= 40.0 * (1 + torch.rand(len(idx), generator=g))
    return x


def accuracy(rank: int, group_size: int, tokens: int, shapes: list[tuple[int, int]]) -> dict:
    """Mean relative output error of SVDQuant and naive W4A4 over synthetic outlier layers."""
    from kernels import SVDQuantConfig, quantize_
    from kernels.quant_ref import naive_w4a4_ref

    g = torch.Generator().manual_seed(0)
    errs: dict[str, list[float]] = {"svdquant": [], "naive_group": [], "naive_tensor": []}
    config = SVDQuantConfig(rank=rank, group_size=group_size)
    for k, n in shapes:
        lin = nn.Linear(k, n)
        with torch.no_grad():  # noise plus a rank-4 dominant part, as trained weights have
            w = torch.randn(n, k, generator=g) * 0.02
            lin.weight.copy_(
                w + torch.randn(n, 4, generator=g) @ torch.randn(4, k, generator=g) / 50
            )
            x = _outlier_acts(tokens, k, g).bfloat16().float()
            ref = lin(x)
            calib = [_outlier_acts(tokens, k, g) for _ in range(4)]
            q = quantize_(nn.Sequential(lin), config, calibration=calib)

            def rel(y: torch.Tensor, ref: torch.Tensor = ref) -> float:
                return ((y.float() - ref).norm() / ref.norm()).item()

            errs["svdquant"].append(rel(q(x.bfloat16())))
            w = lin.weight
            errs["naive_group"].append(rel(naive_w4a4_ref(x, w, lin.bias, group_size)))
            errs["naive_tensor"].append(rel(naive_w4a4_ref(x, w, lin.bias, None)))
    mean = {key: statistics.fmean(v) for key, v in errs.items()}
    return {
        "rel_err_svdquant": round(mean["svdquant"], 5),
        "rel_err_naive_w4a4": round(mean["naive_group"], 5),
        "rel_err_naive_w4a4_per_tensor": round(mean["naive_tensor"], 5),
        "err_ratio_naive_over_svdquant": round(mean["naive_group"] / mean["svdquant"], 2),
    }


def _median_ms(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def _time_shape(m: int, k: int, n: int, rank: int, group_size: int, repeats: int) -> dict:
    """Median ms of fused, unfused and bf16 for one (M, K, N) on CUDA, bf16 activations."""
    import torch.nn.functional as F

    from kernels.act_quant_lowrank import act_quant_lowrank
    from kernels.quant_ref import quantize_int4_groups
    from kernels.w4a4_gemm import w4a4_gemm

    dt, dev = torch.bfloat16, "cuda"
    x = torch.randn(m, k, device=dev, dtype=dt)
    w = torch.randn(n, k, device=dev, dtype=dt)
    b = torch.randn(n, device=dev, dtype=dt)
    inv = torch.rand(k, device=dev) + 0.5
    l1 = torch.randn(k, rank, device=dev, dtype=dt) / k**0.5
    l2 = torch.randn(rank, n, device=dev, dtype=dt) / rank**0.5
    qw, sw = quantize_int4_groups(w, group_size, dt)

    def fused() -> torch.Tensor:
        qx, sa, lr = act_quant_lowrank(x, inv, l1, group_size)
        return w4a4_gemm(qx, sa, qw, sw, lr, l2, b, dt)

    def unfused() -> torch.Tensor:  # same quantized GEMM, low-rank branch as separate matmuls
        qx, sa, lr0 = act_quant_lowrank(x, inv, l1[:, :0], group_size)
        lr = (x * inv).to(dt) @ l1  # extra pass over x
        y = w4a4_gemm(qx, sa, qw, sw, lr0, l2[:0], b, dt)
        return torch.addmm(y, lr, l2)  # extra pass over y

    def bf16() -> torch.Tensor:
        return F.linear(x, w, b)

    cases = {"fused": fused, "unfused": unfused, "bf16": bf16}
    t = {name: _median_ms(fn, repeats) for name, fn in cases.items()}
    return {
        "m": m,
        "k": k,
        "n": n,
        **{f"{key}_ms": round(v, 4) for key, v in t.items()},
        "fused_vs_unfused_speedup": round(t["unfused"] / t["fused"], 3),
        "vs_bf16_speedup": round(t["bf16"] / t["fused"], 3),
    }


def gpu_speed(rank: int, group_size: int, repeats: int) -> dict:
    """Per-shape medians on CUDA; the headline speedups are the worst over the shapes."""
    shapes = [_time_shape(m, k, n, rank, group_size, repeats) for m, k, n in SPEED_SHAPES]
    return {
        "device": torch.cuda.get_device_name(),
        "shapes": shapes,
        "fused_vs_unfused_speedup": min(s["fused_vs_unfused_speedup"] for s in shapes),
        "vs_bf16_speedup": min(s["vs_bf16_speedup"] for s in shapes),
    }


def main(argv: list[str]) -> int:
    """Run the benchmark; prints progress, then one JSON object as the last line."""
    parser = argparse.ArgumentParser(prog="cofrida bench kernels", description=__doc__)
    parser.add_argument("--rank", type=int, default=32, help="low-rank branch width")
    parser.add_argument("--group-size", type=int, default=64, help="channels per int4 scale")
    parser.add_argument("--tokens", type=int, default=256, help="tokens per accuracy batch")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per GPU case")
    parser.add_argument("--quick", action="store_true", help="accuracy on the 640 layer only")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    result: dict = {"benchmark": "kernels", "rank": args.rank, "group_size": args.group_size}
    result.update(storage(args.rank, args.group_size))
    result["weight_bytes_ratio_by_rank"] = {
        str(r): storage(r, args.group_size)["weight_bytes_ratio"] for r in (0, 8, 16, 32)
    }
    print(f"storage done ({time.perf_counter() - t0:.1f} s)", flush=True)
    shapes = ACCURACY_SHAPES[:1] if args.quick else ACCURACY_SHAPES
    result.update(accuracy(args.rank, args.group_size, args.tokens, shapes))
    print(f"accuracy done ({time.perf_counter() - t0:.1f} s)", flush=True)
    if torch.cuda.is_available():
        gpu = gpu_speed(args.rank, args.group_size, args.repeats)
        result["gpu"] = gpu
        result["fused_vs_unfused_speedup"] = gpu["fused_vs_unfused_speedup"]
        result["vs_bf16_speedup"] = gpu["vs_bf16_speedup"]
    else:
        result["gpu"] = None
        result["fused_vs_unfused_speedup"] = None
        result["vs_bf16_speedup"] = None
        result["gpu_note"] = "no CUDA device: GPU speed not measured"
    result["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result))
    return 0
