"""Fit a `LearnedStrokeModel` to captured real strokes (sim-to-real calibration).

Steps (`fit_stroke_model`):

1. Split the strokes (seeded): train, validation (early stopping), test (the gap report).
2. Clean every capture (`clean_captures`): subtract the paper level, then keep only the ink
   blobs that touch a generous neighbourhood of where the analytic model puts the stroke;
   stray marks elsewhere (other strokes, dirt) are erased.
3. Warm-up: fit only the brush constants and the command -> path mapping (a dozen scalars),
   with a per-stroke registration shift.
4. Outlier rejection (reported): training/validation strokes whose warm-up loss is far above the
   rest (median + `outlier_mad` * MAD), or whose ink mass is off by more than `max_ink_ratio` x
   from the model's (missing, broken or doubled strokes), are dropped.
5. Full fit: everything, the residual network included, minibatch Adam, early stopping on the
   validation loss (best weights kept).

The loss tolerates small registration errors twice over: it compares the maps at full, 1/2 and
1/4 resolution (box-averaged; a 1-2 px misplacement costs little at the coarse scales), and each
training stroke has its own learnable shift of at most `max_shift_m` (the arm's and camera's
placement error), penalised lightly; validation and test strokes get no shift.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from sim.brush import Brush
from sim.gap_report import INK_THRESHOLD, gap_report, ink_darkness, predict_darkness
from sim.stroke_dataset import StrokeDataset, validate_stroke_dataset
from sim.stroke_model import AnalyticStrokeModel, LearnedStrokeModel, StrokeFrame


@dataclass
class FitConfig:
    """How to fit; defaults fit the 360 shared Sharpie strokes in ~1-2 min on 2 CPU cores."""

    steps: int = 700  # full-fit Adam steps at most (early stopping usually ends sooner)
    warmup_steps: int = 120  # steps of the brush-constants-only stage
    batch_size: int = 48  # strokes per step
    lr: float = 0.01  # brush constants, path mapping, shifts
    lr_residual: float = 0.002  # residual network
    hidden: int = 64  # residual MLP width
    residual_size: tuple[int, int] = (8, 24)  # residual cells (across, along the path)
    val_fraction: float = 0.15  # for early stopping
    test_fraction: float = 0.15  # held out for the gap report
    seed: int = 0
    eval_every: int = 25  # steps between validation checks
    patience: int = 6  # validation checks without improvement before stopping
    max_shift_m: float = 0.001  # per-stroke registration slack while fitting (m)
    shift_penalty: float = 1e-3  # weight of mean (shift / max_shift)^2 in the loss
    shifts_in_fit: bool = False  # keep per-stroke shifts after the warm-up (they then absorb
    # shape-dependent misplacement the model should learn, so off by default)
    iou_weight: float = 0.01  # weight of (1 - soft IoU of the ink masks) in the loss
    outlier_mad: float = 5.0  # reject warm-up loss > median + this * 1.4826 * MAD
    max_ink_ratio: float = 3.0  # reject real/predicted ink mass outside [1/r, r]
    keep_radius_m: float = 0.003  # ink blobs must touch this neighbourhood of the stroke
    window_margin_m: float = 0.002  # fit on the native frame grown by this, not the whole image


@dataclass
class FitResult:
    """A fitted model and what happened: split, rejections, losses, timings, gap figures."""

    model: LearnedStrokeModel
    report: dict = field(default_factory=dict)
    cleaned: torch.Tensor | None = None  # (N, H, W) cleaned darkness of every stroke
    split: dict[str, np.ndarray] = field(default_factory=dict)
    shift_mm: np.ndarray | None = None  # (N, 2) fitted registration shift (x, y); 0 unless trained


def split_indices(n: int, val_fraction: float, test_fraction: float, seed: int = 0) -> dict:
    """Seeded disjoint (train, val, test) index arrays over n strokes."""
    perm = np.random.default_rng(seed).permutation(n)
    n_test = round(n * test_fraction)
    n_val = round(n * val_fraction)
    return {
        "test": np.sort(perm[:n_test]),
        "val": np.sort(perm[n_test : n_test + n_val]),
        "train": np.sort(perm[n_test + n_val :]),
    }


def clean_captures(
    data: StrokeDataset, brush: Brush, keep_radius_m: float = 0.003
) -> tuple[torch.Tensor, np.ndarray]:
    """Darkness (N, H, W) with the paper level removed and stray marks erased.

    A blob (8-connected pixels darker than half the ink threshold) is kept when it touches
    the analytic stroke grown by `keep_radius_m`; a halo of 2 px around kept blobs keeps their
    soft edges. Returns the cleaned darkness and, per stroke, the fraction of ink erased.
    """
    dark = data.darkness()
    paper = dark.flatten(1).median(1).values[:, None, None]
    dark = (dark - paper).clamp(min=0)
    prior = predict_darkness(AnalyticStrokeModel(brush), data, np.arange(len(data)), 1.0)
    r = max(1, round(keep_radius_m / data.meters_per_pixel))
    near_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    halo_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    keep = np.zeros(dark.shape, np.float32)
    for i in range(len(data)):
        near = cv2.dilate((prior[i].numpy() > 0.05).astype(np.uint8), near_kernel) > 0
        blobs = (dark[i].numpy() > INK_THRESHOLD / 2).astype(np.uint8)
        _, labels = cv2.connectedComponents(blobs, connectivity=8)
        touching = np.unique(labels[near & (labels > 0)])
        kept = np.isin(labels, touching).astype(np.uint8)
        keep[i] = cv2.dilate(kept, halo_kernel)
    cleaned = dark * torch.from_numpy(keep)
    ink = (dark * (dark > INK_THRESHOLD)).flatten(1).sum(1)
    ink_kept = (cleaned * (cleaned > INK_THRESHOLD)).flatten(1).sum(1)
    erased = (1 - ink_kept / ink.clamp(min=1e-6)).clamp(min=0).numpy()
    return cleaned, erased


def _pyramid_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-stroke mean squared error at full, 1/2 and 1/4 resolution (n,)."""
    total = pred.new_zeros(pred.shape[0])
    p, t = pred[:, None], target[:, None]
    for level in range(3):
        if level:
            p, t = F.avg_pool2d(p, 2, ceil_mode=True), F.avg_pool2d(t, 2, ceil_mode=True)
        total = total + ((p - t) ** 2).flatten(1).mean(1)
    return total / 3


