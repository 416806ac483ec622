"""Pooling, unpooling and resizing (NCHW, float32 and float64), as torch.nn.functional.

Every pool is linear in its input once the max pools' argmax indices are fixed, so each
forward/backward pair is a pair of adjoint kernels and the backward of one is the forward of
the other: avg_pool2d <-> its adjoint, gather at indices <-> scatter-add at indices. That makes
all of them differentiable to any order. Indices are flat positions h*W + w within each
(n, c) plane, as in PyTorch.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from gradflow.autograd.function import Context, Function, Gradients
from gradflow.backends.base import fused
from gradflow.ops import reduce, shape
from gradflow.ops.common import allocating, as_bool, as_ints
from gradflow.ops.conv import IntOrPair, Pair, batched, pair
from gradflow.tensor import Tensor

Args = Tuple[Any, ...]  # a kernel's arguments after the arrays
WithIndices = Union[Tensor, Tuple[Tensor, Tensor]]  # a max pool's output (and its indices)


# ---------------------------------------------------------------- Functions
class MaxPool(Function[Tuple[Tensor, Tensor]]):
    """(values, indices) of a strided (adaptive=False) or adaptive max pool."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, args: Args, adaptive: bool) -> Any:
        be = x._backend
        y, idx = be.adaptive_max_pool2d(x._data, *args) if adaptive else be.max_pool2d(
            x._data, *args)
        idx_t = Tensor._make(idx, be)
        ctx.mark_non_differentiable(idx_t)
        ctx.idx = idx_t
        ctx.size = tuple(x.shape[2:])
        return y, idx_t

    @staticmethod
    def backward(ctx: Context, gy: Tensor, _gidx: Optional[Tensor]) -> Gradients:
        return Scatter.apply(gy, ctx.idx, ctx.size, True), None, None


class Scatter(Function[Tensor]):
    """y (N, C, *size), zeros but at the flat positions idx: y[n, c].flat[idx] += x[n, c]
    with accumulate (the max pools' backward), else y[n, c].flat[idx[n, c]] = x[n, c]
    (max_unpool2d). Its adjoint is Gather either way."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, idx: Tensor, size: Pair, accumulate: bool) -> Any:
        ctx.idx = idx
        kernel = x._backend.max_pool2d_backward if accumulate else x._backend.max_unpool2d
        return kernel(x._data, idx._data, size)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Gradients:
        return Gather.apply(gy, ctx.idx), None, None, None


class Gather(Function[Tensor]):
    """y[n, c] = x[n, c].flat[idx[n, c]]: Scatter's adjoint and max_unpool2d's backward."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, idx: Tensor) -> Any:
        ctx.idx = idx
        ctx.size = tuple(x.shape[2:])
        be = x._backend
        n, c, h, w = x.shape
        flat_idx = be.reshape(idx._data, (n, c, math.prod(idx.shape[2:])))
        out = be.take_along_axis(be.reshape(x._data, (n, c, h * w)), flat_idx, 2)
        return be.reshape(out, tuple(idx.shape))

    @staticmethod
    def backward(ctx: Context, gg: Tensor) -> Gradients:
        return Scatter.apply(gg, ctx.idx, ctx.size, True), None


