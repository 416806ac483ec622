"""Adamax: Adam with the infinity norm in place of the second moment (Kingma & Ba, 2015)."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Tuple

from gradflow.ops.update import addcdiv_, lerp_, maximum_, mul_
from gradflow.optim.optimizer import Optimizer, check_hyperparameters


class Adamax(Optimizer):
    """Implements Adamax, as torch.optim.Adamax.

    t += 1; g = grad (negated when maximize) + weight_decay * p; m = lerp(m, g, 1 - beta1);
    u = max(beta2 u, |g| + eps); p -= lr / (1 - beta1^t) * m / u.

    Example: after the first step u (``state['exp_inf']``) is |g| + eps::

        >>> import gradflow as gf
        >>> w = gf.nn.Parameter(gf.ones(2))
        >>> opt = gf.optim.Adamax([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> opt.state[w]["exp_inf"], [round(v, 3) for v in w.tolist()]
        (tensor([2., 2.]), [0.9, 0.9])
    """

    def __init__(self, params: Iterable, lr: float = 2e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, *, maximize: bool = False) -> None:
        options = check_hyperparameters("Adamax", lr=lr, betas=betas, eps=eps,
                                        weight_decay=weight_decay)
        super().__init__(params, dict(**options, maximize=maximize))

    def _update_group(self, group: Dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        for p, g, state in self._stepped(group, ("exp_avg", "exp_inf")):
            exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
            lerp_(exp_avg, g, 1 - beta1)
            maximum_(mul_(exp_inf, beta2), g.abs().add_(group["eps"]))
            clr = group["lr"] / (1 - beta1 ** state["step"].item())
            addcdiv_(p, exp_avg, exp_inf, -clr)
