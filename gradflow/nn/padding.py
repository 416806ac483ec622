"""Padding layers over F.pad: Zero/Constant/Reflection/Replication/CircularPad{1,2,3}d.

Each pads the last N dims of its input; `padding` is one int (every side) or the 2N ints
(left, right, top, bottom, front, back) in F.pad's order, last dim first.
"""

from __future__ import annotations

from typing import Sequence, Tuple, Union

from gradflow.nn import functional as F
from gradflow.nn.module import Module
from gradflow.ops.common import as_float, as_int, check_tensor
from gradflow.tensor import Tensor

__all__ = [
    "CircularPad1d", "CircularPad2d", "CircularPad3d", "ConstantPad1d", "ConstantPad2d",
    "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d",
    "ReplicationPad2d", "ReplicationPad3d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d"
]


def _padding(padding: Union[int, Sequence[int]], dims: int, layer: str) -> Tuple[int, ...]:
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2 * dims:
            raise ValueError(f"{layer}: padding must be an int or {2 * dims} ints, got "
                             f"{len(padding)}: {tuple(padding)}")
        return tuple(as_int(p, layer, "padding") for p in padding)
    return (as_int(padding, layer, "padding"),) * (2 * dims)


class _PadNd(Module):
    """Pads the last `dims` dims with F.pad's `mode`."""

    mode = "constant"
    dims = 2

    def __init__(self, padding: Union[int, Sequence[int]], value: float = 0.0) -> None:
        super().__init__()
        self.padding = _padding(padding, self.dims, type(self).__name__)
        self.value = as_float(value, type(self).__name__, "value")

    def forward(self, input: Tensor) -> Tensor:
        name = type(self).__name__
        check_tensor(input, name)
        if input.ndim not in (self.dims + 1, self.dims + 2):
            raise ValueError(f"{name}: expected a {self.dims + 1}-D (unbatched) or "
                             f"{self.dims + 2}-D (batched) input, got shape "
                             f"{tuple(input.shape)}")
        return F.pad(input, self.padding, self.mode, self.value)

    def extra_repr(self) -> str:
        if self.mode == "constant":
            return f"padding={self.padding}, value={self.value}"
        return f"padding={self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding: Union[int, Sequence[int]], value: float) -> None:
        super().__init__(padding, value)


class _ZeroPadNd(_PadNd):
    def __init__(self, padding: Union[int, Sequence[int]]) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"padding={self.padding}"


class _ReflectionPadNd(_PadNd):
    mode = "reflect"

    def __init__(self, padding: Union[int, Sequence[int]]) -> None:
        super().__init__(padding)


class _ReplicationPadNd(_PadNd):
    mode = "replicate"

    def __init__(self, padding: Union[int, Sequence[int]]) -> None:
        super().__init__(padding)


class _CircularPadNd(_PadNd):
    mode = "circular"

    def __init__(self, padding: Union[int, Sequence[int]]) -> None:
        super().__init__(padding)


def _layer(base: type, dims: int) -> type:
    name = base.__name__.lstrip("_").replace("Nd", f"{dims}d")
    doc = (f"{name}(padding{', value' if base is _ConstantPadNd else ''}): F.pad(input, "
           f"padding, mode='{base.mode}') over the last {dims} dim(s) of a {dims + 1}-D or "
           f"{dims + 2}-D input.\n\n"
           f"    >>> nn.{name}(1{', 0.5' if base is _ConstantPadNd else ''})"
           f"(gf.zeros({', '.join(['1'] + ['3'] * dims)})).shape\n"
           f"    gradflow.Size([{', '.join(['1'] + ['5'] * dims)}])\n")
    return type(name, (base,), {"dims": dims, "__doc__": doc, "__module__": __name__})


ZeroPad1d, ZeroPad2d, ZeroPad3d = (_layer(_ZeroPadNd, d) for d in (1, 2, 3))
ConstantPad1d, ConstantPad2d, ConstantPad3d = (_layer(_ConstantPadNd, d) for d in (1, 2, 3))
ReflectionPad1d, ReflectionPad2d, ReflectionPad3d = (_layer(_ReflectionPadNd, d)
                                                     for d in (1, 2, 3))
ReplicationPad1d, ReplicationPad2d, ReplicationPad3d = (_layer(_ReplicationPadNd, d)
                                                        for d in (1, 2, 3))
CircularPad1d, CircularPad2d, CircularPad3d = (_layer(_CircularPadNd, d) for d in (1, 2, 3))
