"""Helpers every op family shares: argument checks, operand coercion, dtype promotion and
broadcasting. It imports no other op module (they all import it)."""

from __future__ import annotations

import contextlib
import functools
import numbers
import operator
from typing import (
    Any,
    Callable,
    Iterable,
    Iterator,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
    cast,
)

import numpy as np

from gradflow.tensor import Tensor
from gradflow.types import Number, TensorLike, bool_, dtype, get_default_dtype, int64, promote_types

Scalar = Number


_NUMPY_NAMES = {"axis": "dim", "keepdims": "keepdim"}
_F = TypeVar("_F", bound=Callable[..., Any])


def made_from_row(fn: _F, name: str, module: str, summary: str, call: str = "",
                  result: str = "") -> _F:
    """fn as the public function `name` of `module` (one made in a loop from an op table row),
    with the docstring `summary` and, when `call` is given, the doctest `call` -> `result`."""
    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = module
    fn.__doc__ = summary + (call and f"""

    >>> import gradflow as gf
    >>> {call}
    {result}
    """)
    return fn


def numpy_names(fn: _F) -> _F:
    """Accept NumPy's keyword names where PyTorch does: axis= for dim=, keepdims= for
    keepdim= (passing both spellings of one argument is a TypeError)."""

    @functools.wraps(fn)
    def accepting_numpy_names(*args: Any, **kwargs: Any) -> Any:
        if not kwargs:  # the common call, x.sum()
            return fn(*args)
        for numpy_name in _NUMPY_NAMES.keys() & kwargs.keys():
            name = _NUMPY_NAMES[numpy_name]
            if name in kwargs:
                raise TypeError(f"{fn.__name__}() got both '{name}' and its alias "
                                f"'{numpy_name}'")
            kwargs[name] = kwargs.pop(numpy_name)
        return fn(*args, **kwargs)

    return accepting_numpy_names  # type: ignore[return-value]


def _category(d: dtype) -> int:
    """bool 0 < the integers 1 < the floats 2: a scalar raises a tensor's category only."""
    return 0 if d is bool_ else 2 if d.is_floating_point else 1


def _scalar_dtype(x: Scalar) -> dtype:
    if isinstance(x, bool):
        return bool_
    if isinstance(x, numbers.Integral):
        return int64
    return get_default_dtype()


def result_type(a: TensorLike, b: TensorLike) -> dtype:
    """PyTorch's promotion: a Python scalar or 0-d tensor only raises the category
    (bool < integer < float) of a dimensioned tensor, never its width."""
    if not isinstance(a, Tensor):
        a, b = b, a
    a = cast(Tensor, a)  # operands() has checked that one of them is a Tensor
    if not isinstance(b, Tensor):
        sd = _scalar_dtype(b)
        return a.dtype if _category(sd) <= _category(a.dtype) else (
            get_default_dtype() if sd.is_floating_point else sd
        )
    da, db = a.dtype, b.dtype
    if da is db:
        return da
    a_dim, b_dim = a.ndim > 0, b.ndim > 0
    if a_dim != b_dim:
        dim_t, zero_t = (da, db) if a_dim else (db, da)
        return dim_t if _category(zero_t) <= _category(dim_t) else zero_t
    return promote_types(da, db)


def check_same_device(op: str, a: Tensor, b: Tensor) -> None:
    if a._backend is not b._backend:
        raise RuntimeError(
            f"{op}: expected all tensors to be on the same device, but found at least two "
            f"devices, {a.device} and {b.device}!"
        )