class AvgPool(Function[Tensor]):
    """Strided average pool; args = (kernel, stride, padding, ceil_mode, count_include_pad,
    divisor_override or 0)."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, args: Args) -> Any:
        ctx.args = args
        ctx.size = tuple(x.shape[2:])
        return x._backend.avg_pool2d(x._data, *args)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Gradients:
        return AvgPoolAdjoint.apply(gy, ctx.size, ctx.args), None


class AvgPoolAdjoint(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, g: Tensor, size: Pair, args: Args) -> Any:
        ctx.args = args
        return g._backend.avg_pool2d_backward(g._data, size, *args)

    @staticmethod
    def backward(ctx: Context, gg: Tensor) -> Gradients:
        return AvgPool.apply(gg, ctx.args), None, None


class AdaptiveAvgPool(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, x: Tensor, out: Pair) -> Any:
        ctx.size = tuple(x.shape[2:])
        return x._backend.adaptive_avg_pool2d(x._data, out)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Gradients:
        return AdaptiveAvgPoolAdjoint.apply(gy, ctx.size), None


class AdaptiveAvgPoolAdjoint(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, g: Tensor, size: Pair) -> Any:
        ctx.out = tuple(g.shape[2:])
        return g._backend.adaptive_avg_pool2d_backward(g._data, size)

    @staticmethod
    def backward(ctx: Context, gg: Tensor) -> Gradients:
        return AdaptiveAvgPool.apply(gg, ctx.out), None


class Resize(Function[Tensor]):
    """interpolate by the backend's fused kernel (backends/base.py FUSED_KERNELS); args =
    (scales, bilinear, align_corners). Linear, with ResizeAdjoint as its adjoint."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, size: Pair, args: Args) -> Any:
        ctx.args = args
        ctx.size = tuple(x.shape[2:])
        be: Any = x._backend  # with the fused kernels, which are not in the contract
        return be.interpolate(x._data, size, *args)

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Gradients:
        return ResizeAdjoint.apply(gy, ctx.size, ctx.args), None, None


class ResizeAdjoint(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, g: Tensor, size: Pair, args: Args) -> Any:
        ctx.args = args
        ctx.out = tuple(g.shape[2:])
        be: Any = g._backend  # with the fused kernels, which are not in the contract
        return be.interpolate_backward(g._data, size, *args)

    @staticmethod
    def backward(ctx: Context, gg: Tensor) -> Gradients:
        return Resize.apply(gg, ctx.out, ctx.args), None, None


