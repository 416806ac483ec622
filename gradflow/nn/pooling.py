"""Pooling and resampling layers (the math lives in gradflow.ops.pool)."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

from gradflow.nn import functional as F
from gradflow.nn.module import Module
from gradflow.ops.common import as_float
from gradflow.ops.conv import pair
from gradflow.tensor import Tensor

__all__ = [
    "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "AvgPool2d", "MaxPool2d", "MaxUnpool2d", "Upsample"
]

IntOrPair = Union[int, Tuple[int, int]]


class _Pool2d(Module):
    """The window every pooling layer has: kernel_size, stride (default: kernel_size) and
    padding, and the repr that shows them."""

    def __init__(self, kernel_size: IntOrPair, stride: Optional[IntOrPair],
                 padding: IntOrPair) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max over kernel_size windows (stride defaults to kernel_size).

    >>> nn.MaxPool2d(2)(gf.arange(16.0).reshape(1, 1, 4, 4))
    tensor([[[[ 5.,  7.],
              [13., 15.]]]])
    """

    def __init__(self, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                 padding: IntOrPair = 0, dilation: IntOrPair = 1,
                 return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding)
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def forward(self, input: Tensor):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", dilation={self.dilation}, ceil_mode={self.ceil_mode}"


class AvgPool2d(_Pool2d):
    """Mean over kernel_size windows (stride defaults to kernel_size).

    >>> nn.AvgPool2d(2)(gf.arange(16.0).reshape(1, 1, 4, 4))
    tensor([[[[ 2.5000,  4.5000],
              [10.5000, 12.5000]]]])
    """

    def __init__(self, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                 padding: IntOrPair = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: Optional[int] = None) -> None:
        super().__init__(kernel_size, stride, padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class AdaptiveAvgPool2d(Module):
    """Mean pooling to a fixed output_size (None in a slot keeps that input size).

    >>> nn.AdaptiveAvgPool2d(1)(gf.arange(4.0).reshape(1, 1, 2, 2))
    tensor([[[[1.5000]]]])
    """

    def __init__(self, output_size) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(input, _fill_none(self.output_size, input))

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool2d(Module):
    """Max pooling to a fixed output_size (None in a slot keeps that input size).

    >>> nn.AdaptiveMaxPool2d((1, 2))(gf.arange(4.0).reshape(1, 1, 2, 2))
    tensor([[[[2., 3.]]]])
    """

    def __init__(self, output_size, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices

    def forward(self, input: Tensor):
        return F.adaptive_max_pool2d(input, _fill_none(self.output_size, input),
                                     self.return_indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


def _fill_none(output_size, input: Tensor):
    if isinstance(output_size, (tuple, list)):
        return tuple(input.shape[-2 + i] if s is None else s for i, s in enumerate(output_size))
    return output_size


class MaxUnpool2d(_Pool2d):
    """Places each value at the position its max_pool2d index names, zeros elsewhere.

    >>> x = gf.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    >>> y, idx = F.max_pool2d(x, 2, return_indices=True)
    >>> nn.MaxUnpool2d(2)(y, idx)
    tensor([[[[0., 0.],
              [0., 4.]]]])
    """

    def __init__(self, kernel_size: IntOrPair, stride: Optional[IntOrPair] = None,
                 padding: IntOrPair = 0) -> None:
        kernel_size = pair("MaxUnpool2d", "kernel_size", kernel_size, 1)
        stride = pair("MaxUnpool2d", "stride", stride if stride is not None else kernel_size, 1)
        super().__init__(kernel_size, stride, pair("MaxUnpool2d", "padding", padding, 0))

    def forward(self, input: Tensor, indices: Tensor,
                output_size: Optional[Sequence[int]] = None) -> Tensor:
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding,
                              output_size)


class Upsample(Module):
    """Resizes (N, C, H, W) input to `size` or by `scale_factor` ('nearest' or 'bilinear').

    >>> nn.Upsample(scale_factor=2)(gf.tensor([[[[1.0, 2.0]]]]))
    tensor([[[[1., 1., 2., 2.],
              [1., 1., 2., 2.]]]])
    """

    def __init__(self, size=None, scale_factor=None, mode: str = "nearest",
                 align_corners: Optional[bool] = None,
                 recompute_scale_factor: Optional[bool] = None) -> None:
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(as_float(f, "Upsample", "scale_factor")
                                      for f in scale_factor)
        else:
            self.scale_factor = (as_float(scale_factor, "Upsample", "scale_factor")
                                 if scale_factor is not None else None)
        self.mode = mode
        self.align_corners = align_corners
        if recompute_scale_factor:
            raise ValueError("Upsample: recompute_scale_factor=True is not supported")
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input: Tensor) -> Tensor:
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return info + f", mode={self.mode!r}"
