"""Matrix products. The backend's matmul runs the native GEMM; backward is two more matmuls."""

from __future__ import annotations

from typing import Any, Optional, Tuple, cast

import numpy as np

from gradflow.autograd.function import Context, Function, Gradients
from gradflow.ops import elementwise, index, reduce, shape
from gradflow.ops.common import (
    as_float,
    as_int,
    broadcast_shapes,
    check_same_device,
    check_tensor,
    operands,
    result_type,
)
from gradflow.tensor import Tensor
from gradflow.types import Number


class MatMul(Function[Tensor]):
    """C = A @ B for ndim >= 2 with broadcast batch dims; dA = dC @ B^T, dB = A^T @ dC."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, b: Tensor) -> Any:
        ctx.save_for_backward(a, b)
        return a._backend.matmul(a._data, b._data)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        a, b = ctx.saved_tensors
        ga = reduce.sum_to_shape(g @ _mT(b), a.shape) if ctx.needs_input_grad[0] else None
        gb = reduce.sum_to_shape(_mT(a) @ g, b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


def _mT(a: Tensor) -> Tensor:
    """a with its last two dims swapped (a.mT): the transposed matrices, a view."""
    return shape.transpose(a, -2, -1)


def _check_operands(op: str, a: Tensor, b: Tensor) -> None:
    """Two tensors, at least one floating-point (the GEMM is float32/float64)."""
    check_tensor(a, op, "input")
    check_tensor(b, op, "other")
    if not result_type(a, b).is_floating_point:
        raise TypeError(f"{op}: expected floating-point tensors, got {a.dtype} and {b.dtype}")


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """torch.matmul: 1-D operands are promoted to a row (left) or a column (right) and the
    added dim removed from the result; batch dims broadcast. Float tensors only.

    >>> import gradflow as gf
    >>> a = gf.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> gf.matmul(a, gf.tensor([1.0, 1.0]))
    tensor([3., 7.])
    >>> (a @ a).shape
    gradflow.Size([2, 2])
    """
    _check_operands("matmul", a, b)
    return _matmul("matmul", a, b)


def _matmul(op: str, a: Tensor, b: Tensor) -> Tensor:
    """matmul of checked operands; errors name `op` (mm, bmm and dot call it too)."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"{op}: both arguments need to be at least 1D, but they are {a.ndim}D and {b.ndim}D"
        )
    promoted = operands(op, a, b, broadcast=False)  # two tensors in, two tensors out
    a, b = cast(Tensor, promoted[0]), cast(Tensor, promoted[1])
    k_a = a.shape[-1]
    k_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if k_a != k_b:
        raise ValueError(
            f"{op}: shapes {tuple(a.shape)} and {tuple(b.shape)} cannot be multiplied "
            f"({k_a} != {k_b})"
        )
    a2 = shape.unsqueeze(a, 0) if a.ndim == 1 else a
    b2 = shape.unsqueeze(b, 1) if b.ndim == 1 else b
    batch_a, batch_b = a2.shape[:-2], b2.shape[:-2]
    broadcast_shapes(f"{op} of {tuple(a.shape)} and {tuple(b.shape)}", batch_a, batch_b)
    out = MatMul.apply(a2, b2)
    if b.ndim == 1:
        out = shape.squeeze(out, -1)
    if a.ndim == 1:
        out = shape.squeeze(out, -2 if b.ndim > 1 else -1)
    return out


