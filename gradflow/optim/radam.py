"""RAdam: Adam with the variance of the adaptive learning rate rectified (Liu et al., 2019)."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Tuple

from gradflow.ops.update import add_, addcmul_, lerp_, mul_, sqrt
from gradflow.optim.optimizer import Optimizer, check_hyperparameters


def _rectification(step: float, beta2: float) -> Optional[float]:
    """r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t)) with
    rho_inf = 2 / (1 - beta2) - 1 and rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t); None
    while rho_t <= 5 (the variance is not yet tractable: take an SGD-with-momentum step)."""
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * beta2**step / (1 - beta2**step)
    if rho_t <= 5.0:
        return None
    return ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5


class RAdam(Optimizer):
    """Implements RAdam, as torch.optim.RAdam.

    t += 1; g = grad (negated when maximize); weight decay: g += wd * p, or p *= 1 - lr * wd
    with decoupled_weight_decay (RAdamW); m = lerp(m, g, 1 - beta1);
    v = beta2 v + (1 - beta2) g^2; m_hat = m / (1 - beta1^t);
    p -= lr m_hat r_t sqrt(1 - beta2^t) / (sqrt(v) + eps) once the rectification r_t is
    defined (see ``_rectification``), p -= lr m_hat before.

    Example: the first steps are plain momentum steps, p -= lr m_hat, with m_hat = g = 2 w::

        >>> import gradflow as gf
        >>> w = gf.nn.Parameter(gf.ones(2))
        >>> opt = gf.optim.RAdam([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> [round(v, 3) for v in w.tolist()]
        [0.8, 0.8]
    """

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False, *,
                 maximize: bool = False) -> None:
        options = check_hyperparameters("RAdam", lr=lr, betas=betas, eps=eps,
                                        weight_decay=weight_decay)
        super().__init__(params, dict(**options, decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    def _update_group(self, group: Dict[str, Any]) -> None:
        lr, (beta1, beta2) = group["lr"], group["betas"]
        for p, g, state in self._stepped(group, ("exp_avg", "exp_avg_sq")):
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            lerp_(exp_avg, g, 1 - beta1)
            addcmul_(mul_(exp_avg_sq, beta2), g, g, 1 - beta2)
            step = state["step"].item()
            direction = exp_avg / (1 - beta1**step) * lr
            rect = _rectification(step, beta2)
            if rect is not None:
                adaptive = (1 - beta2**step) ** 0.5 / sqrt(exp_avg_sq).add_(group["eps"])
                direction = direction * adaptive * rect
            add_(p, direction, alpha=-1.0)
