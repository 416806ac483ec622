"""Adagrad: per-coordinate learning rates from the running sum of squared gradients."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

from gradflow.autograd import no_grad
from gradflow.ops.update import addcdiv_, addcmul_, sqrt, zeros_state
from gradflow.optim.optimizer import Optimizer, check_option, directed_grad, step_counter


class Adagrad(Optimizer):
    """t += 1; g = grad (+ weight_decay * p); clr = lr / (1 + (t - 1) lr_decay);
    sum += g^2; p -= clr * g / (sqrt(sum) + eps).

    >>> w = nn.Parameter(gf.tensor([1.0, -2.0]))
    >>> opt = gf.optim.Adagrad([w], lr=0.1)
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> [round(v, 3) for v in w.tolist()]
    [0.9, -1.9]
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, *, maximize: bool = False) -> None:
        lr, lr_decay, weight_decay, initial_accumulator_value, eps = (
            check_option("Adagrad", name, v, what) for name, v, what in (
                ("lr", lr, "learning rate"), ("lr_decay", lr_decay, "lr_decay value"),
                ("weight_decay", weight_decay, "weight_decay value"),
                ("initial_accumulator_value", initial_accumulator_value,
                 "initial_accumulator_value value"), ("eps", eps, "epsilon value")))
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, eps=eps,
                                      weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      maximize=maximize))
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                state["step"] = step_counter()
                state["sum"] = zeros_state(p, group["initial_accumulator_value"])

    @no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = self._run_closure(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:  # a group added after construction
                    state["step"] = step_counter()
                    state["sum"] = zeros_state(p, group["initial_accumulator_value"])
                state["step"].add_(1)
                step = state["step"].item()
                g = directed_grad(p, group)
                clr = group["lr"] / (1 + (step - 1) * group["lr_decay"])
                addcmul_(state["sum"], g, g, 1)
                std = sqrt(state["sum"]).add_(group["eps"])
                addcdiv_(p, g, std, -clr)
        return loss
