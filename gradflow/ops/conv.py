"""Convolutions: conv2d and conv_transpose2d (NCHW, float32 and float64), as torch.nn.functional.

A convolution with a fixed geometry (kernel, stride, padding, dilation, groups and input size)
is bilinear in (input, weight). It has three maps, each a native kernel:

    F(x, w)   = conv2d(x, w)                       y  (N, Cout, OH, OW)
    B(gy, w)  = dF/dx^T gy  (conv's input grad)    gx (N, Cin, H, W)   = conv_transpose2d(gy, w)
    Wg(x, gy) = dF/dw^T gy  (conv's weight grad)   gw (Cout, Cin/groups, kh, kw)

and the set is closed under differentiation: F's backward is (B, Wg), B's is (F, Wg) and Wg's
is (B, F). Each map is a Function whose backward calls the others, so gradients of any order
(create_graph=True) work for both convolutions.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple, Optional, Tuple, Union

import numpy as np

from gradflow.autograd.function import Context, Function, Gradients
from gradflow.backends.base import Array, Backend, fused
from gradflow.ops import shape
from gradflow.ops.common import check_numel
from gradflow.tensor import Tensor

Pair = Tuple[int, int]
IntOrPair = Union[int, Tuple[int, int]]


# ---------------------------------------------------------------- argument checks (shared)
def pair(op: str, name: str, v: Any, minimum: int) -> Pair:
    """An int or a pair of ints -> (h, w), each >= minimum, else ValueError."""
    if type(v) is int and minimum <= v < 2**63:  # the usual arguments, accepted at once
        return (v, v)
    if (type(v) is tuple and len(v) == 2 and type(v[0]) is int and type(v[1]) is int
            and minimum <= v[0] < 2**63 and minimum <= v[1] < 2**63):
        return (v[0], v[1])
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        v = (int(v), int(v))
    elif isinstance(v, (tuple, list)) and len(v) == 1:
        v = (v[0], v[0])
    if (
        not isinstance(v, (tuple, list))
        or len(v) != 2
        or not all(isinstance(e, numbers.Integral) and not isinstance(e, bool) for e in v)
    ):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
    ints = (int(v[0]), int(v[1]))
    if not all(-(2**63) <= e < 2**63 for e in ints):
        raise ValueError(f"{op}: {name} {ints} does not fit in int64")
    if ints[0] < minimum or ints[1] < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {ints}")
    return ints


def check_float(op: str, name: str, t: object) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if not t.is_floating_point():
        raise TypeError(f"{op}: {name} must be float32 or float64, got {t.dtype}")


def check_same(op: str, x: Tensor, name: str, t: Optional[Tensor]) -> None:
    """t (if given) is a float tensor of x's dtype and device."""
    if t is None:
        return
    check_float(op, name, t)
    if t._data.dtype != x._data.dtype:
        raise TypeError(f"{op}: input ({x.dtype}) and {name} ({t.dtype}) must have the same dtype")
    if t._backend is not x._backend:
        raise RuntimeError(
            f"{op}: expected all tensors to be on the same device, got {x.device} and {t.device}"
        )


def batched(op: str, x: Tensor) -> Tuple[Tensor, bool]:
    """A 4-D view of a 3-D (C, H, W) or 4-D input, and whether it was unbatched."""
    check_float(op, "input", x)
    xs = x._data.shape  # (a plain tuple, as each shape read here: ops run by the thousand)
    if len(xs) not in (3, 4):
        raise ValueError(f"{op}: expected 3-D (unbatched) or 4-D (batched) input, got shape {xs}")
    if 0 in xs[-3:]:
        raise ValueError(f"{op}: input has a zero-size dimension: shape {xs}")
    return (shape.unsqueeze(x, 0), True) if len(xs) == 3 else (x, False)


# ---------------------------------------------------------------- the three maps
class Geometry(NamedTuple):
    """Everything but the tensors: F maps (N, Cin, *input_size) to (N, Cout, *output_size)."""

    kernel_size: Pair
    stride: Pair
    padding: Pair
    dilation: Pair
    groups: int
    input_size: Pair
    output_size: Pair  # may be smaller than the natural size (conv_transpose2d, see _crop)


