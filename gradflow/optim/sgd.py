"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay."""

from __future__ import annotations

from typing import Any, Dict, Iterable

from gradflow.ops.update import add_, clone_state, mul_
from gradflow.optim.optimizer import Optimizer, check_hyperparameters, grads


class SGD(Optimizer):
    """g = grad (+ weight_decay * p; negated when maximize);
    with momentum: b = g on the first step, else b = momentum * b + (1 - dampening) * g,
    and g = g + momentum * b (nesterov) or g = b; then p -= lr * g.

    >>> w = nn.Parameter(gf.tensor([1.0, -2.0]))
    >>> opt = gf.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> [round(v, 3) for v in w.tolist()]
    [0.8, -1.6]
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False, *,
                 maximize: bool = False) -> None:
        options = check_hyperparameters("SGD", lr=lr, momentum=momentum, dampening=dampening,
                                        weight_decay=weight_decay)
        if nesterov and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(**options, nesterov=nesterov, maximize=maximize))

    def _update_group(self, group: Dict[str, Any]) -> None:
        lr, momentum = group["lr"], group["momentum"]
        for p, g in grads(group):
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = clone_state(g)
                else:
                    add_(mul_(buf, momentum), g, alpha=1 - group["dampening"])
                g = g.add(buf, alpha=momentum) if group["nesterov"] else buf
            add_(p, g, alpha=-lr)
