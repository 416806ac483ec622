"""Adagrad: per-coordinate learning rates from the running sum of squared gradients."""

from __future__ import annotations

from typing import Any, Dict, Iterable

from gradflow.ops.update import addcdiv_, addcmul_, sqrt
from gradflow.optim.optimizer import Optimizer, check_hyperparameters


class Adagrad(Optimizer):
    """t += 1; g = grad (+ weight_decay * p); clr = lr / (1 + (t - 1) lr_decay);
    sum += g^2; p -= clr * g / (sqrt(sum) + eps).

    As in PyTorch, the state (``sum``, from initial_accumulator_value) is made at
    construction:

    >>> w = nn.Parameter(gf.tensor([1.0, -2.0]))
    >>> opt = gf.optim.Adagrad([w], lr=0.1, initial_accumulator_value=0.5)
    >>> opt.state[w]["sum"]
    tensor([0.5000, 0.5000])
    >>> (w * w).sum().backward()
    >>> opt.step()
    >>> opt.state[w]["sum"], [round(v, 3) for v in w.tolist()]
    (tensor([ 4.5000, 16.5000]), [0.906, -1.902])
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, *, maximize: bool = False) -> None:
        options = check_hyperparameters(
            "Adagrad", lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value)
        super().__init__(params, dict(**options, maximize=maximize))
        for group in self.param_groups:
            for p in group["params"]:
                self._fresh_state(p, ("sum",), group["initial_accumulator_value"])

    def _update_group(self, group: Dict[str, Any]) -> None:
        # a group added after construction gets its state on its first step
        for p, g, state in self._stepped(group, ("sum",), group["initial_accumulator_value"]):
            clr = group["lr"] / (1 + (state["step"].item() - 1) * group["lr_decay"])
            addcmul_(state["sum"], g, g, 1)
            std = sqrt(state["sum"]).add_(group["eps"])
            addcdiv_(p, g, std, -clr)