class Linear(Function[Tensor]):
    """y = x W^T + b for x (M, in), W (out, in), b (out,) or None, as one GEMM (W^T is a
    transposed view, not a copy). dx = dy W, dW = dy^T x and db = column sums of dy: each
    gradient is produced in its parameter's own layout, so nothing is transposed afterwards."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Any:
        ctx.save_for_backward(x, weight)
        be = x._backend
        y = be.matmul(x._data, be.permute(weight._data, (1, 0)))
        if bias is not None:
            be.binary_("add", y, bias._data)
        return y

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        return (g @ weight if need_x else None, _mT(g) @ x if need_w else None,
                reduce.sum(g, 0) if need_b else None)


def linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """torch.nn.functional.linear: y = x W^T + b over the last dim of x (*, in).

    >>> import gradflow as gf
    >>> x, w = gf.ones(4, 3), gf.ones(2, 3)
    >>> gf.nn.functional.linear(x, w, gf.tensor([0.5, -0.5])).shape
    gradflow.Size([4, 2])
    """
    _check_operands("linear", x, weight)
    check_tensor(bias, "linear", "bias", optional=True)
    if weight.ndim != 2 or x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: input of shape {tuple(x.shape)} does not match weight of shape "
            f"{tuple(weight.shape)} (expected a 2-D weight (out_features, in_features) and "
            f"input (*, in_features))"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(
            f"linear: bias of shape {tuple(bias.shape)} does not match weight of shape "
            f"{tuple(weight.shape)} (expected ({weight.shape[0]},))"
        )
    promoted = operands("linear", x, weight, broadcast=False)  # two tensors in, two out
    x, weight, dt = cast(Tensor, promoted[0]), cast(Tensor, promoted[1]), promoted[2]
    if bias is not None:
        check_same_device("linear", x, bias)
        bias = shape.to_dtype(bias, dt)
    rows = 1
    for n in x.shape[:-1]:
        rows *= n
    y = Linear.apply(shape.reshape(x, (rows, x.shape[-1])), weight, bias)
    if x.ndim == 2:  # not a view, so that an in-place activation (ReLU(inplace=True)) may follow
        return y
    return shape.reshape(y, x.shape[:-1] + (weight.shape[0],))


def mm(a: Tensor, b: Tensor) -> Tensor:
    """The product of two matrices (2-D float tensors).

    >>> import gradflow as gf
    >>> gf.mm(gf.eye(2), gf.tensor([[1.0, 2.0], [3.0, 4.0]]))
    tensor([[1., 2.],
            [3., 4.]])
    """
    _check_operands("mm", a, b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(
            f"mm: expected 2-D tensors, got shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )
    return _matmul("mm", a, b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    """The products of two batches of matrices (3-D float tensors, the same batch size).

    >>> import gradflow as gf
    >>> gf.bmm(gf.ones(5, 2, 3), gf.ones(5, 3, 4)).shape
    gradflow.Size([5, 2, 4])
    """
    _check_operands("bmm", a, b)
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ValueError(
            f"bmm: expected 3-D tensors with equal batch size, got shapes {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
    return _matmul("bmm", a, b)


def dot(a: Tensor, b: Tensor) -> Tensor:
    """The inner product of two 1-D float tensors of the same size.

    >>> import gradflow as gf
    >>> gf.dot(gf.tensor([1.0, 2.0]), gf.tensor([3.0, 4.0]))
    tensor(11.)
    """
    _check_operands("dot", a, b)
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"dot: expected two 1-D tensors of equal size, got shapes {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
    return _matmul("dot", a, b)


# ---------------------------------------------------------------- triangles and diagonals
def _on_device(x: Tensor, a: np.ndarray[Any, Any]) -> Tensor:
    """A host array (a mask, an index) as a tensor on x's device."""
    return Tensor._make(x._backend.from_numpy(a), x._backend)


def _triangle(op: str, x: Tensor, diagonal: int, lower: bool) -> Tensor:
    """Keep x[..., i, j] where j - i <= diagonal (tril) or j - i >= diagonal (triu), else 0;
    the gradient is the incoming one under the same mask."""
    check_tensor(x, op)
    k = as_int(diagonal, op, "diagonal")
    if x.ndim < 2:
        raise ValueError(f"{op}: input tensor must have at least 2 dimensions, got shape "
                         f"{tuple(x.shape)}")
    rows, cols = x.shape[-2:]
    keep = np.tri(rows, cols, k, dtype=bool) if lower else ~np.tri(rows, cols, k - 1, dtype=bool)
    return elementwise.where(_on_device(x, keep), x, elementwise.full_like_scalar(x, 0))


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims: x[..., i, j] for j - i <= diagonal, else 0.

    >>> import gradflow as gf
    >>> gf.tril(gf.ones(2, 2))
    tensor([[1., 0.],
            [1., 1.]])
    """
    return _triangle("tril", x, diagonal, lower=True)


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims: x[..., i, j] for j - i >= diagonal, else 0.

    >>> import gradflow as gf
    >>> gf.triu(gf.ones(2, 3), diagonal=1)
    tensor([[0., 1., 1.],
            [0., 0., 1.]])
    """
    return _triangle("triu", x, diagonal, lower=False)


