"""Matrix products. The backend's matmul runs the native GEMM; backward is two more matmuls."""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, NamedTuple, Optional, Tuple, Union, cast

import numpy as np

from gradflow.autograd.function import Context, Function, Gradients, once_differentiable
from gradflow.autograd.grad_mode import _GradMode
from gradflow.ops import elementwise, index, reduce, shape
from gradflow.ops.common import (
    as_bool,
    as_float,
    as_int,
    broadcast_shapes,
    check_numel,
    check_same_device,
    check_tensor,
    normalize_dims,
    operands,
    result_type,
)
from gradflow.tensor import Tensor
from gradflow.types import Dims, DTypeLike, Number, bool_


class MatMul(Function[Tensor]):
    """C = A @ B for ndim >= 2 with broadcast batch dims; dA = dC @ B^T, dB = A^T @ dC."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, b: Tensor) -> Any:
        ctx.save_for_backward(a, b)
        return a._backend.matmul(a._data, b._data)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        if (not _GradMode.enabled and a.ndim == 2 and b.ndim == 2
                and g._data.dtype == a._data.dtype):
            # nothing to record (no create_graph): the two GEMMs on the arrays
            be, t = g._backend, (1, 0)
            return (be.matmul(g._data, be.permute(b._data, t)) if need_a else None,
                    be.matmul(be.permute(a._data, t), g._data) if need_b else None)
        ga = reduce.sum_to_shape(g @ _mT(b), a.shape) if need_a else None
        gb = reduce.sum_to_shape(_mT(a) @ g, b.shape) if need_b else None
        return ga, gb


def _mT(a: Tensor) -> Tensor:
    """a with its last two dims swapped (a.mT): the transposed matrices, a view."""
    return shape.transpose(a, -2, -1)


def _check_operands(op: str, a: Tensor, b: Tensor, integers: bool = True) -> None:
    """Two tensors of a floating-point result (the GEMM is float32/float64) or, where
    `integers`, two integer tensors (an exact integer product); bool is refused."""
    if (isinstance(a, Tensor) and isinstance(b, Tensor) and a._data.dtype == b._data.dtype
            and a._data.dtype.kind == "f"):
        return  # the common case: two float tensors of one dtype
    check_tensor(a, op, "input")
    check_tensor(b, op, "other")
    rt = result_type(a, b)
    if rt.is_floating_point or (integers and bool_ not in (a.dtype, b.dtype)
                                and rt is not bool_):
        return
    kinds = "floating-point or integer" if integers else "floating-point"
    raise TypeError(f"{op}: expected {kinds} tensors, got {a.dtype} and {b.dtype}")


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
    shape_a, shape_b = a._data.shape, b._data.shape
    nd_a, nd_b = len(shape_a), len(shape_b)
    if nd_a == 0 or nd_b == 0:
        raise ValueError(
            f"{op}: both arguments need to be at least 1D, but they are {nd_a}D and {nd_b}D"
        )
    if a._data.dtype != b._data.dtype or a._backend is not b._backend:
        promoted = operands(op, a, b, broadcast=False)  # one dtype and device, or the error
        a, b = cast(Tensor, promoted[0]), cast(Tensor, promoted[1])
    k_a = shape_a[-1]
    k_b = shape_b[-2] if nd_b > 1 else shape_b[0]
    if k_a != k_b:
        raise ValueError(
            f"{op}: shapes {tuple(shape_a)} and {tuple(shape_b)} cannot be multiplied "
            f"({k_a} != {k_b})"
        )
    if nd_a == 2 and nd_b == 2:  # mm and linear layers: nothing to promote or remove
        if _GradMode.enabled and (a.requires_grad or b.requires_grad):
            return MatMul.apply(a, b)
        return Tensor._make(a._backend.matmul(a._data, b._data), a._backend)  # nothing to record
    a2 = shape.unsqueeze(a, 0) if nd_a == 1 else a
    b2 = shape.unsqueeze(b, 1) if nd_b == 1 else b
    batch_a, batch_b = a2.shape[:-2], b2.shape[:-2]
    if batch_a != batch_b:  # raises naming the op and both shapes when they do not broadcast
        broadcast_shapes(f"{op} of {tuple(shape_a)} and {tuple(shape_b)}", batch_a, batch_b)
    out = MatMul.apply(a2, b2)
    if nd_b == 1:
        out = shape.squeeze(out, -1)
    if nd_a == 1:
        out = shape.squeeze(out, -2 if nd_b > 1 else -1)
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
        if not _GradMode.enabled and g._data.dtype == x._data.dtype:
            # nothing to record (no create_graph): the GEMMs and the sum on the arrays
            be, gd = g._backend, g._data
            return (be.matmul(gd, weight._data) if need_x else None,
                    be.matmul(be.permute(gd, (1, 0)), x._data) if need_w else None,
                    be.reduce("sum", gd, (0,), False) if need_b else None)
        return (g @ weight if need_x else None, _mT(g) @ x if need_w else None,
                reduce.sum(g, 0) if need_b else None)


def linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None) -> Tensor:
    """torch.nn.functional.linear: y = x W^T + b over the last dim of x (*, in).

    >>> import gradflow as gf
    >>> x, w = gf.ones(4, 3), gf.ones(2, 3)
    >>> gf.nn.functional.linear(x, w, gf.tensor([0.5, -0.5])).shape
    gradflow.Size([4, 2])
    """
    _check_operands("linear", x, weight, integers=False)
    check_tensor(bias, "linear", "bias", optional=True)
    xs, ws = x._data.shape, weight._data.shape
    if len(ws) != 2 or not xs or xs[-1] != ws[1]:
        raise ValueError(
            f"linear: input of shape {tuple(xs)} does not match weight of shape {tuple(ws)} "
            f"(expected a 2-D weight (out_features, in_features) and input (*, in_features))"
        )
    if bias is not None and bias._data.shape != (ws[0],):
        raise ValueError(
            f"linear: bias of shape {tuple(bias.shape)} does not match weight of shape "
            f"{tuple(ws)} (expected ({ws[0]},))"
        )
    if x._data.dtype != weight._data.dtype or x._backend is not weight._backend:
        promoted = operands("linear", x, weight, broadcast=False)  # two tensors in, two out
        x, weight = cast(Tensor, promoted[0]), cast(Tensor, promoted[1])
    if bias is not None and (bias._data.dtype != x._data.dtype or bias._backend is not x._backend):
        check_same_device("linear", x, bias)
        bias = shape.to_dtype(bias, x.dtype)
    if len(xs) == 2:  # the output is not a view, so an in-place activation may follow
        return Linear.apply(x, weight, bias)
    y = Linear.apply(shape.reshape(x, (math.prod(xs[:-1]), xs[-1])), weight, bias)
    return shape.reshape(y, tuple(xs[:-1]) + (ws[0],))


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
    k = min(max(k, -rows), cols)  # past the matrix the mask is the same; NumPy's C long
    # would overflow at k - 1 = -2**63 - 1
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
        side = x.shape[0] + abs(k)
        check_numel((side, side), "diag", x.element_size())  # (a huge offset: before NumPy)
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


# ---------------------------------------------------------------- distances
def cdist(x1: Tensor, x2: Tensor, p: float = 2.0,
          compute_mode: str = "use_mm_for_euclid_dist_if_necessary") -> Tensor:
    """The p-norm distance between each row of x1 (*, P, M) and each row of x2 (*, R, M).

    As ``torch.cdist``, with batch dims that broadcast; p >= 0 (0 counts the differing
    coordinates, inf takes the largest difference). The distances are norms of the
    differences (*, P, R, M), formed in memory, for every p: no matrix-product shortcut,
    so no cancellation; `compute_mode` is accepted and has no effect. The gradient at a
    zero distance is 0, as PyTorch's.

    >>> import gradflow as gf
    >>> gf.cdist(gf.tensor([[0., 0.], [1., 1.]]), gf.tensor([[3., 4.]]))
    tensor([[5.0000],
            [3.6056]])
    """
    check_tensor(x1, "cdist", "x1")
    check_tensor(x2, "cdist", "x2")
    p = as_float(p, "cdist", "p")
    if x1.ndim < 2 or x2.ndim < 2 or x1.shape[-1] != x2.shape[-1]:
        raise ValueError(f"cdist: expected x1 (*, P, M) and x2 (*, R, M) with the same M, got "
                         f"shapes {tuple(x1.shape)} and {tuple(x2.shape)}")
    if not (x1.is_floating_point() and x2.is_floating_point()):
        raise TypeError(f"cdist: only supports floating-point dtypes, got {x1.dtype} and "
                        f"{x2.dtype}")
    if not p >= 0:
        raise ValueError(f"cdist: p must be >= 0, got {p}")
    broadcast_shapes(f"cdist of {tuple(x1.shape)} and {tuple(x2.shape)}", x1.shape[:-2],
                     x2.shape[:-2])
    diff = elementwise.sub(shape.unsqueeze(x1, -2), shape.unsqueeze(x2, -3))
    if diff.shape[-1] == 0:  # no coordinates: every distance is 0
        return reduce.sum(diff, -1)
    return reduce.norm(diff, p, -1)


# ---------------------------------------------------------------- torch.linalg through NumPy
# inv, solve, det, slogdet and the singular values have no kernel of their own: the forward
# runs NumPy's LAPACK on a host copy (a CUDA tensor goes to the host and back), and every
# backward is written in Tensor ops, so the gradients are differentiable again.
class LinAlgError(RuntimeError):
    """A matrix the op cannot handle (a singular matrix for inv or solve), as PyTorch's
    torch.linalg.LinAlgError."""


def _host(x: Tensor) -> np.ndarray[Any, Any]:
    return x._backend.to_numpy(x._data)


def _lapack(op: str, fn: Callable[..., Any], x: Tensor, *arrays: Any) -> Any:
    """fn on host copies of x and arrays; NumPy's LinAlgError becomes ours, naming the op."""
    try:
        return fn(_host(x), *arrays)
    except np.linalg.LinAlgError as exc:
        raise LinAlgError(f"{op}: {exc} (input of shape {tuple(x.shape)})") from None


