"""Gradient clipping, as torch.nn.utils: in place on the parameters' .grad."""

from __future__ import annotations

import math
from typing import Iterable, Union

from gradflow.autograd import no_grad
from gradflow.ops.shape import stack
from gradflow.tensor import Tensor, tensor

Params = Union[Tensor, Iterable[Tensor]]


def _grads(parameters: Params) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


@no_grad()
def clip_grad_norm_(parameters: Params, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scale all gradients by min(1, max_norm / (total + 1e-6)), where total is the
    norm_type-norm of the vector of all gradients (inf: the largest magnitude). Returns total.

    >>> w = nn.Parameter(gf.zeros(2))
    >>> w.grad = gf.tensor([3.0, 4.0])
    >>> nn.utils.clip_grad_norm_([w], max_norm=1.0), w.grad
    (tensor(5.), tensor([0.6000, 0.8000]))
    """
    grads = _grads(parameters)
    max_norm, norm_type = float(max_norm), float(norm_type)
    if not grads:
        return tensor(0.0)
    if norm_type == math.inf:
        norms = [g.abs().max().to(grads[0].device) for g in grads]
        total = norms[0] if len(norms) == 1 else stack(norms).max()
    else:
        norms = [g.norm(norm_type).to(grads[0].device) for g in grads]
        total = stack(norms).norm(norm_type)
    if error_if_nonfinite and not math.isfinite(total.item()):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the gradients "
            "by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.to(g.device, g.dtype))
    return total


@no_grad()
def clip_grad_value_(parameters: Params, clip_value: float, foreach=None) -> None:
    """Clamp every gradient element to [-clip_value, clip_value].

    >>> w = nn.Parameter(gf.zeros(2))
    >>> w.grad = gf.tensor([-3.0, 0.5])
    >>> nn.utils.clip_grad_value_([w], 1.0)
    >>> w.grad
    tensor([-1.0000,  0.5000])
    """
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g.clamp_(-clip_value, clip_value)
