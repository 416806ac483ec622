"""Indexing: slicing (a view), integer-array and boolean-mask indexing (a copy), gather,
scatter_add, index_select, index_add, and __setitem__.

Keys follow PyTorch, which differs from NumPy in two places: an int (or a 0-d long tensor) is
always a plain select, never part of the broadcast of index arrays, and a Python bool (or a
0-d bool tensor) adds a dim of size 1 (True) or 0 (False) where it stands."""

from __future__ import annotations

import math
import numbers
import operator
from collections import namedtuple
from typing import Any, List, Optional, Tuple, Union, cast

import numpy as np

from gradflow.autograd.function import Context, Function, Gradients
from gradflow.autograd.grad_mode import no_grad
from gradflow.ops import elementwise, reduce, shape
from gradflow.ops.common import INT64_MAX as _INT64_MAX
from gradflow.ops.common import (
    as_bool,
    as_int,
    broadcast_shapes,
    check_tensor,
    numpy_names,
    wrap_dim,
)
from gradflow.tensor import Tensor
from gradflow.types import Number, TensorLike, bool_, int64, uint8

Key = Tuple[Any, ...]  # a normalised key: ints, slices, None and backend index arrays


def _entry(x: Tensor, k: Any) -> Any:
    """One key entry as an int, slice, None, Ellipsis, Python bool or backend index array."""
    be = x._backend
    if isinstance(k, Tensor):
        if k._backend is not be:
            raise RuntimeError(
                f"index: indices are on {k.device} but the indexed tensor is on {x.device}"
            )
        if k.is_floating_point():
            raise IndexError(
                f"index: tensors used as indices must be long, int, byte or bool tensors, got "
                f"{k.dtype}"
            )
        if k.dtype not in (int64, bool_):  # int8/16/32 index as long; uint8 masks (PyTorch)
            k = k.to(bool_ if k.dtype is uint8 else int64)
        k = k._data
    elif isinstance(k, (list, range, np.ndarray)):
        a = np.asarray(k)
        if a.dtype.kind not in "iub" and a.size:
            raise IndexError(f"index: list/array indices must hold ints or bools, got {a.dtype}")
        k = be.from_numpy(a.astype(np.bool_ if a.dtype == np.bool_ else np.int64))
    elif isinstance(k, (bool, np.bool_)):
        return bool(k)
    elif isinstance(k, slice):
        return _slice(k)
    elif k is None or k is Ellipsis:
        return k
    elif isinstance(k, numbers.Integral):
        return int(k)
    else:
        raise IndexError(
            f"index: only integers, slices, None, Ellipsis, bools, and long or bool tensors are "
            f"valid indices, got {type(k).__name__}"
        )
    if k.ndim == 0:  # as PyTorch: a 0-d long index is an int, a 0-d bool index a Python bool
        value = be.to_numpy(k).item()
        return bool(value) if isinstance(value, bool) else int(value)
    return k


def _slice(k: slice) -> slice:
    """A slice of ints or None, its step not 0; bounds past int64 are clamped (they select
    the same as the int64 extremes)."""
    parts: List[Optional[int]] = []
    for part in (k.start, k.stop, k.step):
        if part is not None:
            try:
                part = operator.index(part)
            except TypeError:
                raise TypeError(f"index: slice indices must be integers or None, got "
                                f"{type(part).__name__}") from None
            part = max(min(part, _INT64_MAX), -_INT64_MAX)
        parts.append(part)
    if parts[2] == 0:
        raise ValueError("index: slice step cannot be zero")
    return slice(*parts)


def _dims_used(k: Any) -> int:
    if k is None or k is Ellipsis or isinstance(k, bool):
        return 0
    return int(k.ndim) if getattr(k, "dtype", None) == np.bool_ else 1