def _device(x: Tensor, a: Any) -> Tensor:
    """A host result as a tensor on x's device, with x's dtype."""
    a = np.array(a, dtype=x._data.dtype, order="C")  # (ascontiguousarray makes 0-d 1-d)
    return Tensor._make(x._backend.from_numpy(a), x._backend)


def _check_square(op: str, a: Tensor, arg: str = "A") -> None:
    check_tensor(a, op, arg)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{op}: {arg} must be batches of square matrices, got shape "
                         f"{tuple(a.shape)}")
    if not a.is_floating_point():
        raise TypeError(f"{op}: expected a floating-point {arg}, got {a.dtype}")


class Inv(Function[Tensor]):
    """A^-1; d(A^-1) = -A^-1 dA A^-1, so the gradient is -A^-T g A^-T."""

    @staticmethod
    def forward(ctx: Context, a: Tensor) -> Tensor:
        out = _device(a, _lapack("linalg.inv", np.linalg.inv, a))
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        inv_t = _mT(ctx.saved_tensors[0])
        return -(inv_t @ g @ inv_t)


def inv(A: Tensor) -> Tensor:
    """The inverse of each square matrix in A (*, n, n).

    As ``torch.linalg.inv``; computed by NumPy (a CUDA tensor through a host copy). A
    singular matrix raises ``gradflow.linalg.LinAlgError``.

    >>> import gradflow as gf
    >>> gf.linalg.inv(gf.tensor([[2., 0.], [0., 4.]]))
    tensor([[0.5000, 0.0000],
            [0.0000, 0.2500]])
    """
    _check_square("linalg.inv", A)
    return Inv.apply(A)


