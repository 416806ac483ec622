"""Flatten parameters into one vector and back, as torch.nn.utils."""

from __future__ import annotations

from typing import Iterable

from gradflow.autograd import no_grad
from gradflow.ops.shape import cat
from gradflow.tensor import Tensor


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and concatenated (differentiable).

    >>> fc = nn.Linear(3, 2)
    >>> nn.utils.parameters_to_vector(fc.parameters()).shape
    gradflow.Size([8])
    """
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of vec into the parameters' data.

    >>> fc = nn.Linear(2, 1)
    >>> nn.utils.vector_to_parameters(gf.arange(3.0), fc.parameters())
    >>> fc.weight.tolist(), fc.bias.tolist()
    ([[0.0, 1.0]], [2.0])
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected Tensor, but got: {type(vec).__name__}")
    offset = 0
    with no_grad():
        for p in parameters:
            n = p.numel()
            p.copy_(vec[offset:offset + n].reshape(p.shape))
            offset += n
    if offset != vec.numel():
        raise ValueError(f"vector_to_parameters: vector has {vec.numel()} elements but the "
                         f"parameters hold {offset}")