def _split_key(x: Tensor, key: Any) -> Tuple[Key, Optional[Key]]:
    """PyTorch's indexing in two steps: (basic, advanced). `basic` (ints, slices, None) is
    applied to x first and gives a view; `advanced` (slices, index arrays) is then applied to
    that view with NumPy's rules, or is None when there are no index arrays. So ints never join
    the broadcast of index arrays (x[0, :, [0, 1]] has shape (3, 2) for x of shape (2, 3, 4),
    as in PyTorch), and a bool adds a dim of size 1 (True) or 0 (False) where it stands."""
    entries = [_entry(x, k) for k in (key if isinstance(key, tuple) else (key,))]
    ellipses = [i for i, k in enumerate(entries) if k is Ellipsis]
    if len(ellipses) > 1:
        raise IndexError("index: an index can only have a single ellipsis ('...')")
    used = sum(_dims_used(k) for k in entries)
    if used > x.ndim:
        raise IndexError(
            f"index: too many indices for tensor of dimension {x.ndim} (shape {tuple(x.shape)})"
        )
    for i in ellipses:
        entries[i:i + 1] = [slice(None)] * (x.ndim - used)
    be = x._backend
    basic: List[Any] = []
    advanced: List[Any] = []
    has_arrays, dim = False, 0
    for k in entries:
        if k is None or isinstance(k, slice):
            basic.append(k)
            advanced.append(slice(None))
            dim += k is not None
        elif isinstance(k, bool):
            basic.append(None)
            advanced.append(be.from_numpy(np.zeros(1 if k else 0, np.int64)))
            has_arrays = True
        elif isinstance(k, int):
            size = x.shape[dim]
            if not -size <= k < size:
                raise IndexError(f"index {k} is out of bounds for dimension {dim} with size {size}")
            basic.append(k)
            dim += 1
        else:
            n = _dims_used(k)
            _check_array(x, k, dim)
            basic.extend([slice(None)] * n)
            advanced.append(k)
            has_arrays = True
            dim += n
    if has_arrays:
        _check_broadcast(x, advanced)
    return tuple(basic), (tuple(advanced) if has_arrays else None)


def _check_broadcast(x: Tensor, advanced: List[Any]) -> None:
    """The index arrays (a mask counts as its number of True entries) must broadcast."""
    arrays = [k for k in advanced if not isinstance(k, slice)]
    if len(arrays) < 2:
        return
    be = x._backend
    shapes = [(int(be.to_numpy(k).sum()),) if k.dtype == np.bool_ else tuple(k.shape)
              for k in arrays]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise IndexError(
            "index: shape mismatch: indexing tensors could not be broadcast together with shapes "
            + ", ".join(str(list(sh)) for sh in shapes)
        ) from None


def _check_array(x: Tensor, k: Any, dim: int) -> None:
    """An int64 index array must address existing positions; a bool mask must match the
    dims it covers."""
    be = x._backend
    if k.dtype == np.bool_:
        covered = tuple(x.shape[dim:dim + k.ndim])
        if tuple(k.shape) != covered:
            raise IndexError(
                f"index: the shape of the mask {list(k.shape)} at index {dim} does not match "
                f"the shape of the indexed tensor {list(x.shape)} at index {dim}"
            )
        return
    if k.size:
        size = x.shape[dim]
        lo = int(be.to_numpy(be.reduce("min", k, tuple(range(k.ndim)), False)))
        hi = int(be.to_numpy(be.reduce("max", k, tuple(range(k.ndim)), False)))
        if lo < -size or hi >= size:
            raise IndexError(
                f"index {hi if hi >= size else lo} is out of bounds for dimension {dim} with "
                f"size {size}"
            )


def _is_basic(key: Key) -> bool:
    return all(k is None or k is Ellipsis or isinstance(k, (int, slice)) for k in key)


def _is_everything(key: Key) -> bool:
    return all(isinstance(k, slice) and k == slice(None) for k in key)


class GetItem(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, x: Tensor, key: Key) -> Tensor:
        ctx.key, ctx.shape, ctx.dtype = key, x.shape, x.dtype
        be = x._backend
        out = Tensor._make(be.getitem(x._data, key), be)
        if _is_basic(key) and be.shares_memory(out._data, x._data):
            out._version, out._is_view = x._version, True
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        return IndexPut.apply(g, ctx.key, ctx.shape), None


