"""NAdam: Adam with Nesterov momentum and a momentum schedule (Dozat, 2016)."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Tuple

from gradflow.ops.update import addcdiv_, addcmul_, lerp_, mul_, sqrt
from gradflow.optim.optimizer import Optimizer, check_hyperparameters
from gradflow.tensor import tensor


class NAdam(Optimizer):
    """Implements NAdam, as torch.optim.NAdam.

    t += 1; g = grad (negated when maximize); weight decay: g += wd * p, or p *= 1 - lr * wd
    with decoupled_weight_decay (NAdamW);
    mu_t = beta1 (1 - 0.96^(t psi) / 2) with psi = momentum_decay; prod_t = mu_1 ... mu_t;
    m = lerp(m, g, 1 - beta1); v = beta2 v + (1 - beta2) g^2;
    denom = sqrt(v / (1 - beta2^t)) + eps;
    p -= lr (1 - mu_t) / (1 - prod_t) g / denom + lr mu_{t+1} / (1 - prod_t mu_{t+1}) m / denom.

    ``state['mu_product']`` is a float32 scalar tensor, as PyTorch keeps it.

    Example: after one step prod_1 = mu_1 = 0.9 (1 - 0.96^0.004 / 2)::

        >>> import gradflow as gf
        >>> w = gf.nn.Parameter(gf.ones(2))
        >>> opt = gf.optim.NAdam([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> round(opt.state[w]["mu_product"].item(), 5), [round(v, 3) for v in w.tolist()]
        (0.45007, [0.894, 0.894])
    """

    def __init__(self, params: Iterable, lr: float = 2e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False) -> None:
        options = check_hyperparameters("NAdam", lr=lr, betas=betas, eps=eps,
                                        weight_decay=weight_decay, momentum_decay=momentum_decay)
        super().__init__(params, dict(**options, decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    def _update_group(self, group: Dict[str, Any]) -> None:
        lr, (beta1, beta2) = group["lr"], group["betas"]
        psi = group["momentum_decay"]
        for p, g, state in self._stepped(group, ("exp_avg", "exp_avg_sq")):
            step = state["step"].item()
            mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * psi))
            mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
            mu_product = mul_(state.setdefault("mu_product", tensor(1.0)), mu).item()
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            lerp_(exp_avg, g, 1 - beta1)
            addcmul_(mul_(exp_avg_sq, beta2), g, g, 1 - beta2)
            denom = sqrt(exp_avg_sq / (1 - beta2**step)).add_(group["eps"])
            addcdiv_(p, g, denom, -lr * (1.0 - mu) / (1.0 - mu_product))
            addcdiv_(p, exp_avg, denom, -lr * mu_next / (1.0 - mu_product * mu_next))