def inverse(A: Tensor) -> Tensor:
    """torch.inverse: the same as gradflow.linalg.inv.

    >>> import gradflow as gf
    >>> gf.tensor([[4.]]).inverse()
    tensor([[0.2500]])
    """
    return inv(A)


class Solve(Function[Tensor]):
    """X = A^-1 B for B (*, n, k); gB = A^-T g and gA = -gB X^T, each summed back over the
    batch dims its input was broadcast along."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, b: Tensor) -> Tensor:
        out = _device(a, _lapack("linalg.solve", np.linalg.solve, a, _host(b)))
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        a, b, x = ctx.saved_tensors
        gb = Solve.apply(_mT(a), g)
        ga = reduce.sum_to_shape(-(gb @ _mT(x)), a.shape) if ctx.needs_input_grad[0] else None
        return ga, reduce.sum_to_shape(gb, b.shape) if ctx.needs_input_grad[1] else None


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:
    """The solution X of A X = B (or X A = B with left=False), for A (*, n, n).

    As ``torch.linalg.solve``: B is (*, n, k), or (n,) / (*, n) for one vector per matrix;
    batch dims broadcast. Computed by NumPy (CUDA tensors through host copies); a singular A
    raises ``gradflow.linalg.LinAlgError``.

    >>> import gradflow as gf
    >>> gf.linalg.solve(gf.tensor([[2., 0.], [0., 4.]]), gf.tensor([2., 2.]))
    tensor([1.0000, 0.5000])
    """
    _check_square("linalg.solve", A)
    check_tensor(B, "linalg.solve", "B")
    a, b, _ = operands("linalg.solve", A, B, broadcast=False)
    A, B = cast(Tensor, a), cast(Tensor, b)  # checked above to be tensors
    if not as_bool(left, "linalg.solve", "left"):
        if B.ndim < 2:
            raise ValueError(f"linalg.solve: with left=False, B must be a matrix (*, k, n), got "
                             f"shape {tuple(B.shape)}")
        return _mT(solve(_mT(A), _mT(B)))
    vector = B.ndim == 1 or (B.ndim == A.ndim - 1 and B.shape == A.shape[:-1])
    B2 = shape.unsqueeze(B, -1) if vector else B
    if B2.ndim < 2 or B2.shape[-2] != A.shape[-1]:
        raise ValueError(f"linalg.solve: A of shape {tuple(A.shape)} and B of shape "
                         f"{tuple(B.shape)} do not match")
    broadcast_shapes(f"linalg.solve of {tuple(A.shape)} and {tuple(B.shape)}", A.shape[:-2],
                     B2.shape[:-2])
    out = Solve.apply(A, B2)
    return shape.squeeze(out, -1) if vector else out


def _per_matrix(g: Tensor) -> Tensor:
    """A per-matrix value (*,) broadcast over its matrix's two dims: (*, 1, 1)."""
    return shape.unsqueeze(shape.unsqueeze(g, -1), -1)