def operands(
    op: str, a: TensorLike, b: TensorLike, broadcast: bool = True
) -> Tuple[TensorLike, TensorLike, dtype]:
    """Coerce a binary op's operands: at least one Tensor, both of the promoted dtype.
    A Python scalar stays a scalar (the backends take scalars directly). With `broadcast`,
    two tensors' shapes must broadcast together (elementwise ops)."""
    if isinstance(a, Tensor):  # fast paths: same dtype, or a float scalar with a float tensor
        if isinstance(b, Tensor):
            if a._data.dtype == b._data.dtype and a._backend is b._backend:
                if broadcast and not _broadcastable(a._data.shape, b._data.shape):
                    broadcast_shapes(op, a.shape, b.shape)  # raises naming the op and shapes
                return a, b, a.dtype
        elif (type(b) is float or type(b) is int) and a._data.dtype.kind == "f":
            return a, fit_scalar(op, b, a.dtype) if type(b) is int else b, a.dtype
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{op}: expected at least one Tensor operand")
    # A NumPy scalar counts as the Python number it holds, as in PyTorch (NumPy 2 would keep
    # its width: np.int64(2) * a float32 array is float64 there).
    a, b = (x.item() if isinstance(x, np.generic) else x for x in (a, b))
    for x in (a, b):
        if not isinstance(x, (Tensor, numbers.Number)):
            raise TypeError(
                f"{op}: unsupported operand type {type(x).__name__} (expected Tensor or number)"
            )
    from gradflow.ops.shape import to_dtype  # here: shape imports this module's helpers

    rt = result_type(a, b)
    a, b = (x if isinstance(x, Tensor) else fit_scalar(op, x, rt) for x in (a, b))
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        check_same_device(op, a, b)
        if broadcast and not _broadcastable(a._data.shape, b._data.shape):
            broadcast_shapes(op, a.shape, b.shape)  # raises naming the op and both shapes
    if isinstance(a, Tensor) and a.dtype is not rt:
        a = to_dtype(a, rt)
    if isinstance(b, Tensor) and b.dtype is not rt:
        b = to_dtype(b, rt)
    return a, b, rt


def _broadcastable(sa: Tuple[int, ...], sb: Tuple[int, ...]) -> bool:
    """Whether two shapes broadcast together: aligned from the last dim, each pair equal or
    one of them 1 (broadcast_shapes' test without building the result)."""
    if sa == sb:
        return True
    for da, db in zip(reversed(sa), reversed(sb)):
        if da != db and da != 1 and db != 1:
            return False
    return True


def fit_scalar(op: str, s: Number, rt: dtype) -> Number:
    """A Python int past int64 becomes a float for a float result; an int outside an integer
    result's range is a ValueError (NumPy would raise an OverflowError that names nothing)."""
    if type(s) is not int:
        return s
    if rt.is_floating_point:
        return s if -INT64_MAX - 1 <= s <= INT64_MAX else float(s)
    limits = np.iinfo(np.int64) if rt is bool_ else np.iinfo(rt.np)
    if not limits.min <= s <= limits.max:
        raise ValueError(f"{op}: the Python int {s} does not fit in {rt}")
    return s


def broadcast_shapes(op: str, *shapes: Sequence[int]) -> Tuple[int, ...]:
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for i in range(-ndim, 0):
        size = 1
        for s in shapes:
            d = s[i] if -i <= len(s) else 1
            if d != 1:
                if size != 1 and size != d:
                    raise ValueError(
                        f"{op}: shapes " + " and ".join(str(tuple(s)) for s in shapes)
                        + " cannot be broadcast together"
                    )
                size = d
        out.append(size)
    return tuple(out)


INT64_MAX = 2**63 - 1


def as_int(value: Any, op: str, arg: str) -> int:
    """An integer argument (a dim, size, start, length, ...): ints, NumPy ints and integer
    tensors of one element, within int64. Bools and floats are refused, as PyTorch refuses
    them, so that True never quietly means 1."""
    if isinstance(value, bool):
        raise TypeError(f"{op}: argument '{arg}' must be int, not bool")
    try:
        index = operator.index(value)
    except TypeError:
        raise TypeError(f"{op}: argument '{arg}' must be int, not {type(value).__name__}") from None
    if not -INT64_MAX - 1 <= index <= INT64_MAX:
        raise ValueError(f"{op}: argument '{arg}' = {index} does not fit in int64")
    return index


def as_ints(values: Any, op: str, arg: str) -> Tuple[int, ...]:
    """A sequence of integer arguments (a shape, sizes, pads), each checked by as_int."""
    if (isinstance(values, (str, bytes)) or not hasattr(values, "__iter__")
            or getattr(values, "ndim", 1) == 0):  # (a 0-d tensor or array has no items)
        raise TypeError(f"{op}: argument '{arg}' must be a sequence of ints, not "
                        f"{type(values).__name__}")
    return tuple(as_int(v, op, arg) for v in values)