def natural_output(g: Geometry) -> Pair:
    """OH = (H + 2pH - dH(kH - 1) - 1) // sH + 1, likewise OW."""
    (h, w), (kh, kw), (sh, sw) = g.input_size, g.kernel_size, g.stride
    (ph, pw), (dh, dw) = g.padding, g.dilation
    return (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1


class ConvForward(Function[Tensor]):
    """y = F(x, w) + b."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, w: Tensor, b: Optional[Tensor], g: Geometry) -> Any:
        ctx.save_for_backward(x, w)
        ctx.geom = g
        be = x._backend
        y = be.conv2d(x._data, w._data, None if b is None else b._data, g.stride, g.padding,
                      g.dilation, g.groups)
        if tuple(y.shape[2:]) != g.output_size:  # drop rows/cols the caller has no use for
            oh, ow = g.output_size
            y = be.contiguous(be.getitem(y, (slice(None), slice(None), slice(0, oh),
                                             slice(0, ow))))
        return y

    @staticmethod
    def backward(ctx: Context, gy: Tensor) -> Gradients:
        x, w = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = ConvInput.apply(gy, w, ctx.geom) if need_x else None
        gw = ConvWeight.apply(x, gy, ctx.geom) if need_w else None
        gb = ChannelSum.apply(gy) if need_b else None
        return gx, gw, gb, None


class ConvInput(Function[Tensor]):
    """gx = B(gy, w): conv2d's input gradient, and conv_transpose2d's forward."""

    @staticmethod
    def forward(ctx: Context, gy: Tensor, w: Tensor, g: Geometry) -> Any:
        ctx.save_for_backward(gy, w)
        ctx.geom = g
        return gy._backend.conv2d_backward_input(gy._data, w._data, g.input_size, g.stride,
                                                 g.padding, g.dilation, g.groups)

    @staticmethod
    def backward(ctx: Context, gg: Tensor) -> Gradients:
        gy, w = ctx.saved_tensors
        need_gy, need_w = ctx.needs_input_grad[:2]
        d_gy = ConvForward.apply(gg, w, None, ctx.geom) if need_gy else None
        d_w = ConvWeight.apply(gg, gy, ctx.geom) if need_w else None
        return d_gy, d_w, None


class ConvWeight(Function[Tensor]):
    """gw = Wg(x, gy): conv2d's weight gradient."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, gy: Tensor, g: Geometry) -> Any:
        ctx.save_for_backward(x, gy)
        ctx.geom = g
        return x._backend.conv2d_backward_weight(x._data, gy._data, g.kernel_size, g.stride,
                                                 g.padding, g.dilation, g.groups)

    @staticmethod
    def backward(ctx: Context, gg: Tensor) -> Gradients:
        x, gy = ctx.saved_tensors
        need_x, need_gy = ctx.needs_input_grad[:2]
        d_x = ConvInput.apply(gy, gg, ctx.geom) if need_x else None
        d_gy = ConvForward.apply(x, gg, None, ctx.geom) if need_gy else None
        return d_x, d_gy, None


class ChannelSum(Function[Tensor]):
    """(N, C, H, W) -> (C,): the bias gradient, sum over every axis but 1."""

    @staticmethod
    def forward(ctx: Context, x: Tensor) -> Any:
        ctx.shape = tuple(x.shape)
        return x._backend.channel_sum(x._data)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Tensor:
        c = ctx.shape[1]
        return shape.expand(shape.reshape(g, (1, c) + (1,) * (len(ctx.shape) - 2)), ctx.shape)


class PadBottomRight(Function[Tensor]):
    """Zero rows below and columns right of x (N, C, H, W): padding='same' with an odd total."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, extra: Pair) -> Any:
        ctx.size = tuple(x.shape[2:])
        widths = ((0, 0), (0, 0), (0, extra[0]), (0, extra[1]))
        return x._backend.pad(x._data, widths, 0.0)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        h, w = ctx.size
        return g[:, :, :h, :w], None


# ---------------------------------------------------------------- validation
def _check_weight(op: str, w: Tensor, x: Tensor) -> None:
    check_float(op, "weight", w)  # (check_same lets None through: bias is optional)
    check_same(op, x, "weight", w)
    ws = w._data.shape
    if len(ws) != 4:
        raise ValueError(
            f"{op}: weight must be 4-D (out_channels, in_channels/groups, kH, kW), got shape {ws}"
        )
    if 0 in ws:
        raise ValueError(f"{op}: weight has a zero-size dimension: shape {ws}")


def _check_kernel_fits(op: str, x: Tensor, w: Tensor, padding: Pair, dilation: Pair) -> None:
    xs, ws = x._data.shape, w._data.shape
    kh, kw = ws[2:]
    eff = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    padded = (xs[2] + 2 * padding[0], xs[3] + 2 * padding[1])
    if eff[0] > padded[0] or eff[1] > padded[1]:
        raise ValueError(
            f"{op}: kernel size ({kh}, {kw}) (dilated: {eff}) is larger than the padded input "
            f"size {padded}; input {xs}, weight {ws}, padding {padding}"
        )


def _check_bias(op: str, b: Optional[Tensor], x: Tensor, channels: int) -> None:
    check_same(op, x, "bias", b)
    if b is not None and b._data.shape != (channels,):
        raise ValueError(f"{op}: bias must have shape ({channels},), got {b._data.shape}")


def _check_groups(op: str, groups: int, cin: int, cout: int) -> int:
    if not (type(groups) is int or isinstance(groups, numbers.Integral)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if cin % groups or cout % groups:
        raise ValueError(
            f"{op}: in_channels ({cin}) and out_channels ({cout}) must both be divisible by "
            f"groups ({groups})"
        )
    return int(groups)


# ---------------------------------------------------------------- public API
def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: IntOrPair = 1,
    padding: Union[IntOrPair, str] = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
) -> Tensor:
    """2-D cross-correlation, as torch.nn.functional.conv2d.

    y[n, o, i, j] = bias[o] + sum_{c, p, q} weight[o, c, p, q] *
                    input[n, g(o)*Cin/groups + c, i*sH - pH + p*dH, j*sW - pW + q*dW]

    input (N, Cin, H, W) or unbatched (Cin, H, W); weight (Cout, Cin/groups, kH, kW); bias (Cout,).
    padding: int, pair, 'valid' (no padding) or 'same' (output size = input size; stride 1).
    Output size: OH = (H + 2pH - dH(kH-1) - 1) // sH + 1 (likewise OW).

    >>> import gradflow as gf
    >>> x, w = gf.ones(1, 1, 4, 4), gf.ones(2, 1, 3, 3)
    >>> y = gf.nn.functional.conv2d(x, w, padding=1)
    >>> y.shape, y[0, 0, 0, 0].item(), y[0, 0, 1, 1].item()
    (gradflow.Size([1, 2, 4, 4]), 4.0, 9.0)
    """
    op = "conv2d"
    x, unbatched = batched(op, input)
    _check_weight(op, weight, x)
    stride = pair(op, "stride", stride, 1)
    dilation = pair(op, "dilation", dilation, 1)
    xs, ws = x._data.shape, weight._data.shape
    cin, cout = xs[1], ws[0]
    groups = _check_groups(op, groups, cin, cout)
    if ws[1] * groups != cin:
        raise ValueError(
            f"{op}: weight of shape {ws} with groups={groups} expects input with "
            f"{ws[1] * groups} channels, but got input of shape {input._data.shape}"
        )
    _check_bias(op, bias, x, cout)
    kh, kw = ws[2:]
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions")
            total = (dilation[0] * (kh - 1), dilation[1] * (kw - 1))
            padding = (total[0] // 2, total[1] // 2)
            extra = (total[0] % 2, total[1] % 2)
            if extra != (0, 0):  # PyTorch puts the odd pixel at the bottom/right
                x = PadBottomRight.apply(x, extra)
        else:
            raise ValueError(f"{op}: padding must be 'valid', 'same', an int or a pair, got "
                             f"{padding!r}")
    else:
        padding = pair(op, "padding", padding, 0)
    _check_kernel_fits(op, x, weight, padding, dilation)
    xs = x._data.shape  # (x may have been padded for 'same')
    g = Geometry((kh, kw), stride, padding, dilation, groups, (xs[2], xs[3]), (0, 0))
    g = g._replace(output_size=natural_output(g))
    check_numel((xs[0], cout) + g.output_size, op, x._data.itemsize)
    y = ConvForward.apply(x, weight, bias, g)
    return shape.squeeze(y, 0) if unbatched else y


def _transposed_output_size(op: str, input: Tensor, x: Tensor, weight: Tensor, stride: Pair,
                            padding: Pair, output_padding: Pair, dilation: Pair
                            ) -> Tuple[int, int]:
    """OH = (H - 1)*sH - 2pH + dH(kH - 1) + output_padding_H + 1 (likewise OW), checked."""
    for a in (0, 1):
        if output_padding[a] >= max(stride[a], dilation[a]):
            raise ValueError(
                f"{op}: output padding must be smaller than either stride or dilation, but got "
                f"output_padding {output_padding}, stride {stride}, dilation {dilation}"
            )
    k = weight.shape[2:]
    out = tuple(
        (x.shape[2 + a] - 1) * stride[a] - 2 * padding[a] + dilation[a] * (k[a] - 1)
        + output_padding[a] + 1
        for a in (0, 1)
    )
    if out[0] < 1 or out[1] < 1 or out[0] >= 2**31 or out[1] >= 2**31:
        raise ValueError(
            f"{op}: output size {out} is too {'small' if min(out) < 1 else 'large'} (each side "
            f"in [1, 2**31); input {tuple(input.shape)}, weight {tuple(weight.shape)}, stride "
            f"{stride}, padding {padding}, dilation {dilation})"
        )
    return out  # type: ignore[return-value]  # two sizes, as in natural_output


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    output_padding: IntOrPair = 0,
    groups: int = 1,
    dilation: IntOrPair = 1,
) -> Tensor:
    """2-D transposed convolution (the adjoint of conv2d in its input), as
    torch.nn.functional.conv_transpose2d.

    input (N, Cin, H, W) or (Cin, H, W); weight (Cin, Cout/groups, kH, kW); bias (Cout,).
    Output size: OH = (H - 1)*sH - 2pH + dH(kH - 1) + output_padding_H + 1 (likewise OW), where
    output_padding must be smaller than the stride or the dilation.

    >>> import gradflow as gf
    >>> x, w = gf.ones(1, 1, 2, 2), gf.ones(1, 1, 2, 2)
    >>> gf.nn.functional.conv_transpose2d(x, w, stride=2).shape
    gradflow.Size([1, 1, 4, 4])
    """
    op = "conv_transpose2d"
    x, unbatched = batched(op, input)
    _check_weight(op, weight, x)
    stride = pair(op, "stride", stride, 1)
    padding = pair(op, "padding", padding, 0)
    output_padding = pair(op, "output_padding", output_padding, 0)
    dilation = pair(op, "dilation", dilation, 1)
    cin = x.shape[1]
    if weight.shape[0] != cin:
        raise ValueError(
            f"{op}: weight of shape {tuple(weight.shape)} expects input with {weight.shape[0]} "
            f"channels, but got input of shape {tuple(input.shape)}"
        )
    if not isinstance(groups, numbers.Integral) or groups < 1 or cin % groups:
        raise ValueError(
            f"{op}: groups must be a positive int dividing in_channels ({cin}), got {groups!r}"
        )
    groups = int(groups)
    cout = weight.shape[1] * groups
    _check_bias(op, bias, x, cout)
    kh, kw = weight.shape[2:]
    out = _transposed_output_size(op, input, x, weight, stride, padding, output_padding,
                                  dilation)
    g = Geometry((kh, kw), stride, padding, dilation, groups, out, (x.shape[2], x.shape[3]))
    check_numel((x.shape[0], cout) + out, op, x.element_size())
    try:
        y = ConvInput.apply(x, weight, g)
    except MemoryError as e:  # the kernel names itself: conv2d_backward_input
        raise MemoryError(f"{op}: {e}") from None
    if bias is not None:
        y = y.add_(shape.reshape(bias, (1, cout, 1, 1)))  # into the fresh output, no copy
    return shape.squeeze(y, 0) if unbatched else y


# ---------------------------------------------------------------- 1-D through the 2-D maps
def single(op: str, name: str, v: Any, minimum: int) -> int:
    """An int or a 1-tuple of ints (PyTorch's 1-D conv arguments) -> int, >= minimum."""
    if isinstance(v, (tuple, list)) and len(v) != 1:
        raise ValueError(f"{op}: {name} must be an int or a 1-tuple of ints, got {v!r}")
    return pair(op, name, v, minimum)[0]


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Optional[Tensor] = None,
    stride: Union[int, Tuple[int]] = 1,
    padding: Union[int, Tuple[int], str] = 0,
    dilation: Union[int, Tuple[int]] = 1,
    groups: int = 1,
) -> Tensor:
    """1-D cross-correlation over (N, Cin, L) or unbatched (Cin, L) input, as
    torch.nn.functional.conv1d: conv2d's kernels on a height-1 image.

    y[n, o, i] = bias[o] + sum_{c, p} weight[o, c, p] * input[n, g(o)*Cin/groups + c,
                                                              i*s - pad + p*d]
    weight (Cout, Cin/groups, k); padding an int, 'valid' or 'same' (stride 1).
    Output length: (L + 2*pad - d*(k - 1) - 1) // s + 1.

    >>> import gradflow
    >>> x = gradflow.tensor([[[1., 2., 3., 4.]]])
    >>> gradflow.nn.functional.conv1d(x, gradflow.tensor([[[1., -1.]]]))
    tensor([[[-1., -1., -1.]]])
    """
    op = "conv1d"
    check_float(op, "input", input)
    check_float(op, "weight", weight)
    if input.ndim not in (2, 3):
        raise ValueError(f"{op}: expected 2-D (unbatched) or 3-D (batched) input, got shape "
                         f"{tuple(input.shape)}")
    if weight.ndim != 3:
        raise ValueError(f"{op}: weight must be 3-D (out_channels, in_channels/groups, k), "
                         f"got shape {tuple(weight.shape)}")
    stride2 = (1, single(op, "stride", stride, 1))
    dilation2 = (1, single(op, "dilation", dilation, 1))
    padding2 = padding if isinstance(padding, str) else (0, single(op, "padding", padding, 0))
    try:
        y = conv2d(shape.unsqueeze(input, -2), shape.unsqueeze(weight, -2), bias, stride2,
                   padding2, dilation2, groups)
    except ValueError as exc:  # conv2d's words, with this op's name and the 1-D shapes
        raise ValueError(f"{op} (input {tuple(input.shape)}, weight {tuple(weight.shape)}): "
                         f"{exc}") from None
    return shape.squeeze(y, -2)


# ---------------------------------------------------------------- unfold / fold
# unfold is im2col per image and fold its adjoint col2im: a device's fused kernels where it has
# them (the CPU), else conv2d with a one-hot kernel (F) and conv's input gradient (B), which
# compute the same entries. Each is the other's gradient, so both differentiate to any order.
def _one_hot_kernel(like: Array, channels: int, kernel_size: Pair, be: Backend) -> Array:
    """weight (C*kh*kw, 1, kh, kw), one 1 per output channel: with groups=C, conv2d's output
    channel (c*kh + i)*kw + j copies pixel (i, j) of channel c's window -- im2col's row order."""
    kh, kw = kernel_size
    eye = np.eye(kh * kw, dtype=like.dtype).reshape(kh * kw, 1, kh, kw)
    return be.from_numpy(np.tile(eye, (channels, 1, 1, 1)))


class Unfold(Function[Tensor]):
    """cols (N, C*kh*kw, L) = im2col(x (N, C, H, W)) for geometry g (groups = C)."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, g: Geometry) -> Any:
        ctx.geom = g
        be, n = x._backend, x.shape[0]
        kernel = fused(be, "unfold")
        if kernel is not None:
            return kernel(x._data, g.kernel_size, g.stride, g.padding, g.dilation)
        w = _one_hot_kernel(x._data, g.groups, g.kernel_size, be)
        y = be.conv2d(x._data, w, None, g.stride, g.padding, g.dilation, g.groups)
        return be.reshape(y, (n, w.shape[0], g.output_size[0] * g.output_size[1]))

    @staticmethod
    def backward(ctx: Context, gcols: Tensor) -> Gradients:
        return Fold.apply(gcols, ctx.geom), None


class Fold(Function[Tensor]):
    """image (N, C, H, W) = col2im(cols (N, C*kh*kw, L)), the adjoint of Unfold."""

    @staticmethod
    def forward(ctx: Context, cols: Tensor, g: Geometry) -> Any:
        ctx.geom = g
        be, n = cols._backend, cols.shape[0]
        kernel = fused(be, "fold")
        if kernel is not None:
            return kernel(cols._data, g.input_size, g.kernel_size, g.stride, g.padding,
                          g.dilation)
        w = _one_hot_kernel(cols._data, g.groups, g.kernel_size, be)
        gy = be.reshape(cols._data, (n, w.shape[0]) + g.output_size)
        return be.conv2d_backward_input(gy, w, g.input_size, g.stride, g.padding, g.dilation,
                                        g.groups)

    @staticmethod
    def backward(ctx: Context, gimage: Tensor) -> Gradients:
        return Unfold.apply(gimage, ctx.geom), None


def _patch_geometry(op: str, kernel_size: IntOrPair, dilation: IntOrPair, padding: IntOrPair,
                    stride: IntOrPair) -> Tuple[Pair, Pair, Pair, Pair]:
    """(kernel_size, dilation, padding, stride) as pairs, each checked."""
    return (pair(op, "kernel_size", kernel_size, 1), pair(op, "dilation", dilation, 1),
            pair(op, "padding", padding, 0), pair(op, "stride", stride, 1))


def unfold(input: Tensor, kernel_size: IntOrPair, dilation: IntOrPair = 1,
           padding: IntOrPair = 0, stride: IntOrPair = 1) -> Tensor:
    """Sliding local blocks of (N, C, H, W) or (C, H, W) input as columns (im2col), as
    torch.nn.functional.unfold: output (N, C*kh*kw, L), L the number of block positions;
    row (c*kh + i)*kw + j, column oh*OW + ow holds input[c, oh*sh - ph + i*dh, ow*sw - pw + j*dw]
    (0 in the padding). Its gradient is fold.

    >>> import gradflow
    >>> x = gradflow.arange(9.).reshape(1, 1, 3, 3)
    >>> gradflow.nn.functional.unfold(x, 2)
    tensor([[[0., 1., 3., 4.],
             [1., 2., 4., 5.],
             [3., 4., 6., 7.],
             [4., 5., 7., 8.]]])
    """
    op = "unfold"
    x, unbatched = batched(op, input)
    k, dilation, padding, stride = _patch_geometry(op, kernel_size, dilation, padding, stride)
    eff = (dilation[0] * (k[0] - 1) + 1, dilation[1] * (k[1] - 1) + 1)
    padded = (x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1])
    if eff[0] > padded[0] or eff[1] > padded[1]:
        raise ValueError(f"{op}: kernel size {k} (dilated: {eff}) is larger than the padded "
                         f"input size {padded}; input {tuple(input.shape)}, padding {padding}")
    g = Geometry(k, stride, padding, dilation, x.shape[1], (x.shape[2], x.shape[3]), (0, 0))
    g = g._replace(output_size=natural_output(g))
    rows, blocks = x.shape[1] * k[0] * k[1], g.output_size[0] * g.output_size[1]
    check_numel((x.shape[0], rows, blocks), op, x.element_size())
    cols = Unfold.apply(x, g)
    return shape.squeeze(cols, 0) if unbatched else cols


def fold(input: Tensor, output_size: IntOrPair, kernel_size: IntOrPair,
         dilation: IntOrPair = 1, padding: IntOrPair = 0, stride: IntOrPair = 1) -> Tensor:
    """Sum columns of blocks (N, C*kh*kw, L) or (C*kh*kw, L) back into an (N, C, H, W) image
    (col2im, the adjoint of unfold), as torch.nn.functional.fold: overlapping entries add,
    entries in the padding are dropped. Its gradient is unfold.

    >>> import gradflow
    >>> F = gradflow.nn.functional
    >>> F.fold(F.unfold(gradflow.ones(1, 1, 3, 3), 2), (3, 3), 2)
    tensor([[[[1., 2., 1.],
              [2., 4., 2.],
              [1., 2., 1.]]]])
    """
    op = "fold"
    check_float(op, "input", input)
    if input.ndim not in (2, 3):
        raise ValueError(f"{op}: expected 2-D (unbatched) or 3-D (batched) input, got shape "
                         f"{tuple(input.shape)}")
    cols = shape.unsqueeze(input, 0) if input.ndim == 2 else input
    size = pair(op, "output_size", output_size, 1)
    k, dilation, padding, stride = _patch_geometry(op, kernel_size, dilation, padding, stride)
    rows, blocks = cols.shape[1:]
    if rows % (k[0] * k[1]):
        raise ValueError(f"{op}: expected size of input's dimension 1 to be divisible by the "
                         f"product of kernel_size {k}, but got input of shape "
                         f"{tuple(input.shape)}")
    g = Geometry(k, stride, padding, dilation, rows // (k[0] * k[1]), size, (0, 0))
    g = g._replace(output_size=natural_output(g))
    if min(g.output_size) < 1 or blocks != g.output_size[0] * g.output_size[1]:
        raise ValueError(f"{op}: given output_size={size}, kernel_size={k}, dilation="
                         f"{dilation}, padding={padding}, stride={stride}, expected size of "
                         f"input's dimension 2 to match the calculated number of sliding "
                         f"blocks {max(g.output_size[0], 0)} * {max(g.output_size[1], 0)}, "
                         f"but got input of shape {tuple(input.shape)}")
    if cols.shape[0] == 0 or rows == 0:
        raise ValueError(f"{op}: input has a zero-size dimension: shape {tuple(input.shape)}")
    check_numel((cols.shape[0], g.groups) + size, op, cols.element_size())
    image = Fold.apply(cols, g)
    return shape.squeeze(image, 0) if input.ndim == 2 else image