class Det(Function[Tensor]):
    """det(A); d det = det(A) tr(A^-1 dA), so the gradient is g det(A) A^-T."""

    @staticmethod
    def forward(ctx: Context, a: Tensor) -> Tensor:
        out = _device(a, _lapack("linalg.det", np.linalg.det, a))
        ctx.save_for_backward(a, out)
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        a, d = ctx.saved_tensors
        return _per_matrix(g * d) * _mT(inv(a))


def det(A: Tensor) -> Tensor:
    """The determinant of each square matrix in A (*, n, n).

    As ``torch.linalg.det``; computed by NumPy (a CUDA tensor through a host copy). The
    gradient is det(A) A^-T, so at a singular matrix it raises
    ``gradflow.linalg.LinAlgError`` (PyTorch's goes through an SVD there).

    >>> import gradflow as gf
    >>> gf.linalg.det(gf.tensor([[1., 2.], [3., 4.]]))
    tensor(-2.)
    """
    _check_square("linalg.det", A)
    return Det.apply(A)


class SlogDet(Function[Tuple[Tensor, Tensor]]):
    """(sign, log|det A|); the gradient of log|det A| is A^-T, the sign has none."""

    @staticmethod
    def forward(ctx: Context, a: Tensor) -> Tuple[Tensor, Tensor]:
        sign, logabs = _lapack("linalg.slogdet", np.linalg.slogdet, a)
        sign, logabs = _device(a, sign), _device(a, logabs)
        ctx.mark_non_differentiable(sign)
        ctx.save_for_backward(a)
        return sign, logabs

    @staticmethod
    def backward(ctx: Context, g_sign: Tensor, g_logabs: Tensor) -> Tensor:
        (a,) = ctx.saved_tensors
        return _per_matrix(g_logabs) * _mT(inv(a))


class SlogdetResult(NamedTuple):
    sign: Tensor
    logabsdet: Tensor


def slogdet(A: Tensor) -> SlogdetResult:
    """The sign and the log of the absolute value of each determinant of A (*, n, n).

    As ``torch.linalg.slogdet`` (a named tuple (sign, logabsdet)); computed by NumPy (a
    CUDA tensor through a host copy). A singular matrix gives sign 0 and logabsdet -inf.

    >>> import gradflow as gf
    >>> gf.linalg.slogdet(gf.tensor([[1., 2.], [3., 4.]])).sign
    tensor(-1.)
    """
    _check_square("linalg.slogdet", A)
    return SlogdetResult(*SlogDet.apply(A))