# ---------------------------------------------------------------- shape rules and checks
def pool_output_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's rule: floor or ceil of (size + 2p - d(k-1) - 1) / s, plus 1; with ceil_mode
    the last window must start inside the input or its left padding."""
    span = size + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def _window_args(op: str, x: Tensor, kernel_size: IntOrPair, stride: Optional[IntOrPair],
                 padding: IntOrPair, dilation: IntOrPair, ceil_mode: bool
                 ) -> Tuple[Pair, Pair, Pair, Pair]:
    as_bool(ceil_mode, op, "ceil_mode")
    kernel = pair(op, "kernel_size", kernel_size, 1)
    empty = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    stride = kernel if empty else pair(op, "stride", stride, 1)
    padding = pair(op, "padding", padding, 0)
    dilation = pair(op, "dilation", dilation, 1)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(
            f"{op}: pad should be at most half of effective kernel size, but got padding "
            f"{padding} for kernel_size {kernel}"
        )
    out = tuple(
        pool_output_size(x.shape[2 + a], kernel[a], stride[a], padding[a], dilation[a],
                         bool(ceil_mode))
        for a in (0, 1)
    )
    if out[0] < 1 or out[1] < 1:
        raise ValueError(
            f"{op}: given input size {tuple(x.shape[1:])}, the calculated output size "
            f"({x.shape[1]}, {out[0]}, {out[1]}) is too small (kernel_size {kernel}, stride "
            f"{stride}, padding {padding}, dilation {dilation})"
        )
    return kernel, stride, padding, dilation


def _adaptive_size(op: str, x: Tensor, output_size: Any) -> Pair:
    if isinstance(output_size, numbers.Integral) or output_size is None:
        output_size = (output_size, output_size)
    if not isinstance(output_size, (tuple, list)) or len(output_size) != 2:
        raise ValueError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
    out = tuple(x.shape[2 + a] if v is None else v for a, v in enumerate(output_size))
    return pair(op, "output_size", out, 1)


def _unbatch(y: Tensor, unbatched: bool) -> Tensor:
    return shape.squeeze(y, 0) if unbatched else y


# ---------------------------------------------------------------- public API
def max_pool2d(
    input: Tensor,
    kernel_size: IntOrPair,
    stride: Optional[IntOrPair] = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> WithIndices:
    """y[n, c, i, j] = max over the window rows i*sH - pH + a*dH, cols j*sW - pW + b*dW (a < kH,
    b < kW) inside the input; NaN propagates. Indices are flat h*W + w per plane.

    >>> import gradflow as gf
    >>> x = gf.arange(16.0).reshape(1, 1, 4, 4)
    >>> gf.nn.functional.max_pool2d(x, 2)
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
    """
    op = "max_pool2d"
    x, unbatched = batched(op, input)
    args = _window_args(op, x, kernel_size, stride, padding, dilation, ceil_mode)
    return_indices = as_bool(return_indices, op, "return_indices")
    y, idx = MaxPool.apply(x, args + (bool(ceil_mode),), False)
    y, idx = _unbatch(y, unbatched), _unbatch(idx, unbatched)
    return (y, idx) if return_indices else y


def adaptive_max_pool2d(input: Tensor, output_size: Any, return_indices: bool = False
                        ) -> WithIndices:
    """Max over windows [floor(i*H/OH), ceil((i+1)*H/OH)) x [floor(j*W/OW), ceil((j+1)*W/OW)).

    >>> import gradflow as gf
    >>> x = gf.arange(16.0).reshape(1, 1, 4, 4)
    >>> gf.nn.functional.adaptive_max_pool2d(x, 1)
    tensor([[[[15.]]]])
    """
    op = "adaptive_max_pool2d"
    x, unbatched = batched(op, input)
    out = _adaptive_size(op, x, output_size)
    return_indices = as_bool(return_indices, op, "return_indices")
    with allocating(op, tuple(x.shape[:2]) + out, x.element_size()):
        y, idx = MaxPool.apply(x, (out,), True)
    y, idx = _unbatch(y, unbatched), _unbatch(idx, unbatched)
    return (y, idx) if return_indices else y


def avg_pool2d(
    input: Tensor,
    kernel_size: IntOrPair,
    stride: Optional[IntOrPair] = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Optional[int] = None,
) -> Tensor:
    """Window sums / divisor: divisor_override, else the window size counting the zero padding
    (count_include_pad) or only the input pixels it covers.

    >>> import gradflow as gf
    >>> x = gf.arange(16.0).reshape(1, 1, 4, 4)
    >>> gf.nn.functional.avg_pool2d(x, 2)
    tensor([[[[ 2.5000,  4.5000],
              [10.5000, 12.5000]]]])
    """
    op = "avg_pool2d"
    x, unbatched = batched(op, input)
    kernel, stride, padding, _ = _window_args(op, x, kernel_size, stride, padding, 1, ceil_mode)
    as_bool(count_include_pad, op, "count_include_pad")
    if divisor_override is not None and (
        not isinstance(divisor_override, numbers.Integral) or divisor_override < 1
    ):
        raise ValueError(f"{op}: divisor_override must be a positive int, got {divisor_override!r}")
    args = (kernel, stride, padding, bool(ceil_mode), bool(count_include_pad),
            int(divisor_override or 0))
    return _unbatch(AvgPool.apply(x, args), unbatched)


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """Mean over windows [floor(i*H/OH), ceil((i+1)*H/OH)) x [floor(j*W/OW), ceil((j+1)*W/OW)).

    >>> import gradflow as gf
    >>> x = gf.arange(16.0).reshape(1, 1, 4, 4)
    >>> gf.nn.functional.adaptive_avg_pool2d(x, (1, 2))
    tensor([[[[6.5000, 8.5000]]]])
    """
    op = "adaptive_avg_pool2d"
    x, unbatched = batched(op, input)
    out = _adaptive_size(op, x, output_size)
    with allocating(op, tuple(x.shape[:2]) + out, x.element_size()):
        return _unbatch(AdaptiveAvgPool.apply(x, out), unbatched)


def max_unpool2d(
    input: Tensor,
    indices: Tensor,
    kernel_size: IntOrPair,
    stride: Optional[IntOrPair] = None,
    padding: IntOrPair = 0,
    output_size: Optional[Sequence[int]] = None,
) -> Tensor:
    """Inverse of max_pool2d: zeros of size (N, C, OH, OW) with y[n, c].flat[indices] = input.
    Default size: OH = (H - 1)*sH - 2pH + kH (likewise OW); output_size may override it
    ((OH, OW) or the full shape).

    >>> import gradflow as gf
    >>> F = gf.nn.functional
    >>> y, idx = F.max_pool2d(gf.arange(16.0).reshape(1, 1, 4, 4), 2, return_indices=True)
    >>> F.max_unpool2d(y, idx, 2)[0, 0]
    tensor([[ 0.,  0.,  0.,  0.],
            [ 0.,  5.,  0.,  7.],
            [ 0.,  0.,  0.,  0.],
            [ 0., 13.,  0., 15.]])
    """
    op = "max_unpool2d"
    x, unbatched = batched(op, input)
    kernel = pair(op, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None else pair(op, "stride", stride, 1)
    padding = pair(op, "padding", padding, 0)
    if not isinstance(indices, Tensor) or indices.dtype.is_floating_point or (
        indices.dtype.name != "int64"
    ):
        raise TypeError(f"{op}: indices must be an int64 Tensor")
    if tuple(indices.shape) != tuple(input.shape):
        raise ValueError(
            f"{op}: expected indices of the input's shape {tuple(input.shape)}, got "
            f"{tuple(indices.shape)}"
        )
    idx = shape.unsqueeze(indices, 0) if unbatched else indices
    if output_size is None:
        size = tuple((x.shape[2 + a] - 1) * stride[a] - 2 * padding[a] + kernel[a] for a in (0, 1))
    else:
        size = as_ints(output_size if isinstance(output_size, (tuple, list)) else (output_size,),
                       op, "output_size")[-2:]
        if len(size) != 2:
            raise ValueError(f"{op}: output_size must end with (H, W), got {output_size!r}")
    if size[0] < 1 or size[1] < 1:
        raise ValueError(f"{op}: output size {size} is too small for input {tuple(input.shape)}")
    limit = size[0] * size[1]
    if idx.numel():
        lo, hi = int(reduce.min(idx)), int(reduce.max(idx))
        if lo < 0 or hi >= limit:
            raise ValueError(
                f"{op}: found an invalid max index {lo if lo < 0 else hi} (output volume is of "
                f"size {size[0]}x{size[1]}, indices must be in [0, {limit}))"
            )
    with allocating(op, tuple(x.shape[:2]) + size, x.element_size()):
        return _unbatch(Scatter.apply(x, idx, size, False), unbatched)


def _interp_matrix(n_in: int, n_out: int, scale: Optional[float], mode: str,
                   align_corners: bool) -> np.ndarray[Any, Any]:
    """(n_out, n_in) matrix A with y = A @ x along one axis (PyTorch's source-index rules)."""
    a = np.zeros((n_out, n_in))
    dst = np.arange(n_out, dtype=np.float64)
    if mode == "nearest":
        ratio = 1.0 / scale if scale else n_in / n_out
        src = np.minimum(np.floor(dst * ratio).astype(np.int64), n_in - 1)
        a[np.arange(n_out), src] = 1.0
        return a
    if align_corners:
        src = dst * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(n_out)
    else:
        ratio = 1.0 / scale if scale else n_in / n_out
        src = np.maximum((dst + 0.5) * ratio - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = src - i0
    np.add.at(a, (np.arange(n_out), i0), 1.0 - lam)
    np.add.at(a, (np.arange(n_out), i1), lam)
    return a


def _resize_target(x: Tensor, size: Optional[IntOrPair],
                   scale_factor: Optional[Union[float, Tuple[float, float]]]
                   ) -> Tuple[Pair, Tuple[Optional[float], Optional[float]]]:
    """interpolate's output size (H', W') and the scale factors it came from (None, None when
    size is given): floor(H * scale), floor(W * scale)."""
    op = "interpolate"
    if size is not None:
        return pair(op, "size", size, 1), (None, None)
    if not isinstance(scale_factor, (numbers.Real, tuple, list)):
        raise TypeError(f"{op}: scale_factor must be a number or a pair, not "
                        f"{type(scale_factor).__name__}")
    sf = (scale_factor, scale_factor) if isinstance(scale_factor, numbers.Real) else tuple(
        scale_factor)
    if len(sf) != 2 or not all(isinstance(s, numbers.Real) and 0 < s < math.inf for s in sf):
        raise ValueError(f"{op}: scale_factor must be positive, got {scale_factor!r}")
    scales = (float(sf[0]), float(sf[1]))
    out = (int(math.floor(x.shape[2] * scales[0])), int(math.floor(x.shape[3] * scales[1])))
    if out[0] < 1 or out[1] < 1:
        raise ValueError(f"{op}: output size {out} is too small for input {tuple(x.shape)}")
    return out, scales


def interpolate(
    input: Tensor,
    size: Optional[Union[int, Tuple[int, int]]] = None,
    scale_factor: Optional[Union[float, Tuple[float, float]]] = None,
    mode: str = "nearest",
    align_corners: Optional[bool] = None,
) -> Tensor:
    """Resize (N, C, H, W) images, mode 'nearest' or 'bilinear', as torch.nn.functional.interpolate.

    Each axis is resampled by a small (out, in) matrix, y = A_h @ x @ A_w^T, so the op is two
    batched matmuls and differentiable to any order (a backend with the fused interpolate
    kernel, CUDA, blends the two or four source pixels of each output directly).
    nearest: src = floor(dst * in/out);
    bilinear: src = (dst + 0.5) * in/out - 0.5 (or dst * (in-1)/(out-1) with align_corners),
    blending the two neighbouring pixels. With scale_factor, in/out is 1/scale_factor.

    >>> import gradflow as gf
    >>> x = gf.tensor([[[[1.0, 2.0]]]])
    >>> gf.nn.functional.interpolate(x, scale_factor=2)
    tensor([[[[1., 1., 2., 2.],
              [1., 1., 2., 2.]]]])
    """
    op = "interpolate"
    if not isinstance(mode, str) or mode not in ("nearest", "bilinear"):
        raise ValueError(f"{op}: mode must be 'nearest' or 'bilinear', got {mode!r}")
    if align_corners is not None:
        as_bool(align_corners, op, "align_corners")
    if align_corners is not None and mode == "nearest":
        raise ValueError(
            f"{op}: align_corners option can only be set with the interpolating modes: bilinear"
        )
    x, unbatched = batched(op, input)
    if unbatched:
        raise ValueError(f"{op}: expected 4-D input (N, C, H, W), got shape {tuple(input.shape)}")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: exactly one of size or scale_factor must be given")
    h, w = x.shape[2:]
    out, scales = _resize_target(x, size, scale_factor)
    be = x._backend
    ac = bool(align_corners)
    if fused(be, "interpolate") is not None:
        args = (tuple(s or 0.0 for s in scales), mode == "bilinear", ac)
        with allocating(op, tuple(x.shape[:2]) + out, x.element_size()):
            return Resize.apply(x, out, args)
    with allocating(op, tuple(x.shape[:2]) + out, x.element_size()):
        mats = [
            Tensor._make(be.from_numpy(_interp_matrix(n, o, s, mode, ac).astype(x.dtype.np)), be)
            for n, o, s in ((h, out[0], scales[0]), (w, out[1], scales[1]))
        ]
        return mats[0] @ x @ shape.t(mats[1])
