"""RMSprop: divide the gradient by a running root-mean-square of recent gradients."""

from __future__ import annotations

from typing import Any, Dict, Iterable

from gradflow.ops.update import add_, addcdiv_, addcmul_, lerp_, mul_, sqrt, sqrt_
from gradflow.optim.optimizer import Optimizer, check_hyperparameters


class RMSprop(Optimizer):
    """g = grad (+ weight_decay * p); v = alpha v + (1 - alpha) g^2;
    centered: m = lerp(m, g, 1 - alpha), avg = sqrt(v - m^2), else avg = sqrt(v); avg += eps;
    momentum: b = momentum b + g / avg, p -= lr b; else p -= lr g / avg.

    The state holds v (``square_avg``), with centered m (``grad_avg``) and with momentum b
    (``momentum_buffer``):

    >>> w = nn.Parameter(gf.tensor([1.0, -2.0]))
    >>> opt = gf.optim.RMSprop([w], lr=0.01, centered=True)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> sorted(opt.state[w]), [round(v, 3) for v in w.tolist()]
    (['grad_avg', 'square_avg', 'step'], [0.899, -1.899])
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, *, maximize: bool = False) -> None:
        options = check_hyperparameters("RMSprop", lr=lr, alpha=alpha, eps=eps,
                                        weight_decay=weight_decay, momentum=momentum)
        super().__init__(params, dict(**options, centered=centered, maximize=maximize))

    def _update_group(self, group: Dict[str, Any]) -> None:
        alpha, momentum = group["alpha"], group["momentum"]
        buffers = ["square_avg"]
        if momentum > 0:
            buffers.append("momentum_buffer")
        if group["centered"]:
            buffers.append("grad_avg")
        for p, g, state in self._stepped(group, buffers):
            square_avg = state["square_avg"]
            addcmul_(mul_(square_avg, alpha), g, g, 1 - alpha)
            if group["centered"]:
                grad_avg = lerp_(state["grad_avg"], g, 1 - alpha)
                avg = sqrt_(addcmul_(square_avg.clone(), grad_avg, grad_avg, -1))
            else:
                avg = sqrt(square_avg)
            add_(avg, group["eps"])
            if momentum > 0:
                buf = state["momentum_buffer"]
                addcdiv_(mul_(buf, momentum), g, avg)
                add_(p, buf, alpha=-group["lr"])
            else:
                addcdiv_(p, g, avg, -group["lr"])
