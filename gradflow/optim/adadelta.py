"""Adadelta: step sizes from running averages of squared gradients and squared updates."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

from gradflow.autograd import no_grad
from gradflow.ops.update import add_, addcmul_, div_, mul_, sqrt_
from gradflow.optim.optimizer import Optimizer, check_option, directed_grad


class Adadelta(Optimizer):
    """g = grad (+ weight_decay * p); v = rho v + (1 - rho) g^2;
    delta = sqrt(u + eps) / sqrt(v + eps) * g; u = rho u + (1 - rho) delta^2; p -= lr delta.

    >>> w = nn.Parameter(gf.tensor([1.0, -2.0]))
    >>> opt = gf.optim.Adadelta([w], lr=1.0)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> [round(v, 4) for v in w.tolist()]
    [0.9968, -1.9968]
    """

    def __init__(self, params: Iterable, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, *, maximize: bool = False) -> None:
        lr = check_option("Adadelta", "lr", lr, "learning rate")
        rho = check_option("Adadelta", "rho", rho, "rho value", 0.0, 1.0)
        eps = check_option("Adadelta", "eps", eps, "epsilon value")
        weight_decay = check_option("Adadelta", "weight_decay", weight_decay,
                                    "weight_decay value")
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      maximize=maximize))

    @no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = self._run_closure(closure)
        for group in self.param_groups:
            rho, eps = group["rho"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self._counted_state(p, ("square_avg", "acc_delta"))
                g = directed_grad(p, group)
                square_avg, acc_delta = state["square_avg"], state["acc_delta"]
                addcmul_(mul_(square_avg, rho), g, g, 1 - rho)
                std = sqrt_(square_avg + eps)
                delta = sqrt_(acc_delta + eps)
                mul_(div_(delta, std), g)
                addcmul_(mul_(acc_delta, rho), delta, delta, 1 - rho)
                add_(p, delta, alpha=-group["lr"])
        return loss
