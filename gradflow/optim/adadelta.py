"""Adadelta: step sizes from running averages of squared gradients and squared updates."""

from __future__ import annotations

from typing import Any, Dict, Iterable

from gradflow.ops.update import add_, addcmul_, div_, mul_, sqrt_
from gradflow.optim.optimizer import Optimizer, check_hyperparameters


class Adadelta(Optimizer):
    """g = grad (+ weight_decay * p); v = rho v + (1 - rho) g^2;
    delta = sqrt(u + eps) / sqrt(v + eps) * g; u = rho u + (1 - rho) delta^2; p -= lr delta.

    The state of a parameter holds v (``square_avg``) and u (``acc_delta``):

    >>> w = nn.Parameter(gf.tensor([1.0, -2.0]))
    >>> opt = gf.optim.Adadelta([w], lr=1.0)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> [round(v, 4) for v in w.tolist()], sorted(opt.state[w])
    ([0.9968, -1.9968], ['acc_delta', 'square_avg', 'step'])
    """

    def __init__(self, params: Iterable, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, *, maximize: bool = False) -> None:
        options = check_hyperparameters("Adadelta", lr=lr, rho=rho, eps=eps,
                                        weight_decay=weight_decay)
        super().__init__(params, dict(**options, maximize=maximize))

    def _update_group(self, group: Dict[str, Any]) -> None:
        rho, eps = group["rho"], group["eps"]
        for p, g, state in self._stepped(group, ("square_avg", "acc_delta")):
            square_avg, acc_delta = state["square_avg"], state["acc_delta"]
            addcmul_(mul_(square_avg, rho), g, g, 1 - rho)
            std = sqrt_(square_avg + eps)
            delta = sqrt_(acc_delta + eps)
            mul_(div_(delta, std), g)
            addcmul_(mul_(acc_delta, rho), delta, delta, 1 - rho)
            add_(p, delta, alpha=-group["lr"])
