"""`cofrida bench render`: forward + backward of the differentiable renderer vs the reference.

Example:
    cofrida bench render            # full run (~1-2 min on 2 CPU cores)
    cofrida bench render --quick    # fewer repeats, for a smoke test

Measures, side by side in one run (the two renderers alternate, medians reported):
- 200 strokes at 256x256 and 1000 strokes at 512x512, Sharpie brush, analytic stroke model,
  one optimisation iteration = render + MSE loss + backward to every stroke parameter;
- the per-stroke reference renderer (warp each stroke over the whole canvas, composite one at
  a time) on the same strokes;
- peak memory of one 1000-stroke 512x512 iteration, in a fresh subprocess (resident memory
  sampled every millisecond, minus the resident memory after set-up).
Flush-to-zero is on for denormal floats (as in every `cofrida` command): long products of
(1 - opacity) underflow, and denormal arithmetic makes both renderers 10-40x slower on CPU.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import torch

from sim import AnalyticStrokeModel, Brush, Canvas, ReferenceRenderer, Renderer, Strokes

PARAMS = ("position", "angle", "length", "bend", "pressure", "color")


def _setup(n: int, px: int, seed: int = 0):
    canvas = Canvas(0.25, 0.25, px, px)
    brush = Brush.preset("sharpie")
    model = AnalyticStrokeModel(brush)
    strokes = Strokes.random(n, brush, canvas, torch.Generator().manual_seed(seed))
    for name in PARAMS:
        getattr(strokes, name).requires_grad_(True)
    target = torch.rand(3, px, px, generator=torch.Generator().manual_seed(seed + 1))
    return canvas, model, strokes, target


def _iteration_ms(renderer, strokes, target) -> float:
    for name in PARAMS:
        getattr(strokes, name).grad = None
    start = time.perf_counter()
    loss = ((renderer.render(strokes) - target) ** 2).mean()
    loss.backward()
    return (time.perf_counter() - start) * 1000


def _side_by_side(n: int, px: int, repeats: int, ref_repeats: int) -> dict:
    canvas, model, strokes, target = _setup(n, px)
    fast, ref = Renderer(canvas, model), ReferenceRenderer(canvas, model)
    with torch.no_grad():
        diff = float((fast.render(strokes) - ref.render(strokes)).abs().max())
    _iteration_ms(fast, strokes, target)  # warm-up
    ours, theirs = [], []
    for i in range(repeats):  # alternate so machine noise hits both alike
        if i < ref_repeats:
            theirs.append(_iteration_ms(ref, strokes, target))
        ours.append(_iteration_ms(fast, strokes, target))
    return {
        "ours_ms": statistics.median(ours),
        "ref_ms": statistics.median(theirs),
        "max_abs_diff": diff,
    }


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_memory_child(n: int, px: int) -> None:
    """Peak resident memory above the set-up baseline during one iteration, sampled at 1 kHz."""
    canvas, model, strokes, target = _setup(n, px)
    renderer = Renderer(canvas, model)
    gc.collect()
    base = _rss_mb()
    peak, done = [base], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _iteration_ms(renderer, strokes, target)
    done.set()
    sampler.join()
    peak[0] = max(peak[0], _rss_mb())
    print(json.dumps({"peak_mem_mb": peak[0] - base}))


def _peak_memory_mb(n: int, px: int) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "cofrida", "bench", "render", "--memory-child", f"{n},{px}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_mem_mb"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cofrida bench render", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        n, px = map(int, args.memory_child.split(","))
        torch.set_flush_denormal(True)
        _peak_memory_child(n, px)
        return 0

    repeats = 3 if args.quick else 9
    torch.set_flush_denormal(True)  # as the CLI does; without it both renderers crawl on CPU
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)
    small = _side_by_side(200, 256, repeats, repeats)
    print(
        f"200 strokes @ 256x256: ours {small['ours_ms']:.1f} ms/iter, "
        f"reference {small['ref_ms']:.1f} ms/iter, max |diff| {small['max_abs_diff']:.2e}",
        flush=True,
    )
    big = _side_by_side(1000, 512, repeats, 1)
    print(
        f"1000 strokes @ 512x512: ours {big['ours_ms']:.1f} ms/iter, "
        f"reference {big['ref_ms']:.1f} ms/iter (1 run), max |diff| {big['max_abs_diff']:.2e}",
        flush=True,
    )
    peak = _peak_memory_mb(1000, 512)
    print(f"peak memory, 1000 strokes @ 512x512, one iteration: {peak:.0f} MB", flush=True)
    result = {
        "speedup_256": small["ref_ms"] / small["ours_ms"],
        "ms_per_iter_256": small["ours_ms"],
        "ref_ms_per_iter_256": small["ref_ms"],
        "speedup_512": big["ref_ms"] / big["ours_ms"],
        "ms_per_iter_512": big["ours_ms"],
        "ref_ms_per_iter_512": big["ref_ms"],
        "peak_mem_mb_512": peak,
        "max_abs_diff": max(small["max_abs_diff"], big["max_abs_diff"]),
        "repeats": repeats,
    }
    print(json.dumps(result))
    return 0