def check_numel(shape: Tuple[int, ...], op: str, itemsize: int = 1) -> None:
    """A tensor of `shape` must be addressable: its element count, and its byte count for
    `itemsize` bytes an element, at most 2**63 - 1 (NumPy's limit, counted without zero-size
    dims). Raises before anything is allocated, naming the op and the shape."""
    n = 1
    for s in shape:
        n *= s or 1
    if n * itemsize > INT64_MAX:
        raise RuntimeError(
            f"{op}: a tensor of shape {tuple(shape)} is too large ({n} elements of "
            f"{itemsize} bytes overflow the 2**63 - 1 byte limit)"
        )


@contextlib.contextmanager
def allocating(op: str, shape: Tuple[int, ...], itemsize: int) -> Iterator[None]:
    """check_numel, then run the block that allocates a tensor of `shape`; a failed allocation
    in it becomes a MemoryError naming the op, the shape and the bytes."""
    check_numel(shape, op, itemsize)
    try:
        yield
    except MemoryError:
        n = itemsize
        for s in shape:
            n *= s
        raise MemoryError(
            f"{op}: cannot allocate {n} bytes for a tensor of shape {tuple(shape)}"
        ) from None


def wrap_dim(dim: Any, ndim: int, op: str, arg: str = "dim") -> int:
    """One dim in [-ndim, ndim), negative wrapping; a 0-d tensor takes 0 and -1 (as PyTorch)."""
    d = as_int(dim, op, arg)
    n = max(ndim, 1)
    if not -n <= d < n:
        raise IndexError(
            f"{op}: dimension out of range (expected to be in range of [{-n}, {n - 1}], "
            f"but got {d})"
        )
    return d % n


def normalize_dims(dim: Union[None, int, Iterable[int]], ndim: int, op: str,
                   arg: str = "dim") -> Tuple[int, ...]:
    """dim=None means all axes; one dim or a sequence of them; negative dims wrap; duplicates
    are an error. A 0-d tensor has no axes: the result is () whatever dim (0 or -1) says."""
    if dim is None:
        return tuple(range(ndim))
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    out = []
    for d in dims:
        d = wrap_dim(d, ndim, op, arg)
        if d in out:
            raise ValueError(f"{op}: dim {d} appears multiple times in the list of dims")
        out.append(d)
    return tuple(out) if ndim else ()


def reduction_dims(dim: Union[None, int, Iterable[int]], ndim: int, op: str
                   ) -> Tuple[int, ...]:
    """The dims a reduction runs over: None or an empty list/tuple means all of them (PyTorch
    2.x's sum, mean, var, std, norm and amax/amin treat dim=[] as dim=None)."""
    return normalize_dims(dim, ndim, op) or tuple(range(ndim))


def to_array(x: TensorLike, like: Optional[Tensor] = None) -> Any:
    """The backend array of a Tensor, or a Python scalar passed through."""
    return x._data if isinstance(x, Tensor) else x


def check_tensor(value: object, op: str, arg: str = "input", optional: bool = False) -> None:
    """A Tensor argument (or None, when optional); anything else is a TypeError naming the op
    and the argument, raised before the op touches it."""
    if not isinstance(value, Tensor) and not (optional and value is None):
        raise TypeError(f"{op}: argument '{arg}' must be a Tensor, not {type(value).__name__}")


def as_float(value: Any, op: str, arg: str) -> float:
    """A real-number argument (a rate, an epsilon, a bound): Python and NumPy numbers and
    one-element tensors; a str, None or a sequence is a TypeError naming the op and argument."""
    if isinstance(value, (numbers.Real, Tensor)) and not (isinstance(value, Tensor)
                                                          and value.numel() != 1):
        return float(value)
    raise TypeError(f"{op}: argument '{arg}' must be a number, not {type(value).__name__}")


def check_choice(value: Any, op: str, arg: str, choices: Tuple[str, ...]) -> str:
    """A string argument that must be one of `choices` (a mode, a reduction)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{op}: {value!r} is not a valid value for {arg} (expected one of "
                         f"{', '.join(map(repr, choices))})")
    return value


def as_size(value: Any, op: str, arg: str, minimum: int = 0) -> int:
    """An int argument that sizes something (features, channels, groups), at least minimum."""
    v = as_int(value, op, arg)
    if v < minimum:
        raise ValueError(f"{op}: {arg} must be at least {minimum}, got {v}")
    return v


def as_bool(value: Any, op: str, arg: str) -> bool:
    """A flag argument: a bool (or NumPy bool); an int, a tensor or anything else is a
    TypeError naming the op and the argument, as PyTorch's bool parameters."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{op}: argument '{arg}' must be bool, not {type(value).__name__}")
