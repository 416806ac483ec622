"""Conv1d, Conv2d and ConvTranspose2d layers, Unfold and Fold (the math lives in
gradflow.ops.conv)."""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Tuple, Union

from gradflow.nn import functional as F
from gradflow.nn import init
from gradflow.nn.module import Module
from gradflow.nn.parameter import layer_tensor
from gradflow.ops.common import as_bool, as_size
from gradflow.ops.conv import pair, single
from gradflow.tensor import Tensor

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d", "Fold", "Unfold"]

IntOrPair = Union[int, Tuple[int, int]]


class _ConvNd(Module):
    """Shared constructor, initialisation, forward (padding_mode) and repr of the convolutions
    (`dims` spatial dims).

    Initialisation as PyTorch's: weight ~ kaiming_uniform_(a=sqrt(5)), i.e. U(-b, b) with
    b = 1/sqrt(fan_in); bias ~ U(-b, b) with the same fan_in (computed from the weight's
    dim 1 times the kernel area, so the transposed conv uses out_channels/groups)."""

    dims = 2
    _conv: Callable[..., Tensor]  # the functional form forward calls (not the transposed conv)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair,
                 stride: IntOrPair, padding: Union[IntOrPair, str], dilation: IntOrPair,
                 transposed: bool, output_padding: IntOrPair, groups: int, bias: bool,
                 padding_mode: str, device=None, dtype=None) -> None:
        super().__init__()
        name = type(self).__name__
        in_channels = as_size(in_channels, name, "in_channels")
        out_channels = as_size(out_channels, name, "out_channels")
        groups = as_size(groups, name, "groups", minimum=1)
        if in_channels % groups != 0:
            raise ValueError(f"{name}: in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError(f"{name}: out_channels must be divisible by groups")
        if isinstance(padding, str) and (transposed or padding not in ("same", "valid")):
            raise ValueError(f"{name}: Invalid padding string {padding!r}, should be one of "
                             + ("an int or a pair" if transposed else "{'valid', 'same'}"))
        if not isinstance(padding_mode, str) or padding_mode not in ("zeros", "reflect",
                                                                     "replicate", "circular"):
            raise ValueError(f"{name}: padding_mode must be one of 'zeros', 'reflect', "
                             f"'replicate' or 'circular', but got padding_mode={padding_mode!r}")
        if transposed and padding_mode != "zeros":
            raise ValueError(f'{name}: Only "zeros" padding mode is supported for {name}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = self._sizes(name, "kernel_size", kernel_size, 1)
        self.stride = self._sizes(name, "stride", stride, 1)
        self.padding = (padding if isinstance(padding, str)
                        else self._sizes(name, "padding", padding, 0))
        self.dilation = self._sizes(name, "dilation", dilation, 1)
        self.transposed = transposed
        self.output_padding = self._sizes(name, "output_padding", output_padding, 0)
        self.groups = groups
        self.padding_mode = padding_mode
        shape = ((in_channels, out_channels // groups) if transposed
                 else (out_channels, in_channels // groups)) + self.kernel_size
        self.weight = layer_tensor(name, shape, device, dtype)
        if as_bool(bias, name, "bias"):
            self.bias = layer_tensor(name, (out_channels,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _sizes(self, op: str, arg: str, value, minimum: int) -> Tuple[int, ...]:
        """An int or a `dims`-tuple argument -> a `dims`-tuple."""
        return pair(op, arg, value, minimum) if self.dims == 2 else (
            single(op, arg, value, minimum),)

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        if self.padding_mode == "zeros":
            return self._conv(input, self.weight, self.bias, self.stride, self.padding,
                              self.dilation, self.groups)
        # Other modes: pad by copying input samples first, then convolve without padding.
        return self._conv(self._padded(input), self.weight, self.bias, self.stride, 0,
                          self.dilation, self.groups)

    def _padded(self, input: Tensor) -> Tensor:
        try:
            return F.pad(input, self._pad_widths(), mode=self.padding_mode)
        except ValueError as exc:  # pad's message, for this layer
            raise ValueError(f"{type(self).__name__} (padding_mode={self.padding_mode!r}): "
                             f"{exc}") from None

    def _pad_widths(self) -> Tuple[int, ...]:
        """F.pad's widths for this layer's padding: (left, right) of the last dim first."""
        if self.padding == "valid":
            return (0, 0) * self.dims
        if self.padding == "same":  # total d*(k-1) per dim, the extra sample on the far side
            totals = [d * (k - 1) for d, k in zip(self.dilation, self.kernel_size)]
            sides = [(t // 2, t - t // 2) for t in totals]
        else:
            sides = [(p, p) for p in self.padding]
        return tuple(w for side in reversed(sides) for w in side)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self.dims:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self.dims:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self.dims:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W) input; weight (C_out, C_in/groups, kH, kW).

    >>> conv = nn.Conv2d(3, 8, 3, padding=1)
    >>> conv(gf.ones(2, 3, 5, 5)).shape, conv.weight.shape
    (gradflow.Size([2, 8, 5, 5]), gradflow.Size([8, 3, 3, 3]))
    """

    _conv = staticmethod(F.conv2d)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair,
                 stride: IntOrPair = 1, padding: Union[IntOrPair, str] = 0,
                 dilation: IntOrPair = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         False, 0, groups, bias, padding_mode, device, dtype)


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution; weight (C_in, C_out/groups, kH, kW). forward may take an
    output_size, which picks the output_padding that reaches it.

    >>> up = nn.ConvTranspose2d(8, 3, 2, stride=2)
    >>> up(gf.ones(1, 8, 4, 4)).shape, up.weight.shape
    (gradflow.Size([1, 3, 8, 8]), gradflow.Size([8, 3, 2, 2]))
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrPair,
                 stride: IntOrPair = 1, padding: IntOrPair = 0,
                 output_padding: IntOrPair = 0, groups: int = 1, bias: bool = True,
                 dilation: IntOrPair = 1, padding_mode: str = "zeros", device=None,
                 dtype=None) -> None:
        if isinstance(padding, str):
            raise ValueError("ConvTranspose2d does not support string padding")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         True, output_padding, groups, bias, padding_mode, device, dtype)

    def _output_padding(self, input: Tensor,
                        output_size: Optional[Sequence[int]]) -> Tuple[int, int]:
        if output_size is None:
            return self.output_padding
        size = list(output_size)[-2:]
        if len(list(output_size)) not in (2, input.dim()):
            raise ValueError(f"ConvTranspose2d: output_size must have 2 or {input.dim()} "
                             f"elements (got {len(list(output_size))})")
        pad = []
        for d in range(2):
            smallest = ((input.shape[input.dim() - 2 + d] - 1) * self.stride[d]
                        - 2 * self.padding[d] + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            largest = smallest + self.stride[d] - 1
            if not smallest <= size[d] <= largest:
                raise ValueError(
                    f"requested an output size of {size}, but valid sizes range from "
                    f"[{smallest}, ...] to [{largest}, ...] (for an input of "
                    f"{list(input.shape[-2:])})"
                )
            pad.append(size[d] - smallest)
        return pad[0], pad[1]

    def forward(self, input: Tensor, output_size: Optional[Sequence[int]] = None) -> Tensor:
        output_padding = self._output_padding(input, output_size)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  output_padding, self.groups, self.dilation)


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L) or (C_in, L) input; weight (C_out, C_in/groups, k).
    It runs conv2d's kernels on a height-1 image (see functional.conv1d).

    >>> import gradflow
    >>> conv = gradflow.nn.Conv1d(4, 8, kernel_size=3, padding="same")
    >>> conv(gradflow.randn(2, 4, 10)).shape
    gradflow.Size([2, 8, 10])
    """

    dims = 1
    _conv = staticmethod(F.conv1d)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, Tuple[int]],
                 stride: Union[int, Tuple[int]] = 1, padding: Union[int, Tuple[int], str] = 0,
                 dilation: Union[int, Tuple[int]] = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", device=None, dtype=None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         False, 0, groups, bias, padding_mode, device, dtype)


class _Blocks(Module):
    """Unfold's and Fold's sliding blocks: kernel_size, dilation, padding and stride (each an
    int or a pair), and the repr that shows them."""

    def __init__(self, kernel_size: IntOrPair, dilation: IntOrPair, padding: IntOrPair,
                 stride: IntOrPair) -> None:
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.padding, self.stride = padding, stride

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
                f"padding={self.padding}, stride={self.stride}")


class Unfold(_Blocks):
    """Extract sliding local blocks as columns (im2col): functional.unfold as a layer.

    >>> import gradflow
    >>> gradflow.nn.Unfold(kernel_size=2)(gradflow.randn(1, 3, 4, 4)).shape
    gradflow.Size([1, 12, 9])
    """

    def __init__(self, kernel_size: IntOrPair, dilation: IntOrPair = 1, padding: IntOrPair = 0,
                 stride: IntOrPair = 1) -> None:
        super().__init__(kernel_size, dilation, padding, stride)

    def forward(self, input: Tensor) -> Tensor:
        return F.unfold(input, self.kernel_size, self.dilation, self.padding, self.stride)


class Fold(_Blocks):
    """Sum columns of blocks back into an image (col2im): functional.fold as a layer.

    >>> import gradflow
    >>> gradflow.nn.Fold(output_size=(4, 4), kernel_size=2)(gradflow.randn(1, 12, 9)).shape
    gradflow.Size([1, 3, 4, 4])
    """

    def __init__(self, output_size: IntOrPair, kernel_size: IntOrPair, dilation: IntOrPair = 1,
                 padding: IntOrPair = 0, stride: IntOrPair = 1) -> None:
        super().__init__(kernel_size, dilation, padding, stride)
        self.output_size = output_size

    def forward(self, input: Tensor) -> Tensor:
        return F.fold(input, self.output_size, self.kernel_size, self.dilation, self.padding,
                      self.stride)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, " + super().extra_repr()