def _soft_iou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-stroke 1 - IoU of the ink masks (n,), the predicted mask a sigmoid of darkness."""
    p = torch.sigmoid((pred - INK_THRESHOLD) / 0.05).flatten(1)
    r = (target > INK_THRESHOLD).float().flatten(1)
    inter = (p * r).sum(1)
    return 1 - (inter + 1) / ((p + r).sum(1) - inter + 1)


def _translate(maps: torch.Tensor, shift_px: torch.Tensor) -> torch.Tensor:
    """Move (n, H, W) maps by (n, 2) pixels (x, y), bilinear, zeros brought in."""
    n, h, w = maps.shape
    theta = maps.new_zeros(n, 2, 3)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, 0, 2] = -2 * shift_px[:, 0] / w
    theta[:, 1, 2] = -2 * shift_px[:, 1] / h
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    return F.grid_sample(maps[:, None], grid, align_corners=False)[:, 0]


def _fit_window(data_frame: StrokeFrame, model_frame: StrokeFrame, margin_m: float):
    """Pixel slices of the dataset image covering the model's native frame (+ margin)."""
    m = data_frame.m_per_px

    def span(lo, hi, d_lo, n):
        a = max(0, math.floor((lo - margin_m - d_lo) / m))
        b = min(n, math.ceil((hi + margin_m - d_lo) / m))
        return a, b

    x0, x1 = span(model_frame.x_min, model_frame.x_max, data_frame.x_min, data_frame.width_px)
    y0, y1 = span(model_frame.y_min, model_frame.y_max, data_frame.y_min, data_frame.height_px)
    frame = StrokeFrame(
        data_frame.x_min + x0 * m, data_frame.x_min + x1 * m,
        data_frame.y_min + y0 * m, data_frame.y_min + y1 * m, x1 - x0, y1 - y0,
    )  # fmt: skip
    return slice(y0, y1), slice(x0, x1), frame