class IndexPut(Function[Tensor]):
    """zeros(shape) with g added at `key` (repeated indices accumulate); the adjoint of x[key]."""

    @staticmethod
    def forward(ctx: Context, g: Tensor, key: Key, input_shape: Tuple[int, ...]) -> Any:
        ctx.key = key
        be = g._backend
        out = be.full(input_shape, 0, g._data.dtype)
        if _is_basic(key):
            be.setitem(out, key, g._data)
        else:
            be.index_add_(out, key, g._data)
        return out

    @staticmethod
    def backward(ctx: Context, gg: Tensor) -> Gradients:
        return gg[ctx.key], None, None


def getitem(x: Tensor, key: Any) -> Tensor:
    """x[key]: ints, slices, None, Ellipsis, bools, lists and int64/bool tensors as PyTorch
    reads them; a view for ints, slices and None, a copy with index arrays."""
    basic, advanced = _split_key(x, key)
    if advanced is None:
        return GetItem.apply(x, basic)
    view = x if _is_everything(basic) else GetItem.apply(x, basic)
    return GetItem.apply(view, advanced)


def put(x: Tensor, key: Any, value: Any) -> Tensor:
    """x with x[key] replaced by value (broadcast to x[key]'s shape), out of place and
    differentiable: where(written, placed, x), placed being getitem's adjoint applied to the
    value entries whose write survives (at a repeated index the last one, as an in-place
    write), so the gradient reaches x outside key and those value entries."""
    be = x._backend
    with no_grad():
        target = tuple(getitem(x, key).shape)
        int64_ = np.dtype(np.int64)
        ids = Tensor._make(be.arange(0, math.prod(target), 1, int64_), be).reshape(target)
        slot = Tensor._make(be.full(tuple(x.shape), -1, int64_), be)  # who wrote each entry
        setitem(slot, key, ids)
        written, survives = slot >= 0, getitem(slot, key) == ids
    if not isinstance(value, Tensor):
        value = Tensor._make(be.from_numpy(np.asarray(value, dtype=x._data.dtype)), be)
    try:
        value = shape.broadcast_to(value.to(x.dtype), target)
    except (ValueError, RuntimeError):
        raise ValueError(f"index assignment: value of shape {tuple(value.shape)} cannot be "
                         f"broadcast to the indexed shape {target}") from None
    value = elementwise.where(survives, value, 0)
    basic, advanced = _split_key(x, key)
    if advanced is None:
        placed = IndexPut.apply(value, basic, tuple(x.shape))
    else:
        view_shape = be.getitem(x._data, basic).shape
        placed = IndexPut.apply(value, advanced, view_shape)
        if not _is_everything(basic):
            placed = IndexPut.apply(placed, basic, tuple(x.shape))
    return elementwise.where(written, placed, x)


def setitem(x: Tensor, key: Any, value: Any) -> None:
    """x[key] = value written into x's storage, recording nothing (Tensor.__setitem__ goes
    through inplace.setitem, which records the write when x or value requires grad)."""
    basic, advanced = _split_key(x, key)
    if isinstance(value, Tensor):
        if value._backend is not x._backend:
            raise RuntimeError(
                f"index assignment: value is on {value.device} but the tensor is on {x.device}"
            )
        value = value._data
    elif not isinstance(value, numbers.Number):
        try:
            value = x._backend.from_numpy(np.asarray(value, dtype=x._data.dtype))
        except (TypeError, ValueError) as e:
            raise TypeError(f"index assignment: cannot assign a {type(value).__name__} value to "
                            f"a {x.dtype} tensor ({e})") from None
    be = x._backend
    try:
        if advanced is None:
            be.setitem(x._data, basic, value)
        else:  # the basic step keeps a dim for every index array, so it is a view, not a copy
            view = x._data if _is_everything(basic) else be.getitem(x._data, basic)
            be.setitem(view, advanced, value)
    except (ValueError, TypeError) as e:  # NumPy's words for a value that does not fit
        raise type(e)(f"index assignment into tensor of shape {tuple(x.shape)}: {e}") from None
    x._version[0] += 1