def _diagonal_positions(n_rows: int, n_cols: int, k: int
                        ) -> Tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """(rows, cols) of the k-th diagonal of an n_rows x n_cols matrix, as int64 arrays."""
    start_row, start_col = max(-k, 0), max(k, 0)
    n = max(min(n_rows - start_row, n_cols - start_col), 0)
    steps = np.arange(n, dtype=np.int64)
    return steps + start_row, steps + start_col


class DiagEmbed(Function[Tensor]):
    """A (n + |k|) square matrix holding the vector v on its k-th diagonal, zeros elsewhere;
    the gradient is the k-th diagonal of the incoming one."""

    @staticmethod
    def forward(ctx: Context, v: Tensor, k: int) -> Any:
        ctx.k = k
        be = v._backend
        side = v.shape[0] + abs(k)
        out = be.full((side, side), 0, v._data.dtype)
        rows, cols = _diagonal_positions(side, side, k)
        be.setitem(out, (be.from_numpy(rows), be.from_numpy(cols)), v._data)
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        return diag(g, ctx.k), None


def diag(x: Tensor, diagonal: int = 0) -> Tensor:
    """torch.diag: a 1-D x becomes a square matrix with x on its `diagonal`-th diagonal
    (above the main one for diagonal > 0); a 2-D x gives its `diagonal`-th diagonal, 1-D.

    >>> import gradflow as gf
    >>> gf.diag(gf.tensor([1, 2]))
    tensor([[1, 0],
            [0, 2]])
    >>> gf.diag(gf.tensor([[1, 2], [3, 4]]))
    tensor([1, 4])
    """
    check_tensor(x, "diag")
    k = as_int(diagonal, "diag", "diagonal")
    if x.ndim == 1:
        return DiagEmbed.apply(x, k)
    if x.ndim != 2:
        raise ValueError(f"diag: input must be 1-D or 2-D, got shape {tuple(x.shape)}")
    rows, cols = _diagonal_positions(x.shape[0], x.shape[1], k)
    return index.getitem(x, (_on_device(x, rows), _on_device(x, cols)))


def outer(a: Tensor, b: Tensor) -> Tensor:
    """out[i, j] = a[i] * b[j] for 1-D a and b.

    >>> import gradflow as gf
    >>> gf.outer(gf.tensor([1, 2]), gf.tensor([1, 10]))
    tensor([[ 1, 10],
            [ 2, 20]])
    """
    check_tensor(a, "outer", "input")
    check_tensor(b, "outer", "vec2")
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"outer: expected two 1-D tensors, got shapes {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return elementwise.mul(shape.unsqueeze(a, 1), shape.unsqueeze(b, 0))


def _scaled_sum(op: str, x: Tensor, product: Tensor, beta: Number, alpha: Number) -> Tensor:
    """beta * x + alpha * product; with beta == 0, x is ignored (its nan and inf too), as
    in PyTorch. x must broadcast to the product's shape."""
    check_tensor(x, op, "input")
    beta, alpha = as_float(beta, op, "beta"), as_float(alpha, op, "alpha")
    if broadcast_shapes(op, x.shape, product.shape) != product.shape:
        raise ValueError(f"{op}: input of shape {tuple(x.shape)} cannot be broadcast to the "
                         f"product's shape {tuple(product.shape)}")
    check_same_device(op, x, product)
    scaled = product if alpha == 1 else elementwise.mul(product, alpha)
    if beta == 0:
        return scaled
    return elementwise.add(scaled, x if beta == 1 else elementwise.mul(x, beta))


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta: Number = 1, alpha: Number = 1
          ) -> Tensor:
    """beta * input + alpha * (mat1 @ mat2) for 2-D mat1 (n, m) and mat2 (m, p).

    >>> import gradflow as gf
    >>> gf.addmm(gf.ones(2, 2), gf.eye(2), gf.eye(2), beta=0.5)
    tensor([[1.5000, 0.5000],
            [0.5000, 1.5000]])
    """
    return _scaled_sum("addmm", input, mm(mat1, mat2), beta, alpha)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: Number = 1,
            alpha: Number = 1) -> Tensor:
    """beta * input + alpha * bmm(batch1, batch2) for 3-D batch1 (b, n, m), batch2 (b, m, p).

    >>> import gradflow as gf
    >>> gf.baddbmm(gf.zeros(3, 2, 4), gf.ones(3, 2, 5), gf.ones(3, 5, 4), alpha=2)[0, 0]
    tensor([10., 10., 10., 10.])
    """
    return _scaled_sum("baddbmm", input, bmm(batch1, batch2), beta, alpha)
