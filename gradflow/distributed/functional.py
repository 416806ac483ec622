"""Collectives that autograd differentiates through (PyTorch's torch.distributed.nn).

all_reduce(x) returns the sum over ranks of x. Each rank's loss depends on every rank's x
through that sum, so the gradient reaching x on rank k is the sum over ranks of the
gradients reaching the sum: backward is an all-reduce (sum) too.
"""

from __future__ import annotations

from gradflow.autograd.function import Function
from gradflow.distributed import collectives
from gradflow.tensor import Tensor


class AllReduceSum(Function):
    """The autograd node of all_reduce: forward and backward each sum over ranks."""
    @staticmethod
    def forward(ctx, x: Tensor, group) -> Tensor:
        ctx.group = group
        out = x.detach().clone()
        collectives.all_reduce(out, collectives.ReduceOp.SUM, group)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        total = grad.clone()
        collectives.all_reduce(total, collectives.ReduceOp.SUM, ctx.group)
        return total, None


def all_reduce(tensor: Tensor, group=None) -> Tensor:
    """The sum over all ranks of `tensor`, as a new tensor in the graph (`tensor` itself is
    left alone, unlike gradflow.distributed.all_reduce).

    >>> import gradflow.distributed as dist
    >>> from gradflow.distributed.functional import all_reduce
    >>> x = gf.ones(2, requires_grad=True)
    >>> total = all_reduce(x)  # doctest: +SKIP
    >>> total, x  # doctest: +SKIP
    (tensor([2., 2.], grad_fn=<AllReduceSumBackward>), tensor([1., 1.], requires_grad=True))
    """
    collectives._check_tensor(tensor, "distributed.functional.all_reduce")
    return AllReduceSum.apply(tensor, group)
