"""`Planner`: optimise stroke parameters through the differentiable renderer into a `Plan`.

One `plan` call, step by step:

1. Check the images; derive the co-painting keep-mask (painted and kept by the target).
2. Initialise N strokes where the target differs from the canvas (`planner.initialise`).
3. Coarse phase at `config.coarse_px`: optimise geometry and a soft choice of paint per stroke
   (`Palette.soft_assign`, temperature annealed towards one-hot), clamped to the brush's ranges
   and the canvas margin every step.
4. Snap every stroke to its paint, group the strokes by colour (the painting order's groups).
5. Fine phase at the full size: optimise geometry only, in the grouped order, so what is
   optimised is exactly what will be painted.
6. Order within colours for short travel, build the `Plan` and a `PlanReport`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace

import torch

from planner import copaint
from planner.config import ArmSpeeds, PlannerConfig
from planner.images import load_image, resize
from planner.initialise import initial_strokes
from planner.objectives import Objective, Scorer, mse
from planner.ordering import colour_groups, painting_order
from planner.plan import Plan
from planner.progress import ProgressFn, StopFn, check_stop, report
from sim import AnalyticStrokeModel, Brush, Canvas, Renderer, StrokeModel, Strokes
from sim.palette import Palette
from sim.physical_brush import PhysicalBrushConfig

_SHAPE_FIELDS = ("position", "angle", "length", "bend", "pressure")


@dataclass
class PlanReport:
    """What a planning call achieved. Losses are mean squared sRGB error (0..1 channels) of the
    rendered painting against the target at the full canvas size."""

    loss_canvas: float  # the canvas as it is (nothing painted) vs the target
    loss_init: float  # the initial strokes, snapped to the palette
    loss_final: float  # the plan as it will be painted (snapped, in painting order)
    objective_final: float  # the full weighted objective at the end (incl. keep, structure)
    preserved_fraction: float  # protected pixels the plan leaves unchanged (1.0 if none)
    protected_pixels: int  # size of the keep-mask (px)
    travel_unordered_m: float  # lifted travel in the optimiser's stroke order (m)
    travel_ordered_m: float  # lifted travel in the painting order (m)
    travel_reduction: float  # 1 - ordered / unordered
    paint_changes: int  # cleans + new colours (== colours used)
    colours_used: int
    estimated_seconds: float  # arm time from `ArmSpeeds`
    seconds: float  # wall time of the planning call
    steps: int  # optimisation steps run
    history: list[float] = field(default_factory=list)  # objective every step

    def to_dict(self) -> dict:
        return asdict(self)


class Planner:
    """Plans strokes for one robot set-up: canvas, brush, palette and stroke model.

    Args:
        canvas: the physical canvas and its full render size (the target's size).
        brush: the robot's brush; its ranges bound every stroke.
        palette: the paints the robot has; every planned stroke uses one of them.
        config: objective weights and schedule; default `PlannerConfig()`.
        stroke_model: the (calibrated) stroke model; default analytic for `brush`.
        scorer: optional differentiable ``scorer(images (B, 3, H, W), prompt) -> (B,)``,
            higher is better (a CLIP score, the edit model's scorer).
        speeds: arm speeds for the time estimate.
    """

    def __init__(
        self,
        canvas: Canvas,
        brush: Brush,
        palette: Palette,
        config: PlannerConfig | None = None,
        stroke_model: StrokeModel | None = None,
        scorer: Scorer | None = None,
        speeds: ArmSpeeds | None = None,
    ):
        self.canvas = canvas
        self.brush = brush
        self.palette = palette
        self.config = config or PlannerConfig()
        self.stroke_model = stroke_model or AnalyticStrokeModel(brush)
        self.scorer = scorer
        self.speeds = speeds or ArmSpeeds()
        self.renderer = Renderer(canvas, self.stroke_model)
        coarse_w = min(self.config.coarse_px, canvas.width_px)
        self.coarse_canvas = canvas.at(coarse_w)
        self.coarse_renderer = Renderer(self.coarse_canvas, self.stroke_model)

    # ---- public API -------------------------------------------------------------------------
    def plan(
        self,
        canvas_image=None,
        target=None,
        strokes: int = 200,
        keep_mask: torch.Tensor | None = None,
        prompt: str = "",
        on_progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> tuple[Plan, PlanReport]:
        """Plan `strokes` new strokes that take `canvas_image` towards `target`.

        Args:
            canvas_image: the canvas as it is (path, (3, H, W) tensor in 0..1 or (H, W, 3)
                uint8), with the person's work on it; None = blank white paper.
            target: the image to paint (same forms, the canvas' size); None with a scorer and
                a prompt paints from text alone.
            strokes: stroke budget N >= 1.
            keep_mask: (H, W) bool, True where the plan must not cover the canvas; None derives
                it from canvas and target (painted there and the target agrees); an all-False
                mask lets the plan paint anywhere.
            prompt: text for the scorer.
            on_progress: called with {phase, step, total, loss, ...} every 10 steps.
            should_stop: polled every step; True raises `planner.Cancelled`.
        Returns:
            (plan, report).
        """
        start_time = time.perf_counter()
        c = self.config
        if not (isinstance(strokes, int) and strokes >= 1):
            raise ValueError(f"strokes must be a positive integer, got {strokes!r}")
        # 1. images and keep-mask
        h, w = self.canvas.size_px
        if canvas_image is None:
            canvas_image = torch.ones(3, h, w)
        canvas_image = load_image(canvas_image, self.canvas, "canvas image")
        objective_config = c
        if target is None:
            if self.scorer is None or not prompt:
                raise ValueError("plan needs a target image, or a scorer and a prompt")
            target = canvas_image
            objective_config = replace(c, rgb_weight=0.0, lab_weight=0.0, structure_weight=0.0)
        else:
            target = load_image(target, self.canvas, "target")
        keep = self._keep(keep_mask, canvas_image, target)
        gen = torch.Generator().manual_seed(c.seed)

        # 2. initial strokes
        init = initial_strokes(strokes, canvas_image, target, self.canvas, self.brush, c, keep, gen)
        _, init_snapped = self.palette.snap(init.color)
        loss_init = mse(self._render_fixed(init, init_snapped, canvas_image), target)

        # 3. coarse phase: geometry + soft paint choice
        coarse_bg = resize(canvas_image, self.coarse_canvas)
        coarse_obj = Objective(
            resize(target, self.coarse_canvas),
            objective_config,
            self.scorer,
            prompt,
            None if keep is None else copaint.soften(keep, self.coarse_canvas.size_px),
        )
        params = {name: getattr(init, name).clone().requires_grad_(True) for name in _SHAPE_FIELDS}
        logits = self.palette.logits_from_colors(init.color).detach().requires_grad_(True)
        history: list[float] = []

        def coarse_strokes(step: int) -> Strokes:
            frac = step / max(1, c.coarse_steps - 1)
            temp = c.temperature_start * (c.temperature_end / c.temperature_start) ** frac
            color = self.palette.soft_assign(logits, temp)
            return Strokes(**params, color=color)

        self._run(
            "coarse", c.coarse_steps, coarse_strokes, params, logits, self.coarse_renderer,
            coarse_bg, coarse_obj, history, on_progress, should_stop,
        )  # fmt: skip

        # 4. snap colours, group by colour
        with torch.no_grad():
            final_color = self.palette.soft_assign(logits, c.temperature_end)
            index, _ = self.palette.snap(final_color)
        groups = colour_groups(index)
        perm = torch.tensor(
            [i for p in groups for i in torch.nonzero(index == p).flatten().tolist()]
        )
        inverse = torch.argsort(perm)

        # 5. fine phase: geometry only, grouped order, snapped colours
        keep_full = None if keep is None else copaint.soften(keep, self.canvas.size_px)
        fine_obj = Objective(target, objective_config, self.scorer, prompt, keep_full)
        fine_params = {k: v.detach()[perm].clone().requires_grad_(True) for k, v in params.items()}
        colors = self.palette.colors[index[perm]]

        def fine_strokes(step: int) -> Strokes:
            return Strokes(**fine_params, color=colors)

        self._run(
            "fine", c.fine_steps, fine_strokes, fine_params, None, self.renderer, canvas_image,
            fine_obj, history, on_progress, should_stop,
        )  # fmt: skip

        # 6. final strokes in the optimiser's original index, painting order, report
        with torch.no_grad():
            grouped = Strokes(
                **{k: v.detach() for k, v in fine_params.items()},
                color=colors,
                palette_index=index[perm],
            ).clamp(self.brush, self.canvas, c.margin_m)
            final = grouped[inverse]
            order = painting_order(final, groups)
            painting, coverage = self.renderer.render(
                final[torch.tensor(order)], canvas_image, return_coverage=True
            )
            objective_final, _ = fine_obj(painting, coverage)
        plan = Plan(
            self.canvas, self.brush, self.palette, final, order, self.dip_every(final), c.margin_m,
            meta={"prompt": prompt, "seed": c.seed, "config": c.to_dict()},
        )  # fmt: skip
        rep = self._report(
            plan, canvas_image, target, painting, keep, loss_init, float(objective_final),
            history, start_time,
        )  # fmt: skip
        plan.meta["report"] = {k: v for k, v in rep.to_dict().items() if k != "history"}
        report(
            on_progress, phase="done", step=len(history), total=len(history), loss=rep.loss_final
        )
        return plan, rep

    def replan(
        self,
        plan: Plan,
        done: int,
        canvas_image,
        target,
        keep_mask: torch.Tensor | None = None,
        steps: int | None = None,
        prompt: str = "",
        on_progress: ProgressFn | None = None,
        should_stop: StopFn | None = None,
    ) -> tuple[Plan, PlanReport]:
        """Closed loop: re-optimise the strokes not yet painted against the canvas as it is now.

        Args:
            plan: the plan being executed.
            done: how many strokes (painting positions 0..done-1) are already painted.
            canvas_image: the captured canvas now (its size or a file).
            target: the same target as before (or a new one).
            keep_mask: as in `plan`; None derives it from the new canvas and the target,
                leaving out pixels the plan's painted strokes cover (the robot's own work).
            steps: optimisation steps (default `config.fine_steps`).
        Returns:
            (a new plan of the remaining strokes, its report). Colours stay as planned (the
            brush's paints are fixed); geometry moves to fix what the last strokes missed.
        """
        from planner.replan import replan_remaining

        return replan_remaining(
            self, plan, done, canvas_image, target, keep_mask, steps, prompt, on_progress,
            should_stop,
        )  # fmt: skip

    def render(self, plan: Plan, background: torch.Tensor | None = None, start: int = 0):
        """The plan's strokes (from painting position `start`) rendered by the differentiable
        renderer over `background` (white if None). (3, H, W)."""
        with torch.no_grad():
            return self.renderer.render(plan.ordered_strokes(start), background)

    def dip_every(self, strokes: Strokes) -> int:
        """Strokes per paint load: `config.dip_every`, or (None) as many strokes of the plan's
        mean area as half a load paints (`PhysicalBrushConfig.for_brush` capacity), 1..20."""
        if self.config.dip_every is not None:
            return self.config.dip_every
        if len(strokes) == 0:
            return 1
        b = self.brush
        width = b.min_width_m + (b.max_width_m - b.min_width_m) * strokes.pressure.detach()
        area = float((strokes.length.detach() * width).mean())  # m^2 per stroke
        capacity = PhysicalBrushConfig.for_brush(b).capacity_m2
        return int(min(20, max(1, 0.5 * capacity // max(area, 1e-12))))

    # ---- internals --------------------------------------------------------------------------
    def _keep(self, keep_mask, canvas_image, target) -> torch.Tensor | None:
        c = self.config
        if keep_mask is None:
            keep = copaint.keep_mask(canvas_image, target, c.paper_delta_e, c.agree_delta_e)
        else:
            keep = torch.as_tensor(keep_mask)
            if tuple(keep.shape) != self.canvas.size_px:
                raise ValueError(
                    f"keep_mask must have shape {self.canvas.size_px} (H, W), "
                    f"got {tuple(keep.shape)}"
                )
            keep = keep.bool()
        return keep if bool(keep.any()) else None

    def _render_fixed(self, strokes: Strokes, colors: torch.Tensor, background) -> torch.Tensor:
        s = Strokes(**{k: getattr(strokes, k).detach() for k in _SHAPE_FIELDS}, color=colors)
        with torch.no_grad():
            return self.renderer.render(
                s.clamp(self.brush, self.canvas, self.config.margin_m), background
            )

    def _lr_groups(self, params: dict, logits) -> list[dict]:
        c, b = self.config, self.brush
        lr = {
            "position": c.lr_position_px * self.canvas.m_per_px,
            "angle": c.lr_angle,
            "length": c.lr_shape * (b.max_length_m - b.min_length_m),
            "bend": c.lr_shape * max(b.max_bend_m, 1e-6),
            "pressure": c.lr_shape,
        }
        groups = [{"params": [params[k]], "lr": lr[k]} for k in _SHAPE_FIELDS]
        if logits is not None:
            groups.append({"params": [logits], "lr": c.lr_logits})
        return groups

    def margin_penalty(self, strokes: Strokes) -> torch.Tensor:
        """Mean distance (in canvas widths) by which stroke ends leave the canvas margin."""
        m = self.config.margin_m
        direction = torch.stack([torch.cos(strokes.angle), torch.sin(strokes.angle)], -1)
        end = strokes.position + strokes.length[:, None] * direction  # (N, 2) m
        hi = end.new_tensor([self.canvas.width_m - m, self.canvas.height_m - m])
        excess = (m - end).clamp(min=0) + (end - hi).clamp(min=0)
        return excess.sum(-1).mean() / self.canvas.width_m

    def _run(
        self, phase, steps, make_strokes, params, logits, renderer, background, objective,
        history, on_progress, should_stop,
    ) -> None:  # fmt: skip
        """Adam with a cosine learning-rate decay for `steps` steps, clamping every step."""
        if steps <= 0:
            return
        c = self.config
        opt = torch.optim.Adam(self._lr_groups(params, logits))
        base = [g["lr"] for g in opt.param_groups]
        need_cov = objective.keep is not None
        for step in range(steps):
            check_stop(should_stop, "planning")
            strokes = make_strokes(step).clamp(self.brush, self.canvas, c.margin_m)
            out = renderer.render(strokes, background, return_coverage=need_cov)
            image, cov = out if need_cov else (out, None)
            loss, parts = objective(image, cov)
            if c.margin_weight > 0:
                loss = loss + c.margin_weight * self.margin_penalty(strokes)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            scale = c.lr_decay + (1 - c.lr_decay) * 0.5 * (1 + math.cos(math.pi * step / steps))
            for g, lr in zip(opt.param_groups, base, strict=True):
                g["lr"] = lr * scale
            history.append(float(loss.detach()))
            if step % 10 == 0 or step == steps - 1:
                report(
                    on_progress, phase=phase, step=step + 1, total=steps, loss=history[-1],
                    parts=parts,
                )  # fmt: skip

    def _report(
        self, plan, canvas_image, target, painting, keep, loss_init, objective_final, history,
        start_time,
    ) -> PlanReport:  # fmt: skip
        unordered = plan.travel_m(list(range(len(plan))))
        ordered = plan.travel_m()
        preserved = (
            1.0
            if keep is None
            else copaint.preserved_fraction(
                canvas_image, painting, keep, self.config.preserved_delta_e
            )
        )
        return PlanReport(
            loss_canvas=mse(canvas_image, target),
            loss_init=loss_init,
            loss_final=mse(painting, target),
            objective_final=objective_final,
            preserved_fraction=preserved,
            protected_pixels=0 if keep is None else int(keep.sum()),
            travel_unordered_m=unordered,
            travel_ordered_m=ordered,
            travel_reduction=1 - ordered / unordered if unordered > 0 else 0.0,
            paint_changes=plan.paint_changes,
            colours_used=plan.colours_used,
            estimated_seconds=plan.estimate_seconds(self.speeds),
            seconds=time.perf_counter() - start_time,
            steps=len(history),
            history=history,
        )
