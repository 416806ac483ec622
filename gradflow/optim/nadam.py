"""NAdam: Adam with Nesterov momentum and a momentum schedule (Dozat, 2016)."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Tuple

from gradflow.autograd import no_grad
from gradflow.ops.update import addcdiv_, addcmul_, lerp_, mul_, sqrt
from gradflow.optim.optimizer import Optimizer, adam_options, check_option, directed_grad
from gradflow.tensor import Tensor, tensor


class NAdam(Optimizer):
    """Implements NAdam, as torch.optim.NAdam.

    t += 1; g = grad (negated when maximize); weight decay: g += wd * p, or p *= 1 - lr * wd
    with decoupled_weight_decay (NAdamW);
    mu_t = beta1 (1 - 0.96^(t psi) / 2) with psi = momentum_decay; prod_t = mu_1 ... mu_t;
    m = lerp(m, g, 1 - beta1); v = beta2 v + (1 - beta2) g^2;
    denom = sqrt(v / (1 - beta2^t)) + eps;
    p -= lr (1 - mu_t) / (1 - prod_t) g / denom + lr mu_{t+1} / (1 - prod_t mu_{t+1}) m / denom.

    ``state['mu_product']`` is a float32 scalar tensor, as PyTorch keeps it.

    Example::

        >>> import gradflow as gf
        >>> w = gf.nn.Parameter(gf.ones(2))
        >>> opt = gf.optim.NAdam([w], lr=0.1)
        >>> (w * w).sum().backward()
        >>> opt.step()
        >>> [round(v, 3) for v in w.tolist()]
        [0.894, 0.894]
    """

    def __init__(self, params: Iterable, lr: float = 2e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, maximize: bool = False) -> None:
        options = adam_options("NAdam", lr, betas, eps, weight_decay)
        momentum_decay = check_option("NAdam", "momentum_decay", momentum_decay,
                                      "momentum_decay value")
        super().__init__(params, dict(**options, momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    def _nadam_state(self, p: Tensor) -> dict:
        state = self._counted_state(p, ("exp_avg", "exp_avg_sq"))
        state.setdefault("mu_product", tensor(1.0))
        return state

    @no_grad()
    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Perform one optimization step (closure: reevaluates the model, returns the loss)."""
        loss = self._run_closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2) = group["lr"], group["betas"]
            psi = group["momentum_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self._nadam_state(p)
                g = directed_grad(p, group)
                step = state["step"].item()
                mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * psi))
                mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
                mu_product = mul_(state["mu_product"], mu).item()
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                lerp_(exp_avg, g, 1 - beta1)
                addcmul_(mul_(exp_avg_sq, beta2), g, g, 1 - beta2)
                denom = sqrt(exp_avg_sq / (1 - beta2**step)).add_(group["eps"])
                addcdiv_(p, g, denom, -lr * (1.0 - mu) / (1.0 - mu_product))
                addcdiv_(p, exp_avg, denom, -lr * mu_next / (1.0 - mu_product * mu_next))
        return loss