def _check_index(op: str, x: Tensor, dim: int, index: Tensor) -> int:
    check_tensor(x, op)
    if not isinstance(index, Tensor) or index.dtype is not int64:
        raise TypeError(f"{op}: index must be an int64 tensor")
    if index._backend is not x._backend:
        raise RuntimeError(f"{op}: index is on {index.device} but input is on {x.device}")
    return wrap_dim(dim, x.ndim, op)


def _check_range(op: str, index: Tensor, size: int) -> None:
    if index.numel():
        lo, hi = int(reduce.min(index)), int(reduce.max(index))
        if lo < -size or hi >= size:
            raise IndexError(
                f"{op}: index {hi if hi >= size else lo} is out of bounds for dimension with "
                f"size {size}"
            )


def _as_1d(t: Tensor) -> Tensor:
    """A one-element tensor as 1-D: the 0-d cases of the ops below run as 1-D ones."""
    return shape.reshape(t, (1,))


class Gather(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, x: Tensor, axis: int, index: Tensor) -> Any:
        ctx.axis, ctx.shape = axis, x.shape
        ctx.save_for_backward(index)
        be = x._backend
        crop = tuple(slice(None) if d == axis else slice(0, s) for d, s in enumerate(index.shape))
        return be.take_along_axis(be.getitem(x._data, crop), index._data, axis)

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        (index,) = ctx.saved_tensors
        zeros = Tensor._make(g._backend.full(ctx.shape, 0, g._data.dtype), g._backend)
        return scatter_add(zeros, ctx.axis, index, g), None, None


@numpy_names
def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """out[i][j] = x[index[i][j]][j] (dim=0), as torch.gather. A 0-d input counts as 1-D.

    >>> import gradflow as gf
    >>> x = gf.tensor([[1, 2], [3, 4]])
    >>> gf.gather(x, 1, gf.tensor([[1, 0], [1, 1]]))
    tensor([[2, 1],
            [4, 4]])
    """
    axis = _check_index("gather", x, dim, index)
    if x.ndim == 0 and index.ndim <= 1:
        return shape.reshape(gather(_as_1d(x), 0, shape.reshape(index, (-1,))), index.shape)
    if index.ndim != x.ndim or any(
        index.shape[d] > x.shape[d] for d in range(x.ndim) if d != axis
    ):
        raise ValueError(
            f"gather: index {tuple(index.shape)} must have the input's rank and no larger size "
            f"than input {tuple(x.shape)} outside dim {axis}"
        )
    _check_range("gather", index, x.shape[axis] if x.ndim else 1)
    return Gather.apply(x, axis, index)


class ScatterAdd(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, x: Tensor, axis: int, index: Tensor, src: Tensor) -> Any:
        ctx.axis = axis
        ctx.save_for_backward(index)
        be = x._backend
        out = be.copy(x._data)
        be.scatter_add_(out, axis, index._data, src._data)
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        (index,) = ctx.saved_tensors
        gsrc = gather(g, ctx.axis, index) if ctx.needs_input_grad[3] else None
        return g, None, None, gsrc


