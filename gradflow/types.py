"""dtypes and devices: the two small value types every Tensor carries."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, List, Tuple, Union

import numpy as np

if TYPE_CHECKING:
    from gradflow.tensor import Tensor


class dtype:
    """A tensor element type: float32 (default), float64, the integers uint8, int8, int16,
    int32, int64, bool, and the half floats float16 and bfloat16. The small integers and the
    half floats are CPU storage types (images, tokens, half-precision weights: math on
    float16 and bfloat16 runs in float32 and rounds back); the CUDA backend stores float32,
    float64, int64 and bool.

    >>> import gradflow as gf
    >>> gf.float64, gf.float64.itemsize, gf.float64.is_floating_point
    (gradflow.float64, 8, True)
    """

    __slots__ = ("name", "np", "is_floating_point", "itemsize", "_rank")
    np: np.dtype[Any]
    _rank: builtins.int

    def __init__(self, name: str, np_dtype: type, is_floating_point: builtins.bool,
                 rank: builtins.int) -> None:
        self.name = name
        self.np = np.dtype(np_dtype)
        self.is_floating_point = is_floating_point
        self.itemsize = self.np.itemsize
        self._rank = rank  # promotion order: bool < integers < half floats < float32 < float64

    def __repr__(self) -> str:
        return f"gradflow.{self.name}"

    def __reduce__(self) -> Tuple[Any, Tuple[str]]:
        return (_dtype_by_name, (self.name,))


# bfloat16 is the top half of a float32 (sign, 8 exponent bits, 7 mantissa bits). NumPy has
# no bfloat16, so its arrays hold those 16 bits as uint16 inside a one-field structured dtype:
# a distinct NumPy dtype (so a tensor's dtype is read off its array) on which NumPy refuses
# arithmetic, instead of silently doing integer math on the bits. `cast` and `widen` below
# are the only code that converts to and from it.
BFLOAT16_BITS = np.dtype([("bfloat16", np.uint16)])

float32 = dtype("float32", np.float32, True, 3)
float64 = dtype("float64", np.float64, True, 4)
float16 = dtype("float16", np.float16, True, 2)
bfloat16 = dtype("bfloat16", BFLOAT16_BITS, True, 2)
int64 = dtype("int64", np.int64, False, 1)
int32 = dtype("int32", np.int32, False, 1)
int16 = dtype("int16", np.int16, False, 1)
int8 = dtype("int8", np.int8, False, 1)
uint8 = dtype("uint8", np.uint8, False, 1)
bool_ = dtype("bool", np.bool_, False, 0)
float = float32  # noqa: A001  (PyTorch spells these aliases)
double = float64
half = float16
long = int64
int = int32  # noqa: A001
short = int16
char = int8
byte = uint8

# What the annotations of the ops and Tensor say (typing only; nothing checks them at run time).
Number = Union[builtins.int, builtins.float, builtins.bool]  # a Python scalar operand
TensorLike = Union["Tensor", Number]  # a binary op's operand: a Tensor or a Python number
DTypeLike = Union[dtype, str, type, "np.dtype[Any]"]  # what as_dtype accepts
DeviceLike = Union["device", str, builtins.int]  # what device() accepts
Dims = Union[None, builtins.int, Tuple[builtins.int, ...], List[builtins.int]]  # dim=

_ALL = (float32, float64, int64, int32, int16, int8, uint8, bool_, float16, bfloat16)
HALF_FLOATS = (float16.np, BFLOAT16_BITS)  # storage types whose math runs in float32
_BY_NP = {d.np: d for d in _ALL}
_BY_NAME = {d.name: d for d in _ALL}
_default_dtype = float32


def _dtype_by_name(name: str) -> dtype:
    return _BY_NAME[name]


def from_numpy_dtype(np_dtype: Any) -> dtype:
    """The gradflow dtype of a NumPy dtype; uint16/32/64 map to int64, other floats to
    float32 or float64."""
    found = _BY_NP.get(np_dtype)
    if found is not None:
        return found
    np_dtype = np.dtype(np_dtype)
    found = _BY_NP.get(np_dtype)
    if found is not None:
        return found
    if np_dtype.kind in "iu":
        return int64
    if np_dtype.kind == "f":
        return float32 if np_dtype.itemsize <= 4 else float64
    raise TypeError(f"unsupported dtype {np_dtype}: gradflow supports float32, float64, uint8, "
                    "int8, int16, int32, int64 and bool, and the storage type float16")


def as_dtype(d: DTypeLike) -> dtype:
    """Accept a gradflow dtype, a NumPy dtype or type, or a name like 'float32' or 'half'."""
    if isinstance(d, dtype):
        return d
    if isinstance(d, str) and d in _BY_NAME:
        return _BY_NAME[d]
    if isinstance(d, str) and d == "half":
        return float16
    if d is bool:
        return bool_
    if d is builtins.int:
        return int64
    if d is builtins.float:
        return _default_dtype
    try:
        return from_numpy_dtype(np.dtype(d))
    except (TypeError, ValueError):
        raise TypeError(f"expected a dtype (gradflow.float32, float64, an integer type or "
                        f"bool), got {d!r}") from None


def get_default_dtype() -> dtype:
    """The float dtype of new float tensors (float32 unless set_default_dtype changed it).

    >>> import gradflow as gf
    >>> gf.get_default_dtype()
    gradflow.float32
    """
    return _default_dtype


def set_default_dtype(d: DTypeLike) -> None:
    """Make d (float32 or float64) the dtype of new float tensors.

    >>> import gradflow as gf
    >>> gf.set_default_dtype(gf.float64)
    >>> gf.tensor([1.5]).dtype
    gradflow.float64
    >>> gf.set_default_dtype(gf.float32)
    """
    global _default_dtype
    try:
        d = as_dtype(d)
    except TypeError as exc:
        raise TypeError(f"set_default_dtype: {exc}") from None
    if not d.is_floating_point:
        raise TypeError(f"set_default_dtype: only float32 and float64 can be the default, got {d}")
    _default_dtype = d


def promote_types(a: dtype, b: dtype) -> dtype:
    """The smallest dtype both a and b convert to without losing their kind or range.

    >>> import gradflow as gf
    >>> gf.promote_types(gf.int64, gf.float32), gf.promote_types(gf.uint8, gf.int8)
    (gradflow.float32, gradflow.int16)
    """
    if not (isinstance(a, dtype) and isinstance(b, dtype)):
        raise TypeError(f"promote_types: expected two dtypes, got {builtins.type(a).__name__} "
                        f"and {builtins.type(b).__name__}")
    if {a, b} == {float16, bfloat16}:  # neither holds the other: float32 holds both
        return float32
    if a.is_floating_point or b.is_floating_point or a is bool_ or b is bool_:
        return a if a._rank >= b._rank else b
    # two integers, as PyTorch (and NumPy): the narrowest type holding both ranges, so
    # uint8 with int8 gives int16
    return _BY_NP[np.promote_types(a.np, b.np)]


def widen(a: np.ndarray) -> np.ndarray:
    """A float16 or bfloat16 array as float32 (exact: float32 holds every value of both);
    other arrays as they are."""
    if a.dtype == BFLOAT16_BITS:  # the bits are a float32's top half
        return (a.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return a.astype(np.float32) if a.dtype == np.float16 else a


def cast(a: np.ndarray, to: np.dtype) -> np.ndarray:
    """A new array of a's values in the storage dtype `to`: NumPy's astype, and bfloat16 in
    both directions (to bfloat16: rounded to the nearest, ties to even, as PyTorch)."""
    if a.dtype == BFLOAT16_BITS:
        return widen(a).astype(to) if to != BFLOAT16_BITS else a.copy()
    if to != BFLOAT16_BITS:
        with np.errstate(over="ignore"):  # past float16's range is inf, as in PyTorch
            return a.astype(to)
    with np.errstate(invalid="ignore", over="ignore"):
        bits = np.asarray(a, np.float32).view(np.uint32)
        # add half of the dropped 16 bits' range (minus one unless the kept part is odd),
        # then drop them; a carry into the exponent rounds up to the next binade or to inf
        rounded = (bits + np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))) >> 16
        quiet_nan = (bits >> 16) | np.uint32(0x0040)  # keep NaNs NaN (rounding could make inf)
        top = np.where(np.isnan(np.asarray(a, np.float32)), quiet_nan, rounded)
    return np.array(top, np.uint16, order="C").view(BFLOAT16_BITS)  # (0-d stays 0-d)


class finfo:
    """The limits of a floating-point dtype, as torch.finfo: bits, eps, max, min, tiny
    (smallest normal), smallest_normal, resolution and dtype (its name).

    >>> import gradflow as gf
    >>> gf.finfo(gf.bfloat16).eps, gf.finfo(gf.float16).max
    (0.0078125, 65504.0)
    """

    # bfloat16 is float32 with 16 fewer mantissa bits: float32's range, 7-bit precision
    _BFLOAT16 = {"bits": 16, "eps": 2.0 ** -7, "max": 3.3895313892515355e38,
                 "tiny": builtins.float(np.finfo(np.float32).tiny), "resolution": 0.01}

    def __init__(self, type: Union[dtype, None] = None) -> None:
        d = _default_dtype if type is None else as_dtype(type)
        if not d.is_floating_point:
            raise TypeError(f"finfo: expected a floating-point dtype, got {d}")
        if d is bfloat16:
            values = dict(self._BFLOAT16)
        else:
            info = np.finfo(d.np)
            values = {"bits": info.bits, "eps": builtins.float(info.eps),
                      "max": builtins.float(info.max), "tiny": builtins.float(info.tiny),
                      "resolution": 10.0 ** -info.precision}
        self.bits, self.eps, self.max = values["bits"], values["eps"], values["max"]
        self.min, self.tiny, self.smallest_normal = -self.max, values["tiny"], values["tiny"]
        self.resolution, self.dtype = values["resolution"], d.name

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution}, min={self.min:.6e}, max={self.max:.6e}, "
                f"eps={self.eps:.6e}, smallest_normal={self.tiny:.6e}, tiny={self.tiny:.6e}, "
                f"dtype={self.dtype})")


class device:
    """Where a tensor lives: device('cpu'), device('cuda'), device('cuda', 0), device('cuda:0').

    >>> import gradflow as gf
    >>> gf.device('cuda:1'), str(gf.device('cpu'))
    (device(type='cuda', index=1), 'cpu')
    """

    __slots__ = ("type", "index")
    type: str
    index: Union[builtins.int, None]

    def __init__(self, type: DeviceLike, index: Union[builtins.int, None] = None) -> None:
        if isinstance(type, device):
            index = type.index if index is None else index
            type = type.type
        elif isinstance(type, builtins.int) and not isinstance(type, builtins.bool):
            index = type  # PyTorch's device=0: a CUDA device's index
            type = "cuda"
        if not isinstance(type, str):
            raise TypeError(f"device: expected a device, a string like 'cpu' or 'cuda:0', or a "
                            f"CUDA device index, got {builtins.type(type).__name__}")
        if ":" in type:
            type, idx = type.split(":", 1)
            if not idx.isdigit():
                raise ValueError(f"invalid device string: '{type}:{idx}'")
            index = builtins.int(idx)
        if type not in ("cpu", "cuda"):
            raise ValueError(f"device type must be 'cpu' or 'cuda', got '{type}'")
        if index is not None and (not isinstance(index, builtins.int) or index < 0):
            raise ValueError(f"device: index must be an int >= 0, got {index!r}")
        if type == "cuda" and index is None:
            index = 0
        self.type = type
        self.index = index

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            try:
                other = device(other)
            except ValueError:  # not a device string: not equal
                return False
        return isinstance(other, device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> builtins.int:
        return hash((self.type, self.index))

    def __repr__(self) -> str:
        idx = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{idx})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"
