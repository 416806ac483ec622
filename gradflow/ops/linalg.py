"""Matrix products. The backend's matmul runs the native GEMM; backward is two more matmuls."""

from __future__ import annotations

from gradflow.autograd.function import Function
from gradflow.ops.common import broadcast_shapes, operands, sum_to_shape
from gradflow.tensor import Tensor


class MatMul(Function):
    """C = A @ B for ndim >= 2 with broadcast batch dims; dA = dC @ B^T, dB = A^T @ dC."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a._backend.matmul(a._data, b._data)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        ga = sum_to_shape(g @ b.mT, a.shape) if ctx.needs_input_grad[0] else None
        gb = sum_to_shape(a.mT @ g, b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """torch.matmul: 1-D operands are promoted to a row (left) or a column (right) and the
    added dim removed from the result; batch dims broadcast."""
    if not isinstance(a, Tensor) or not isinstance(b, Tensor):
        raise TypeError("matmul: both operands must be Tensors")
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: both arguments need to be at least 1D, but they are {a.ndim}D and {b.ndim}D"
        )
    a, b, _ = operands("matmul", a, b, broadcast=False)
    k_a = a.shape[-1]
    k_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if k_a != k_b:
        raise ValueError(
            f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
            f"({k_a} != {k_b})"
        )
    a2 = a.unsqueeze(0) if a.ndim == 1 else a
    b2 = b.unsqueeze(1) if b.ndim == 1 else b
    batch_a, batch_b = a2.shape[:-2], b2.shape[:-2]
    broadcast_shapes(f"matmul of {tuple(a.shape)} and {tuple(b.shape)}", batch_a, batch_b)
    out = MatMul.apply(a2, b2)
    if b.ndim == 1:
        out = out.squeeze(-1)
    if a.ndim == 1:
        out = out.squeeze(-2 if b.ndim > 1 else -1)
    return out


def mm(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(
            f"mm: expected 2-D tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    return matmul(a, b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ValueError(
            f"bmm: expected 3-D tensors with equal batch size, got shapes {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
    return matmul(a, b)


def dot(a: Tensor, b: Tensor) -> Tensor:
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"dot: expected two 1-D tensors of equal size, got shapes {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
    return matmul(a, b)
