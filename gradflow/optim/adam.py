"""Adam and AdamW: bias-corrected first and second moment estimates."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Tuple

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
from gradflow.optim.optimizer import Optimizer, check_hyperparameters


class Adam(Optimizer):
    """t += 1; g = grad (negated when maximize); weight decay: g += wd * p (Adam) or
    p *= 1 - lr * wd (decoupled, AdamW); m = lerp(m, g, 1 - beta1);
    v = beta2 v + (1 - beta2) g^2; (amsgrad: vmax = max(vmax, v), used for v);
    p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).

    The first step moves each coordinate by lr against the sign of its gradient; amsgrad keeps
    vmax in the state:

    >>> w = nn.Parameter(gf.tensor([1.0, -2.0]))
    >>> opt = gf.optim.Adam([w], lr=0.1, amsgrad=True)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> [round(v, 3) for v in w.tolist()], sorted(opt.state[w])
    ([0.9, -1.9], ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq', 'step'])
    """

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, amsgrad: bool = False, *, maximize: bool = False,
                 decoupled_weight_decay: bool = False) -> None:
        options = check_hyperparameters(type(self).__name__, lr=lr, betas=betas, eps=eps,
                                        weight_decay=weight_decay)
        super().__init__(params, dict(**options, amsgrad=amsgrad, maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _update_group(self, group: Dict[str, Any]) -> None:
        lr, (beta1, beta2) = group["lr"], group["betas"]
        buffers = ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if group["amsgrad"] else ())
        for p, g, state in self._stepped(group, buffers):
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


class AdamW(Adam):
    """Adam with decoupled weight decay (p *= 1 - lr * weight_decay before the update).

    The decay acts on the weights even where the gradient is zero:

    >>> w = nn.Parameter(gf.tensor([1.0, -2.0]))
    >>> opt = gf.optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> w.grad = gf.zeros(2)
    >>> opt.step()
    >>> [round(v, 3) for v in w.tolist()]
    [0.95, -1.9]
    """

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