class SvdVals(Function[Tensor]):
    """The singular values s of A = U diag(s) V^T, descending; ds = U^T dA V on the
    diagonal, so the gradient is U diag(g) V^T. U and V are constants of the backward, which
    therefore does not differentiate again."""

    @staticmethod
    def forward(ctx: Context, a: Tensor) -> Tensor:
        u, s, vh = _lapack("linalg.svdvals", lambda h: np.linalg.svd(h, full_matrices=False), a)
        ctx.save_for_backward(_device(a, u), _device(a, vh))
        return _device(a, s)

    @staticmethod
    @once_differentiable
    def backward(ctx: Context, g: Tensor) -> Tensor:
        u, vh = ctx.saved_tensors
        grad: Tensor = (u * shape.unsqueeze(g, -2)) @ vh
        return grad


def svdvals(A: Tensor) -> Tensor:
    """The singular values of each matrix in A (*, m, n), in descending order.

    As ``torch.linalg.svdvals``; computed by NumPy (a CUDA tensor through a host copy). Its
    gradient is first-order only (create_graph through it raises).

    >>> import gradflow as gf
    >>> gf.linalg.svdvals(gf.tensor([[3., 0.], [0., -4.]]))
    tensor([4., 3.])
    """
    check_tensor(A, "linalg.svdvals", "A")
    if A.ndim < 2 or not A.is_floating_point():
        raise ValueError(f"linalg.svdvals: expected a floating-point A of at least 2 dims, got "
                         f"shape {tuple(A.shape)} and {A.dtype}")
    return SvdVals.apply(A)


# ---------------------------------------------------------------- norms
def _float_input(op: str, x: Tensor, dtype: Optional[DTypeLike]) -> Tensor:
    check_tensor(x, op)
    if dtype is not None:
        x = shape.to_dtype(x, dtype)
    if not x.is_floating_point():
        raise TypeError(f"{op}: expected a floating-point input, got {x.dtype}")
    return x


def _order(op: str, ord: Union[float, str, None], allowed_str: Tuple[str, ...] = ()
           ) -> Union[float, str]:
    if isinstance(ord, str) and ord in allowed_str:
        return ord
    if isinstance(ord, bool) or not isinstance(ord, numbers.Real):
        raise ValueError(f"{op}: ord must be a number" + (f" or one of {allowed_str}" if
                         allowed_str else "") + f", got {ord!r}")
    return float(ord)


def _check_extremum(op: str, x: Tensor, dims: Tuple[int, ...], ord: Union[float, str, None]
                    ) -> None:
    """A norm that takes a max or a min needs elements to take it over."""
    if any(x.shape[d] == 0 for d in dims):
        raise ValueError(f"{op}: cannot compute the {ord} norm over an empty dim (input of "
                         f"shape {tuple(x.shape)}, dims {dims}): it has no identity")


def _vector_norm(op: str, x: Tensor, ord: Union[float, str, None], dim: Dims, keepdim: bool,
                 dtype: Optional[DTypeLike]) -> Tensor:
    x = _float_input(op, x, dtype)
    p = float(_order(op, ord))  # (a number: no string is allowed)
    dims = tuple(range(x.ndim)) if dim is None else normalize_dims(dim, x.ndim, op)
    if math.isinf(p):
        _check_extremum(op, x, dims, ord)
    return reduce.norm(x, p, dims, as_bool(keepdim, op, "keepdim"))


def vector_norm(x: Tensor, ord: float = 2, dim: Dims = None, keepdim: bool = False, *,
                dtype: Optional[DTypeLike] = None) -> Tensor:
    """The vector ord-norm of x over dim (all elements when None), as ``torch.linalg.vector_norm``.

    ord may be any real: inf (largest |x|), -inf (smallest), 0 (count of non-zeros) or
    p ((sum |x|^p)^(1/p)). The gradient at a zero norm is 0.

    >>> import gradflow as gf
    >>> gf.linalg.vector_norm(gf.tensor([3., -4.]))
    tensor(5.)
    """
    return _vector_norm("linalg.vector_norm", x, ord, dim, keepdim, dtype)


def _matrix_dims(op: str, A: Tensor, dim: Dims) -> Tuple[int, int]:
    dims = normalize_dims(dim, A.ndim, op) if A.ndim >= 2 else ()
    if len(dims) != 2:
        raise ValueError(f"{op}: expected 2 distinct dims of a tensor of at least 2 dims, got "
                         f"dim={dim} for shape {tuple(A.shape)}")
    return dims[0], dims[1]