def fit_stroke_model(
    data: StrokeDataset,
    brush: Brush,
    config: FitConfig | None = None,
    split: dict[str, np.ndarray] | None = None,
    on_progress: Callable[[dict], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FitResult:
    """Fit a `LearnedStrokeModel` for `brush` to `data` (see the module docstring).

    Args:
        data: captured strokes.
        brush: the brush they were painted with (its preset is the starting point; the
            fitted model's brush keeps its name so the calibration is found by it).
        config: fitting settings.
        split: explicit {"train", "val", "test"} index arrays (default: seeded from config).
        on_progress: called with a dict (stage, step, steps, loss, val_loss) now and then.
        should_stop: polled every step; True stops early and keeps the best weights so far.
    Returns:
        `FitResult` with the model (on CPU, eval mode) and a JSON-able report.
    """
    validate_stroke_dataset(data, "fit_stroke_model data")  # impossible strokes: no model
    cfg = config or FitConfig()
    torch.manual_seed(cfg.seed)
    t_start = time.perf_counter()
    progress = on_progress or (lambda info: None)
    stop = should_stop or (lambda: False)
    split = split or split_indices(len(data), cfg.val_fraction, cfg.test_fraction, cfg.seed)
    train, val = np.asarray(split["train"]), np.asarray(split["val"])

    # 1-2. Clean the captures; measure how dark full ink photographs.
    cleaned, erased = clean_captures(data, brush, cfg.keep_radius_m)
    ink = ink_darkness(cleaned[train])
    model = LearnedStrokeModel(brush, hidden=cfg.hidden, residual_size=cfg.residual_size)
    rows, cols, window = _fit_window(data.frame, model.frame, cfg.window_margin_m)
    target = cleaned[:, rows, cols].contiguous()  # (N, h, w) the fitting window
    length, bend, pressure = data.shapes()
    max_shift_px = cfg.max_shift_m / data.meters_per_pixel
    shift = torch.zeros(len(data), 2, requires_grad=True)  # unbounded; tanh -> +-max_shift

    def predict(index, with_shift: bool):
        idx = torch.as_tensor(index)
        pred = model(length[idx], bend[idx], pressure[idx], window) * ink
        if with_shift:
            pred = _translate(pred, torch.tanh(shift[idx]) * max_shift_px)
        return pred

    def loss_of(index, with_shift: bool):
        pred, real = predict(index, with_shift), target[torch.as_tensor(index)]
        per = _pyramid_loss(pred, real) + cfg.iou_weight * _soft_iou_loss(pred, real)
        if with_shift:
            per = per + cfg.shift_penalty * torch.tanh(shift[torch.as_tensor(index)]).pow(2).sum(1)
        return per

    @torch.no_grad()
    def val_loss(index) -> float:
        return float(
            torch.cat([loss_of(index[i : i + 64], False) for i in range(0, len(index), 64)]).mean()
        )

    rng = np.random.default_rng(cfg.seed)
    brush_params = [p for n, p in model.named_parameters() if not n.startswith("mlp.")]

    def run(stage, steps, optim, pool: np.ndarray, early_stop: bool, with_shift: bool) -> dict:
        best = {"val": val_loss(val) if len(val) else math.inf, "state": None, "step": 0}
        best["state"] = copy.deepcopy(model.state_dict())
        since_best, step = 0, 0
        for step in range(1, steps + 1):
            if stop():
                break
            batch = rng.choice(pool, size=min(cfg.batch_size, len(pool)), replace=False)
            loss = loss_of(batch, with_shift).mean()
            optim.zero_grad()
            loss.backward()
            optim.step()
            if step % cfg.eval_every == 0 or step == steps:
                v = val_loss(val) if len(val) else float(loss)
                info = {"stage": stage, "step": step, "steps": steps}
                progress({**info, "loss": float(loss.detach()), "val_loss": v})
                if v < best["val"]:
                    best.update(val=v, state=copy.deepcopy(model.state_dict()), step=step)
                    since_best = 0
                else:
                    since_best += 1
                if early_stop and since_best >= cfg.patience:
                    break
        model.load_state_dict(best["state"])
        return {"steps_run": step, "best_step": best["step"], "best_val_loss": best["val"]}

    # 3. Warm-up: brush constants, path mapping and shifts only.
    warm_optim = torch.optim.Adam([*brush_params, shift], lr=cfg.lr)
    warm = run("warmup", cfg.warmup_steps, warm_optim, train, early_stop=False, with_shift=True)

    # 4. Outliers among the training and validation strokes.
    fit_pool = np.concatenate([train, val])
    with torch.no_grad():
        per = torch.cat([loss_of(fit_pool[i : i + 64], True) for i in range(0, len(fit_pool), 64)])
        pred_ink = torch.cat(
            [
                predict(fit_pool[i : i + 64], True).flatten(1).sum(1)
                for i in range(0, len(fit_pool), 64)
            ]
        )
    real_ink = target[torch.as_tensor(fit_pool)].flatten(1).sum(1)
    med = float(per.median())
    mad = float((per - med).abs().median()) * 1.4826
    ratio = (real_ink / pred_ink.clamp(min=1e-6)).numpy()
    rejected = {}
    for j, i in enumerate(fit_pool):
        if float(per[j]) > med + cfg.outlier_mad * mad:
            rejected[int(i)] = (
                f"loss {float(per[j]):.4f} > median {med:.4f} + {cfg.outlier_mad} MAD"
            )
        elif not 1 / cfg.max_ink_ratio <= ratio[j] <= cfg.max_ink_ratio:
            rejected[int(i)] = f"ink mass {ratio[j]:.2f}x the model's"
    train = np.array([i for i in train if int(i) not in rejected], dtype=np.int64)
    val = np.array([i for i in val if int(i) not in rejected], dtype=np.int64)

    # 5. Full fit with the residual network and early stopping.
    full_optim = torch.optim.Adam(
        [
            {"params": [*brush_params, shift], "lr": cfg.lr * 0.3},
            {"params": model.mlp.parameters(), "lr": cfg.lr_residual},
        ]
    )
    full = run("fit", cfg.steps, full_optim, train, True, with_shift=cfg.shifts_in_fit)
    model.eval()
    fit_seconds = time.perf_counter() - t_start

    torch.set_grad_enabled(False)  # reading fitted values below; restored after
    # The fitted brush: same name (calibrations are found by it), fitted widths and opacities.
    model.brush = _fitted_brush(model, brush)
    report = {
        "strokes": len(data),
        "split": {k: len(v) for k, v in split.items()},
        "rejected": {str(k): v for k, v in sorted(rejected.items())},
        "erased_ink_fraction_mean": float(np.mean(erased)),
        "ink_darkness": ink,
        "warmup": warm,
        "fit": full,
        "fit_seconds": fit_seconds,
        "stopped": bool(stop()),
        "fitted_brush": model.brush.to_dict(),
        "path_mapping": {
            "length_gain": float(model.log_length_gain.exp()),
            "length_bias_mm": float(model.length_bias_mm),
            "bend_gain": float(model.log_bend_gain.exp()),
            "offset_mm": [float(v) for v in model.offset_mm],
        },
    }
    torch.set_grad_enabled(True)
    shift_mm = (torch.tanh(shift.detach()) * cfg.max_shift_m * 1000).numpy()
    used = {**split, "train_used": train, "val_used": val}
    return FitResult(model, report, cleaned, used, shift_mm)


def _fitted_brush(model: LearnedStrokeModel, brush: Brush) -> Brush:
    """`brush` with the model's fitted widths, softness and opacities (name unchanged)."""
    data = brush.to_dict()
    lo, hi = float(model.log_min_width.exp()), float(model.log_max_width.exp())
    op_lo = float(torch.sigmoid(model.logit_min_opacity))
    op_hi = float(torch.sigmoid(model.logit_max_opacity))
    data.update(
        min_width_m=min(lo, hi), max_width_m=max(lo, hi),
        softness_m=float(model.log_softness.exp()),
        min_opacity=min(op_lo, op_hi), max_opacity=max(op_lo, op_hi),
    )  # fmt: skip
    return Brush.from_dict(data)


def held_out_gap(result: FitResult, data: StrokeDataset, brush: Brush, index=None) -> dict:
    """Gap report of the analytic default and the fitted model on the test strokes."""
    index = result.split["test"] if index is None else np.asarray(index)
    models = {"analytic": AnalyticStrokeModel(brush), "fitted": result.model}
    real = result.cleaned[torch.as_tensor(index)]
    return gap_report(models, data, real, index, result.report["ink_darkness"])