@numpy_names
def scatter_add(x: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """out = x; out[index[i][j]][j] += src[i][j] (dim=0), repeated indices accumulating.

    >>> import gradflow as gf
    >>> gf.zeros(3).scatter_add(0, gf.tensor([0, 2, 0]), gf.tensor([1.0, 2.0, 3.0]))
    tensor([4., 0., 2.])
    """
    axis = _check_index("scatter_add", x, dim, index)
    check_tensor(src, "scatter_add", "src")
    if x.ndim == 0 and index.ndim == src.ndim == 0:
        return shape.reshape(scatter_add(_as_1d(x), 0, _as_1d(index), _as_1d(src)), ())
    if index.ndim != x.ndim or src.ndim != x.ndim or any(
        index.shape[d] > src.shape[d] or (d != axis and index.shape[d] > x.shape[d])
        for d in range(x.ndim)
    ):
        raise ValueError(
            f"scatter_add: index {tuple(index.shape)} must fit in src {tuple(src.shape)} and, "
            f"outside dim {axis}, in input {tuple(x.shape)}"
        )
    _check_range("scatter_add", index, x.shape[axis] if x.ndim else 1)
    src = shape.to_dtype(src, x.dtype)
    return ScatterAdd.apply(x, axis, index, src)


class Scatter(Function[Tensor]):
    """out = x with out[..., index[i][j], ...] = src[i][j] along axis (the last write wins
    where index repeats). dx is g where nothing was written; dsrc = gather(g, axis, index)
    (zero where src is larger than index), as PyTorch's."""

    @staticmethod
    def forward(ctx: Context, x: Tensor, axis: int, index: Tensor, src: Optional[Tensor],
                value: Optional[Number]) -> Any:
        be = x._backend
        key = tuple(index._data if d == axis else be.from_numpy(positions)
                    for d, positions in enumerate(np.indices(index.shape, dtype=np.int64,
                                                             sparse=True)))
        written = be.full(x.shape, False, np.dtype(np.bool_))
        ctx.axis, ctx.src_shape = axis, None if src is None else src.shape
        ctx.save_for_backward(index, Tensor._make(written, be))
        out = be.copy(x._data)
        if not index.numel():
            return out
        be.setitem(written, key, True)
        if src is None:
            be.setitem(out, key, value)
        else:
            be.setitem(out, key, be.getitem(src._data, tuple(slice(0, n) for n in index.shape)))
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        index, written = ctx.saved_tensors
        gx = elementwise.where(written, 0, g) if ctx.needs_input_grad[0] else None
        gsrc = None
        if ctx.needs_input_grad[3]:
            gsrc = gather(g, ctx.axis, index)
            widths = [w for n, s in zip(index.shape, ctx.src_shape) for w in (0, s - n)]
            if any(widths):
                gsrc = shape.pad(gsrc, _torch_pad(widths))
        return gx, None, None, gsrc, None


def _torch_pad(widths: List[int]) -> List[int]:
    """(before, after) pairs listed from the first dim on, as F.pad's list (last dim first)."""
    pairs = [widths[i:i + 2] for i in range(0, len(widths), 2)]
    return [w for pair in reversed(pairs) for w in pair]


@numpy_names
def scatter(x: Tensor, dim: int, index: Tensor, src: Optional[TensorLike] = None, *,
            value: Optional[Number] = None, reduce: Optional[str] = None) -> Tensor:
    """out = x with out[index[i][j]][j] = src[i][j] (dim=0), or = value where src is a number;
    as torch.scatter. reduce='add' is scatter_add; where index repeats, the last write wins.

    >>> import gradflow as gf
    >>> gf.zeros(4).scatter(0, gf.tensor([1, 3]), gf.tensor([5.0, 6.0]))
    tensor([0., 5., 0., 6.])
    """
    if reduce is not None:
        if reduce != "add":
            raise ValueError(f"scatter: reduce must be None or 'add', got {reduce!r}")
        return scatter_add(x, dim, index, cast(Tensor, src))  # scatter_add checks src
    axis = _check_index("scatter", x, dim, index)
    if (src is None) == (value is None):
        raise TypeError("scatter: give exactly one of src (a Tensor or a number) and value")
    src = value if src is None else src
    if x.ndim == 0 and index.ndim == 0 and not (isinstance(src, Tensor) and src.ndim):
        one = scatter(_as_1d(x), 0, _as_1d(index), _as_1d(src) if isinstance(src, Tensor)
                      else src)
        return shape.reshape(one, ())
    if isinstance(src, Tensor):
        _check_fits("scatter", x, axis, index, src)
        src = shape.to_dtype(src, x.dtype)
    elif not isinstance(src, numbers.Number):
        raise TypeError(f"scatter: src must be a Tensor or a number, not {type(src).__name__}")
    else:
        _check_fits("scatter", x, axis, index, None)
    _check_range("scatter", index, x.shape[axis])
    if isinstance(src, Tensor):
        return Scatter.apply(x, axis, index, src, None)
    return Scatter.apply(x, axis, index, None, src)


def _check_fits(op: str, x: Tensor, axis: int, index: Tensor, src: Optional[Tensor]) -> None:
    """index has x's rank, fits in src and, outside axis, in x."""
    src_shape = index.shape if src is None else src.shape
    if src is not None and src._backend is not x._backend:
        raise RuntimeError(f"{op}: src is on {src.device} but input is on {x.device}")
    if index.ndim != x.ndim or len(src_shape) != x.ndim or any(
        index.shape[d] > src_shape[d] or (d != axis and index.shape[d] > x.shape[d])
        for d in range(x.ndim)
    ):
        raise ValueError(
            f"{op}: index {tuple(index.shape)} must have the input's rank, fit in src "
            f"{tuple(src_shape)} and, outside dim {axis}, in input {tuple(x.shape)}"
        )


@numpy_names
def index_select(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """The entries of x at the positions of a 1-D int64 index along dim, in new storage.

    >>> import gradflow as gf
    >>> x = gf.tensor([[1, 2], [3, 4], [5, 6]])
    >>> gf.index_select(x, 0, gf.tensor([2, 0]))
    tensor([[5, 6],
            [1, 2]])
    """
    axis = _check_index("index_select", x, dim, index)
    if index.ndim > 1:
        raise ValueError(f"index_select: index must be 1-D, got shape {tuple(index.shape)}")
    if x.ndim == 0:
        if index.numel() != 1:
            raise ValueError(f"index_select: an index into a 0-d tensor can have only 1 value, "
                             f"got {index.numel()}")
        return shape.reshape(index_select(_as_1d(x), 0, _as_1d(index)), ())
    _check_range("index_select", index, x.shape[axis])
    return GetItem.apply(x, (slice(None),) * axis + (shape.reshape(index, (-1,))._data,))


class IndexAdd(Function[Tensor]):
    @staticmethod
    def forward(ctx: Context, x: Tensor, key: Key, source: Tensor) -> Any:
        ctx.key = key
        be = x._backend
        out = be.copy(x._data)
        be.index_add_(out, key, source._data)
        return out

    @staticmethod
    def backward(ctx: Context, g: Tensor) -> Gradients:
        gsrc = g[ctx.key] if ctx.needs_input_grad[2] else None
        return g, None, gsrc


@numpy_names
def index_add(x: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha: Number = 1
              ) -> Tensor:
    """out = x; out[..., index[i], ...] += alpha * source[..., i, ...] along dim.

    >>> import gradflow as gf
    >>> gf.zeros(3).index_add(0, gf.tensor([0, 0, 2]), gf.tensor([1.0, 2.0, 3.0]))
    tensor([3., 0., 3.])
    """
    axis = _check_index("index_add", x, dim, index)
    check_tensor(source, "index_add", "source")
    if x.ndim == 0:
        if index.ndim or source.ndim:
            raise ValueError(f"index_add: a 0-d input needs a 0-d index and source, got index "
                             f"{tuple(index.shape)} and source {tuple(source.shape)}")
        one = index_add(_as_1d(x), 0, _as_1d(index), _as_1d(source), alpha=alpha)
        return shape.reshape(one, ())
    expected = x.shape[:axis] + (index.numel(),) + x.shape[axis + 1 :]
    if index.ndim > 1 or source.shape != expected:
        raise ValueError(
            f"index_add: source must have shape {expected} for input {tuple(x.shape)} and index "
            f"{tuple(index.shape)}, got {tuple(source.shape)}"
        )
    _check_range("index_add", index, x.shape[axis])
    if alpha != 1:
        source = source * alpha
    source = shape.to_dtype(source, x.dtype)
    return IndexAdd.apply(x, (slice(None),) * axis + (shape.reshape(index, (-1,))._data,), source)



# ---------------------------------------------------------------- sorting and selection
# The order of elements is found on the host with NumPy (no device kernel); the values are
# then gathered from the input, so their gradient scatters back to where each came from.
values_indices = namedtuple("values_indices", ["values", "indices"])


def _on_device(x: Tensor, a: np.ndarray[Any, Any]) -> Tensor:
    """A host array as a tensor on x's device."""
    return Tensor._make(x._backend.from_numpy(np.ascontiguousarray(a)), x._backend)


def _host(x: Tensor) -> np.ndarray[Any, Any]:
    return x._backend.to_numpy(x._data)


def _order(x: Tensor, axis: int, descending: bool) -> Tensor:
    """Indices that sort x along axis, stably (equal values keep their order; nan counts as
    the largest value). Descending: the ascending stable order of x reversed along axis,
    itself reversed, so that equal values still appear first-come first."""
    a = _host(x)
    if not descending:
        return _on_device(x, np.argsort(a, axis=axis, kind="stable").astype(np.int64))
    reversed_order = np.argsort(np.flip(a, axis), axis=axis, kind="stable")
    return _on_device(x, (a.shape[axis] - 1 - np.flip(reversed_order, axis)).astype(np.int64))


def _sort_axis(op: str, x: Tensor, dim: int) -> int:
    check_tensor(x, op)
    return wrap_dim(dim, x.ndim, op)


@numpy_names
def sort(x: Tensor, dim: int = -1, descending: bool = False, *, stable: bool = False
         ) -> values_indices:
    """(values, indices) of x sorted along dim; always stable (stable=False allows any order
    of equal values, and this one is it). nan sorts as the largest value, as in PyTorch.

    >>> import gradflow as gf
    >>> gf.sort(gf.tensor([3, 1, 2]))
    values_indices(values=tensor([1, 2, 3]), indices=tensor([1, 2, 0]))
    """
    axis = _sort_axis("sort", x, dim)
    descending = as_bool(descending, "sort", "descending")
    as_bool(stable, "sort", "stable")
    if x.ndim == 0:
        return values_indices(shape.clone(x), reduce._zero_index(x))
    indices = _order(x, axis, descending)
    return values_indices(gather(x, axis, indices), indices)


@numpy_names
def argsort(x: Tensor, dim: int = -1, descending: bool = False, *, stable: bool = False) -> Tensor:
    """The indices of sort(x, dim, descending).

    >>> import gradflow as gf
    >>> gf.argsort(gf.tensor([3, 1, 2]), descending=True)
    tensor([0, 2, 1])
    """
    axis = _sort_axis("argsort", x, dim)
    descending = as_bool(descending, "argsort", "descending")
    as_bool(stable, "argsort", "stable")
    if x.ndim == 0:
        return reduce._zero_index(x)
    return _order(x, axis, descending)


@numpy_names
def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True
         ) -> values_indices:
    """(values, indices) of the k largest (or smallest) elements along dim, in sorted order
    (also when sorted=False, which leaves the order free); ties keep the earlier index first.

    >>> import gradflow as gf
    >>> gf.topk(gf.tensor([1.0, 5.0, 3.0]), 2)
    values_indices(values=tensor([5., 3.]), indices=tensor([1, 2]))
    """
    axis = _sort_axis("topk", x, dim)
    k = as_int(k, "topk", "k")
    largest = as_bool(largest, "topk", "largest")
    as_bool(sorted, "topk", "sorted")
    size = x.shape[axis] if x.ndim else 1
    if not 0 <= k <= size:
        raise IndexError(f"topk: k ({k}) is out of range for dimension {axis} of size {size}")
    if x.ndim == 0:  # as a 1-D tensor of one element; k == 1 gives 0-d results back
        values, indices = topk(shape.reshape(x, (1,)), k)
        return values_indices(*(shape.reshape(t, ()) if k else t for t in (values, indices)))
    indices = shape.narrow(_order(x, axis, largest), axis, 0, k)
    return values_indices(gather(x, axis, indices), indices)


def masked_select(x: Tensor, mask: Tensor) -> Tensor:
    """The elements of x where mask (broadcast with x) is True, as a 1-D tensor in row-major
    order; the gradient flows back to the selected elements.

    >>> import gradflow as gf
    >>> x = gf.tensor([[1, -2], [-3, 4]])
    >>> gf.masked_select(x, x > 0)
    tensor([1, 4])
    """
    check_tensor(x, "masked_select")
    check_tensor(mask, "masked_select", "mask")
    if mask.dtype is not bool_:
        raise TypeError(f"masked_select: mask must be a bool tensor, got {mask.dtype}")
    if mask._backend is not x._backend:
        raise RuntimeError(f"masked_select: mask is on {mask.device} but input is on "
                           f"{x.device}")
    common = broadcast_shapes("masked_select", x.shape, mask.shape)
    if not common:
        return getitem(shape.reshape(x, (1,)), shape.reshape(mask, (1,)))
    return getitem(shape.expand(x, common), shape.expand(mask, common))


def nonzero(x: Tensor, *, as_tuple: bool = False) -> Union[Tensor, Tuple[Tensor, ...]]:
    """The indices of the nonzero elements of x: an (n, x.ndim) int64 tensor, one row per
    element in row-major order, or with as_tuple a tuple of x.ndim 1-D tensors (one for a
    0-d x, as PyTorch's).

    >>> import gradflow as gf
    >>> x = gf.tensor([[0, 1], [2, 0]])
    >>> gf.nonzero(x)
    tensor([[0, 1],
            [1, 0]])
    >>> x.nonzero(as_tuple=True)
    (tensor([0, 1]), tensor([1, 0]))
    """
    check_tensor(x, "nonzero")
    a = _host(x)
    if as_bool(as_tuple, "nonzero", "as_tuple"):
        return tuple(_on_device(x, i.astype(np.int64)) for i in np.nonzero(np.atleast_1d(a)))
    if a.ndim == 0:
        return _on_device(x, np.zeros((int(a != 0), 0), dtype=np.int64))
    return _on_device(x, np.argwhere(a).astype(np.int64))


def unique(x: Tensor, sorted: bool = True, return_inverse: bool = False,
           return_counts: bool = False, dim: Optional[int] = None
           ) -> Union[Tensor, Tuple[Tensor, ...]]:
    """The distinct values of x, sorted (also for sorted=False), or with dim the distinct
    slices along dim; with return_inverse, where each element (slice) of x is in the output;
    with return_counts, how often each occurs. nan values are each distinct, as in PyTorch.
    Not differentiable (as PyTorch's).

    >>> import gradflow as gf
    >>> gf.unique(gf.tensor([3, 1, 3, 2]), return_counts=True)
    (tensor([1, 2, 3]), tensor([1, 1, 2]))
    """
    check_tensor(x, "unique")
    for name, flag in (("sorted", sorted), ("return_inverse", return_inverse),
                       ("return_counts", return_counts)):
        as_bool(flag, "unique", name)
    a = _host(x)
    axis = None if dim is None else wrap_dim(dim, x.ndim, "unique")
    if axis is not None and a.ndim == 0:
        a = a.reshape(1)
    values, inverse, counts = np.unique(a, return_inverse=True, return_counts=True, axis=axis,
                                        equal_nan=False)
    inverse = inverse.reshape(x.shape if axis is None else (-1,)).astype(np.int64)
    out = [_on_device(x, values)]
    if return_inverse:
        out.append(_on_device(x, inverse))
    if return_counts:
        out.append(_on_device(x, counts.astype(np.int64)))
    return out[0] if len(out) == 1 else tuple(out)