def _singular_value_norm(A: Tensor, ord: Union[float, str], rows: int, cols: int,
                         keepdim: bool) -> Tensor:
    """The nuclear norm (sum of singular values) or the 2-norm (largest; -2: smallest)."""
    rest = [i for i in range(A.ndim) if i not in (rows, cols)]
    s = svdvals(shape.permute(A, rest + [rows, cols]))
    if isinstance(ord, str):  # 'nuc'
        out = reduce.sum(s, -1)
    else:
        out = (reduce.amax if ord > 0 else reduce.amin)(s, -1)
    if keepdim:
        for d in sorted((rows, cols)):
            out = shape.unsqueeze(out, d)
    return out


def _matrix_norm(op: str, A: Tensor, ord: Union[float, str, None], dim: Dims, keepdim: bool,
                 dtype: Optional[DTypeLike]) -> Tensor:
    A = _float_input(op, A, dtype)
    p = _order(op, ord, ("fro", "nuc"))
    rows, cols = _matrix_dims(op, A, dim)
    keepdim = as_bool(keepdim, op, "keepdim")
    if p == "fro":
        return reduce.norm(A, 2, (rows, cols), keepdim)
    if isinstance(p, str):  # 'nuc'
        return _singular_value_norm(A, p, rows, cols, keepdim)
    if abs(p) not in (1, 2, math.inf):
        raise ValueError(f"{op}: ord must be 'fro', 'nuc', inf, -inf, 1, -1, 2 or -2, got {ord}")
    _check_extremum(op, A, (rows, cols), ord)
    if abs(p) == 2:
        return _singular_value_norm(A, p, rows, cols, keepdim)
    summed, extreme = (cols, rows) if math.isinf(p) else (rows, cols)
    sums = reduce.sum(elementwise.abs(A), summed, keepdim=True)
    out = (reduce.amax if p > 0 else reduce.amin)(sums, extreme, keepdim=True)
    return out if keepdim else shape.squeeze(shape.squeeze(out, max(rows, cols)),
                                             min(rows, cols))


def matrix_norm(A: Tensor, ord: Union[float, str] = "fro", dim: Dims = (-2, -1),
                keepdim: bool = False, *, dtype: Optional[DTypeLike] = None) -> Tensor:
    """The matrix ord-norm of the matrices over `dim` of A, as ``torch.linalg.matrix_norm``.

    ord: 'fro' (Frobenius), 'nuc' (sum of singular values), inf / -inf (largest / smallest
    row sum of |A|), 1 / -1 (largest / smallest column sum), 2 / -2 (largest / smallest
    singular value; 'nuc' and +-2 go through NumPy's SVD, first-order gradient only).

    >>> import gradflow as gf
    >>> gf.linalg.matrix_norm(gf.tensor([[1., -2.], [3., 4.]]), ord=1)
    tensor(6.)
    """
    return _matrix_norm("linalg.matrix_norm", A, ord, dim, keepdim, dtype)


def linalg_norm(A: Tensor, ord: Union[float, str, None] = None, dim: Dims = None,
                keepdim: bool = False, *, dtype: Optional[DTypeLike] = None) -> Tensor:
    """A vector or matrix norm, as ``torch.linalg.norm``: a matrix norm when dim has two
    dims (or dim is None, ord is given and A is 2-D), else a vector norm (of all elements
    when dim and ord are None).

    >>> import gradflow as gf
    >>> gf.linalg.norm(gf.tensor([[1., 2.], [2., 4.]]))
    tensor(5.)
    """
    op = "linalg.norm"
    check_tensor(A, op)
    if dim is None and ord is not None:
        if A.ndim not in (1, 2):
            raise ValueError(f"{op}: with dim=None and an ord, the input must be 1-D or 2-D, "
                             f"got shape {tuple(A.shape)}")
        dim = tuple(range(A.ndim))
    if isinstance(dim, (tuple, list)) and len(dim) == 2:
        return _matrix_norm(op, A, "fro" if ord is None else ord, dim, keepdim, dtype)
    if isinstance(ord, str):
        raise ValueError(f"{op}: ord={ord!r} is a matrix norm: it needs two dims, got dim={dim}")
    return _vector_norm(op, A, 2 if ord is None else ord, dim, keepdim, dtype)
