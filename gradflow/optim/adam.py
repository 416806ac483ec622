"""Adam and AdamW: bias-corrected first and second moment estimates."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Tuple

from gradflow.autograd import no_grad
from gradflow.ops.update import (
    add_,
    addcdiv_,
    addcmul_,
    div_,
    lerp_,
    maximum_,
    mul_,
    sqrt,
)
from gradflow.optim.optimizer import Optimizer, adam_options, directed_grad


class Adam(Optimizer):
    """t += 1; g = grad (negated when maximize); weight decay: g += wd * p (Adam) or
    p *= 1 - lr * wd (decoupled, AdamW); m = lerp(m, g, 1 - beta1);
    v = beta2 v + (1 - beta2) g^2; (amsgrad: vmax = max(vmax, v), used for v);
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).

    >>> w = nn.Parameter(gf.tensor([1.0, -2.0]))
    >>> opt = gf.optim.Adam([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> [round(v, 3) for v in w.tolist()]
    [0.9, -1.9]
    """

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        name = type(self).__name__
        options = adam_options(name, lr, betas, eps, weight_decay)
        super().__init__(params, dict(**options, amsgrad=amsgrad,
                                      maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay))

    @no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2) = group["lr"], group["betas"]
            buffers = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self._counted_state(p, buffers)
                g = directed_grad(p, group)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                lerp_(exp_avg, g, 1 - beta1)
                addcmul_(mul_(exp_avg_sq, beta2), g, g, 1 - beta2)
                step = state["step"].item()
                step_size = lr / (1 - beta1**step)
                bias_correction2_sqrt = (1 - beta2**step) ** 0.5
                if group["amsgrad"]:
                    second = maximum_(state["max_exp_avg_sq"], exp_avg_sq)
                else:
                    second = exp_avg_sq
                denom = add_(div_(sqrt(second), bias_correction2_sqrt), group["eps"])
                addcdiv_(p, exp_avg, denom, -step_size)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (p *= 1 - lr * weight_decay before the update).

    >>> w = nn.Parameter(gf.tensor([1.0, -2.0]))
    >>> opt = gf.optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> [round(v, 3) for v in w.tolist()]
    [0.85, -1.8]
    """

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
