"""AdamW for bfloat16 weights: the update in float32, stored back with stochastic rounding.

A bf16 weight keeps 8 bits of mantissa: an AdamW step of lr = 1e-5 on a weight of 0.05 is
1/5000 of it, below half a bf16 ulp (1/512), so round-to-nearest would drop nearly every update
and training would stall. Stochastic rounding rounds up with probability equal to the
remainder, so the expected stored weight is the float32 one and small updates accumulate
(Zamirai et al., "Revisiting BFloat16 Training", 2020). The two moment estimates are stored in
bf16 the same way, so weights + gradients + states take 8 bytes a parameter instead of 16.
Float32 parameters in the same optimizer are updated exactly, as torch.optim.AdamW does.
"""

from __future__ import annotations

import math

import torch


def stochastic_round_bf16(x: torch.Tensor) -> torch.Tensor:
    """float32 -> bfloat16, rounding up with probability equal to the dropped remainder."""
    bits = x.float().contiguous().view(torch.int32)
    noise = torch.randint(0, 1 << 16, x.shape, dtype=torch.int32, device=x.device)
    return ((bits + noise) & -65536).view(torch.float32).to(torch.bfloat16)  # exact: low 16 bits 0


class AdamWBF16(torch.optim.Optimizer):
    """AdamW (decoupled weight decay) whose state has the dtype of its parameter.

    Args:
        params: parameters (bfloat16 ones get stochastic rounding, float32 ones exact updates).
        lr, betas, eps, weight_decay: as torch.optim.AdamW.
    """

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        """One AdamW step on every parameter with a gradient."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                g = p.grad.float()
                m = state["exp_avg"].float().mul_(b1).add_(g, alpha=1 - b1)
                v = state["exp_avg_sq"].float().mul_(b2).addcmul_(g, g, value=1 - b2)
                w = p.float().mul_(1 - lr * wd)
                denom = (v.sqrt() / math.sqrt(1 - b2**t)).add_(eps)
                w.addcdiv_(m, denom, value=-lr / (1 - b1**t))
                for target, value in ((p, w), (state["exp_avg"], m), (state["exp_avg_sq"], v)):
                    if target.dtype == torch.bfloat16:
                        target.copy_(stochastic_round_bf16(value))
                    else:
                        target.copy_(value)
        return loss
