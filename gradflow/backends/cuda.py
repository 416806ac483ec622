"""The CUDA backend: arrays are ``gradflow._cuda.DeviceArray`` (device memory from the
caching allocator, with shape, strides in elements, offset and a NumPy dtype).

Views (reshape, permute, broadcast, flip, basic slicing) are stride arithmetic done here and
checked by ``DeviceArray.as_strided`` against the storage bounds; everything that touches
values is a kernel of ``gradflow._cuda``. Dtype rules follow NumPy 2 (a Python scalar takes
the array's dtype unless it is a float meeting an integer array).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from gradflow import _cuda, op_table
from gradflow.backends.base import Backend
from gradflow.types import HALF_FLOATS, from_numpy_dtype

DeviceArray = _cuda.DeviceArray
Shape = Tuple[int, ...]

_F32, _F64, _I64, _BOOL = (np.dtype(t) for t in (np.float32, np.float64, np.int64, np.bool_))
_FLOATS = (_F32, _F64)
_PREDICATES = frozenset(op_table.names(op_table.UNARY, op_table.BOOL))
_INT_OK = frozenset(op_table.names(op_table.UNARY, op_table.INT))
_COMPARE = frozenset(op_table.names(op_table.BINARY, op_table.BOOL))


def _is_scalar(v) -> bool:
    return isinstance(v, (numbers.Number, np.generic)) and not isinstance(v, DeviceArray)


def _scalar(v):
    return v.item() if isinstance(v, np.generic) else v


def _scalar_dtype(s, d: np.dtype) -> np.dtype:
    """NumPy 2's rule for `array(d) op python_scalar(s)`."""
    if isinstance(s, bool):
        return d
    if isinstance(s, numbers.Integral):
        return _I64 if d == _BOOL else d
    return d if d in _FLOATS else _F64


def _result_dtype(a, b) -> np.dtype:
    if _is_scalar(a) and _is_scalar(b):
        return np.result_type(_scalar(a), _scalar(b))
    if _is_scalar(a):
        return _scalar_dtype(_scalar(a), b.dtype)
    if _is_scalar(b):
        return _scalar_dtype(_scalar(b), a.dtype)
    return np.result_type(a.dtype, b.dtype)


def _contiguous_strides(shape: Shape) -> Tuple[int, ...]:
    strides, s = [], 1
    for n in reversed(shape):
        strides.append(s)
        s *= max(n, 1)
    return tuple(reversed(strides))


def _view(x, shape, strides, offset) -> DeviceArray:
    return x.as_strided(tuple(int(s) for s in shape), tuple(int(s) for s in strides), int(offset))


def _nocopy_strides(shape: Shape, strides: Shape, new: Shape):
    """Strides that view (shape, strides) as `new` without copying, or None (NumPy's rule)."""
    old = [(n, s) for n, s in zip(shape, strides) if n != 1]
    out = [0] * len(new)
    oi = ni = 0
    while ni < len(new) and oi < len(old):
        if new[ni] == 1:
            ni += 1
            continue
        nj, oj = ni + 1, oi + 1
        np_, op = new[ni], old[oi][0]
        while np_ != op:
            if np_ < op:
                np_ *= new[nj]
                nj += 1
            else:
                op *= old[oj][0]
                oj += 1
        for k in range(oi, oj - 1):
            if old[k][1] != old[k + 1][0] * old[k + 1][1]:
                return None
        out[nj - 1] = old[oj - 1][1]
        for k in range(nj - 1, ni, -1):
            out[k - 1] = out[k] * new[k]
        ni, oi = nj, oj
    return tuple(out)


def _extent(x) -> Tuple[int, int]:
    """Byte range [lo, hi) that x's elements occupy in device memory."""
    lo = hi = x.offset
    for n, s in zip(x.shape, x.strides):
        if n == 0:
            return (0, 0)
        if s < 0:
            lo += (n - 1) * s
        else:
            hi += (n - 1) * s
    return x.storage_ptr + lo * x.itemsize, x.storage_ptr + (hi + 1) * x.itemsize


def _wait_for_us(stream: Optional[int]) -> None:
    """Makes a DLPack consumer's stream wait for the work queued on ours, per the protocol's
    codes: None or 1 the legacy default stream, 2 the per-thread default stream, a larger int a
    cudaStream_t, -1 no wait (the consumer synchronises itself)."""
    if stream == -1:
        return
    stream = 1 if stream is None else stream
    if isinstance(stream, bool) or not isinstance(stream, numbers.Integral) or stream < 1:
        raise ValueError(f"__dlpack__: stream must be None, -1, 1, 2 or a CUDA stream handle, "
                         f"got {stream!r} (0 is ambiguous in the DLPack protocol)")
    _cuda.dlpack_stream_wait(int(stream))


class CUDABackend(Backend):
    """Every Backend method on one GPU (device 0 is the one the kernels run on)."""

    def __init__(self, index: int = 0) -> None:
        if index != 0:
            raise RuntimeError(f"gradflow runs CUDA kernels on device 0 only, got cuda:{index}")
        self.index = index
        self.name = f"cuda:{index}"

    # ---------------------------------------------------------------- creation / copies
    def from_numpy(self, a):
        a = np.asarray(a)
        _check_not_half(a.dtype)
        return _cuda.from_numpy(a)

    def to_numpy(self, x):
        return _cuda.to_numpy(x)

    def empty(self, shape, dtype):
        _check_not_half(np.dtype(dtype))
        return _cuda.empty(tuple(shape), np.dtype(dtype))

    def full(self, shape, value, dtype):
        out = self.empty(shape, dtype)
        _cuda.fill_(out, _scalar(value))
        return out

    def arange(self, start, stop, step, dtype):
        dtype = np.dtype(dtype)
        if dtype == _I64 and all(isinstance(v, numbers.Integral) for v in (start, stop, step)):
            n = len(range(int(start), int(stop), int(step)))
        else:
            n = max(0, math.ceil((stop - start) / step))
        return _cuda.arange(n, start, step, dtype)

    def astype(self, x, dtype):
        out = self.empty(x.shape, dtype)
        _cuda.copy_(out, x)
        return out

    def copy(self, x):
        return self.astype(x, x.dtype)

    def copy_(self, dst, src):
        if _is_scalar(src):
            _cuda.fill_(dst, _scalar(src))
            return
        src = self._as_array(src)
        if self.shares_memory(dst, src):
            src = self.copy(src)
        _cuda.copy_(dst, self.broadcast_to(src, dst.shape))

    def _as_array(self, v):
        return v if isinstance(v, DeviceArray) else self.from_numpy(np.asarray(v))

    # ---------------------------------------------------------------- random numbers
    def manual_seed(self, seed):
        _cuda.manual_seed(int(seed) & 0xFFFFFFFFFFFFFFFF)

    def _random(self, kind, shape, dtype, low=0, high=1):
        out = self.empty(shape, dtype)
        _cuda.random(kind, out, low, high)
        return out

    def rand(self, shape, dtype):
        return self._random("uniform", shape, dtype)

    def randn(self, shape, dtype):
        return self._random("normal", shape, dtype)

    def randint(self, low, high, shape):
        if high <= low:
            raise ValueError(f"randint: low >= high ({low} >= {high})")
        return self._random("integer", shape, _I64, int(low), int(high))

    def randperm(self, n):
        keys = self.to_numpy(self._random("bits", (n,), _I64))
        return self.from_numpy(np.argsort(keys, kind="stable").astype(np.int64))

    # ---------------------------------------------------------------- elementwise
    def unary(self, op, x):
        if op in _PREDICATES:
            out = self.empty(x.shape, _BOOL)
        else:
            if x.dtype not in _FLOATS and (op not in _INT_OK or x.dtype == _BOOL):
                x = self.astype(x, _F64 if x.dtype == _I64 else _F32)
            out = self.empty(x.shape, x.dtype)
        _cuda.unary(op, out, x)
        return out

    def _operands(self, a, b, compute):
        """Both operands as arrays of dtype `compute` broadcast to one shape (or scalars)."""
        arrays = [v for v in (a, b) if not _is_scalar(v)]
        shape = np.broadcast_shapes(*(v.shape for v in arrays)) if arrays else ()
        ops = []
        for v in (a, b):
            if _is_scalar(v):
                ops.append(_scalar(v))
            else:
                v = v if v.dtype == compute else self.astype(v, compute)
                ops.append(self.broadcast_to(v, shape))
        return ops, shape

    def _compute_dtype(self, op, a, b):
        dt = _result_dtype(self._as_operand(a), self._as_operand(b))
        if op == "div" and dt not in _FLOATS:
            dt = _F64
        return dt

    def _as_operand(self, v):
        return v if _is_scalar(v) else self._as_array(v)

    def binary(self, op, a, b):
        a, b = self._as_operand(a), self._as_operand(b)
        compute = self._compute_dtype(op, a, b)
        (oa, ob), shape = self._operands(a, b, compute)
        out = self.empty(shape, _BOOL if op in _COMPARE else compute)
        _cuda.binary(op, out, oa, ob, compute)
        return out

    def binary_(self, op, a, b):
        b = self._as_operand(b)
        compute = self._compute_dtype(op, a, b)
        out_dtype = _BOOL if op in _COMPARE else compute
        if not _is_scalar(b) and self.shares_memory(a, b):
            b = self.copy(b)
        if compute == a.dtype and out_dtype == a.dtype:
            ob = b if _is_scalar(b) else self._operands(b, 0, compute)[0][0]
            ob = ob if _is_scalar(ob) else self.broadcast_to(ob, a.shape)
            _cuda.binary(op, a, a, ob, compute)
        else:
            _cuda.copy_(a, self.broadcast_to(self.binary(op, a, b), a.shape))

    def where(self, cond, a, b):
        cond = self._as_array(cond)
        if cond.dtype != _BOOL:
            cond = self.astype(cond, _BOOL)
        a, b = self._as_operand(a), self._as_operand(b)
        dt = _result_dtype(a, b)
        shapes = [cond.shape] + [v.shape for v in (a, b) if not _is_scalar(v)]
        shape = np.broadcast_shapes(*shapes)
        ops = [
            _scalar(v) if _is_scalar(v)
            else self.broadcast_to(v if v.dtype == dt else self.astype(v, dt), shape)
            for v in (a, b)
        ]
        out = self.empty(shape, dt)
        _cuda.where(out, self.broadcast_to(cond, shape), ops[0], ops[1])
        return out

    def clip(self, x, lo, hi):
        out = x
        if lo is not None:
            out = self.binary("maximum", out, lo)
        if hi is not None:
            out = self.binary("minimum", out, hi)
        if out is x:
            return self.copy(x)
        return out if out.dtype == x.dtype else self.astype(out, x.dtype)

    # ---------------------------------------------------------------- reductions
    def reduce(self, op, x, axes, keepdims):
        axes = tuple(sorted(set(axes)))
        if op in ("all", "any"):
            dt = _BOOL
        elif op in ("sum", "prod"):
            dt = x.dtype if x.dtype in _FLOATS else _I64
        elif op == "mean":
            dt = x.dtype if x.dtype in _FLOATS else _F64
            if x.dtype != dt:
                x = self.astype(x, dt)
        else:
            dt = x.dtype
        kept = tuple(d for d in range(x.ndim) if d not in axes)
        out_shape = tuple(x.shape[d] for d in kept)
        reduced = math.prod(x.shape[d] for d in axes)
        if reduced == 0 and op in ("max", "min") and math.prod(out_shape) > 0:
            name = "maximum" if op == "max" else "minimum"
            raise ValueError(f"zero-size array to reduction operation {name} which has no identity")
        out = self.empty(out_shape, dt)
        _cuda.reduce(op, out, self.permute(x, kept + axes), len(axes))
        if keepdims:
            out = self.reshape(out, tuple(1 if d in axes else n for d, n in enumerate(x.shape)))
        return out

    def argreduce(self, op, x, axis, keepdims):
        if x.ndim == 0:
            x = self.reshape(x, (1,))
            axis = 0
        order = tuple(d for d in range(x.ndim) if d != axis) + (axis,)
        out = self.empty(tuple(x.shape[d] for d in order[:-1]), _I64)
        _cuda.argreduce(op, out, self.permute(x, order))
        if keepdims:
            out = self.reshape(out, tuple(1 if d == axis else n for d, n in enumerate(x.shape)))
        return out

    # ---------------------------------------------------------------- views and layout
    def reshape(self, x, shape):
        shape = tuple(int(s) for s in shape)
        if -1 in shape:
            known = math.prod(s for s in shape if s != -1)
            fill = x.size // known if known else 0
            shape = tuple(fill if s == -1 else s for s in shape)
        if math.prod(shape) != x.size:
            raise ValueError(f"cannot reshape array of size {x.size} into shape {shape}")
        if x.is_contiguous:
            return _view(x, shape, _contiguous_strides(shape), x.offset)
        strides = _nocopy_strides(x.shape, x.strides, shape)
        if strides is None:
            x = self.copy(x)
            strides = _contiguous_strides(shape)
        return _view(x, shape, strides, x.offset)

    def permute(self, x, axes):
        axes = tuple(axes)
        if sorted(axes) != list(range(x.ndim)):
            raise ValueError(f"permute: axes {axes} are not a permutation of {x.ndim} dims")
        return _view(x, [x.shape[a] for a in axes], [x.strides[a] for a in axes], x.offset)

    def broadcast_to(self, x, shape):
        shape = tuple(shape)
        if x.shape == shape:
            return x
        lead = len(shape) - x.ndim
        if lead < 0:
            raise ValueError(f"cannot broadcast shape {x.shape} to {shape}")
        strides = [0] * lead
        for n, s, t in zip(x.shape, x.strides, shape[lead:]):
            if n != t and n != 1:
                raise ValueError(f"cannot broadcast shape {x.shape} to {shape}")
            strides.append(s if n == t else 0)
        return _view(x, shape, strides, x.offset)

    def flip(self, x, axes):
        strides, offset = list(x.strides), x.offset
        for a in axes:
            if x.shape[a] > 0:
                offset += (x.shape[a] - 1) * strides[a]
                strides[a] = -strides[a]
        return _view(x, x.shape, strides, offset)

    def _index_array(self, k):
        return k if isinstance(k, DeviceArray) else self.from_numpy(np.asarray(k))

    def _basic(self, x, key):
        """Applies ints, slices and None; index arrays stay. Returns the view and a list of
        (view dim, int64 index array) for the advanced entries, in key order."""
        key = key if isinstance(key, tuple) else (key,)
        key = tuple(self._index_array(k) if isinstance(k, (list, np.ndarray)) else k for k in key)
        used = sum(
            k.ndim if isinstance(k, DeviceArray) and k.dtype == _BOOL else 1
            for k in key if k is not None and k is not Ellipsis
        )
        if used > x.ndim:
            raise IndexError(f"too many indices for array: array is {x.ndim}-dimensional, "
                             f"but {used} were indexed")
        i = key.index(Ellipsis) if Ellipsis in key else len(key)
        key = key[:i] + (slice(None),) * (x.ndim - used) + key[i + 1:]
        shape, strides, offset, adv, dim = [], [], x.offset, [], 0
        for k in key:
            if k is None:
                shape.append(1)
                strides.append(0)
            elif isinstance(k, slice):
                start, stop, step = k.indices(x.shape[dim])
                n = len(range(start, stop, step))
                if n > 0:
                    offset += start * x.strides[dim]
                shape.append(n)
                strides.append(x.strides[dim] * step)
                dim += 1
            elif isinstance(k, DeviceArray):
                if k.dtype == _BOOL:
                    mask_shape = tuple(x.shape[dim:dim + k.ndim])
                    if k.shape != mask_shape:
                        raise IndexError(f"boolean index of shape {k.shape} does not match "
                                         f"indexed dims of shape {mask_shape}")
                    for idx in np.nonzero(self.to_numpy(k)):
                        adv.append((len(shape), self.from_numpy(idx.astype(np.int64))))
                        shape.append(x.shape[dim])
                        strides.append(x.strides[dim])
                        dim += 1
                else:
                    if k.dtype != _I64:
                        k = self.astype(k, _I64)
                    adv.append((len(shape), k))
                    shape.append(x.shape[dim])
                    strides.append(x.strides[dim])
                    dim += 1
            else:
                i, n = int(k), x.shape[dim]
                if not -n <= i < n:
                    raise IndexError(f"index {i} is out of bounds for axis {dim} with size {n}")
                offset += (i % n) * x.strides[dim]
                dim += 1
        return _view(x, shape, strides, offset), adv

    def _advanced(self, view, adv):
        """(target, index arrays, nb, kernel-order shape, perm to result order) for adv."""
        pos = [p for p, _ in adv]
        b = np.broadcast_shapes(*(a.shape for _, a in adv))
        rest = [d for d in range(view.ndim) if d not in pos]
        target = self.permute(view, tuple(pos) + tuple(rest))
        idx = [self.broadcast_to(a, b) for _, a in adv]
        kshape = tuple(b) + tuple(view.shape[d] for d in rest)
        nb, perm = len(b), None
        if pos == list(range(pos[0], pos[0] + len(pos))) and pos[0] > 0:
            # adjacent index arrays: the broadcast dims replace them in place (NumPy's rule)
            p = pos[0]
            perm = tuple(range(nb, nb + p)) + tuple(range(nb)) + tuple(range(nb + p, len(kshape)))
        return target, idx, nb, kshape, perm

    def getitem(self, x, key):
        view, adv = self._basic(x, key)
        if not adv:
            return view
        target, idx, nb, kshape, perm = self._advanced(view, adv)
        out = self.empty(kshape, x.dtype)
        _cuda.index("gather", target, idx, nb, out)
        return out if perm is None else self.permute(out, perm)

    def _scatter(self, mode, x, key, value):
        view, adv = self._basic(x, key)
        value = self._as_operand(value)
        if _is_scalar(value):
            value = self.full((), value, x.dtype)
        elif value.dtype != x.dtype:
            value = self.astype(value, x.dtype)
        elif self.shares_memory(value, x):
            value = self.copy(value)
        if not adv:
            if mode == "put":
                _cuda.copy_(view, self.broadcast_to(value, view.shape))
            else:
                self.binary_("add", view, value)
            return
        target, idx, nb, kshape, perm = self._advanced(view, adv)
        if perm is not None:
            result_shape = tuple(kshape[p] for p in perm)
            inverse = tuple(int(i) for i in np.argsort(perm))
            value = self.permute(self.broadcast_to(value, result_shape), inverse)
        _cuda.index(mode, target, idx, nb, self.broadcast_to(value, kshape))

    def setitem(self, x, key, value):
        self._scatter("put", x, key, value)

    def is_contiguous(self, x):
        return x.is_contiguous

    def contiguous(self, x):
        return x if x.is_contiguous else self.copy(x)

    def data_ptr(self, x):
        return x.storage_ptr + x.offset * x.itemsize

    def owns_memory(self, x):
        return False  # (not tracked for device arrays: autograd copies a leaf's first gradient)

    def shares_memory(self, a, b):
        """Whether the byte ranges overlap: by address, so arrays over one block through two
        storages (a DLPack import of our own memory) count too."""
        if not isinstance(b, DeviceArray):
            return False
        (alo, ahi), (blo, bhi) = _extent(a), _extent(b)
        return alo < bhi and blo < ahi

    # ---------------------------------------------------------------- DLPack
    def dlpack_export(self, x: DeviceArray, stream: Optional[int] = None,
                      max_version: Optional[Tuple[int, int]] = None,
                      dl_device: Optional[Tuple[int, int]] = None,
                      copy: Optional[bool] = None) -> Any:
        """The DLPack protocol's ``__dlpack__`` for x: a capsule sharing x's memory, versioned
        when ``max_version >= (1, 0)``. ``copy=True`` (or a view with negative strides, which
        DLPack consumers do not take, unless ``copy=False``) exports a contiguous copy;
        ``dl_device=(1, 0)`` a host copy. The consumer's ``stream`` waits for our queued work."""
        versioned = max_version is not None and tuple(max_version)[0] >= 1
        if dl_device is not None and tuple(dl_device) != (2, self.index):
            if tuple(dl_device) != (1, 0) or copy is False:
                raise BufferError(f"__dlpack__: cannot export a cuda:{self.index} tensor to "
                                  f"DLPack device {tuple(dl_device)} with copy={copy}")
            host = self.to_numpy(x)
            return host.__dlpack__(max_version=max_version) if versioned else host.__dlpack__()
        flipped = any(s < 0 for s in x.strides)
        if flipped and copy is False:
            raise BufferError(f"__dlpack__: a view with negative strides {x.strides} needs a "
                              f"copy to be shared, and copy=False")
        copied = bool(copy) or flipped
        if copied:
            x = self.copy(x)
        _wait_for_us(stream)
        return _cuda.to_dlpack(x, versioned, copied)

    def dlpack_import(self, obj: Any) -> DeviceArray:
        """A device array sharing the memory of `obj`, a producer whose ``__dlpack_device__``
        is (2, self.index); the producer makes our stream wait for its work."""
        stream = _cuda.stream_handle()
        try:
            capsule = obj.__dlpack__(stream=stream, max_version=(1, 0))
        except TypeError:  # a producer older than DLPack 1.0 takes no max_version
            capsule = obj.__dlpack__(stream=stream)
        return _cuda.from_dlpack(capsule)

    # ---------------------------------------------------------------- joining, gather/scatter
    def concatenate(self, xs: Sequence, axis):
        xs = [self._as_array(x) for x in xs]
        if not xs:
            raise ValueError("need at least one array to concatenate")
        dt = np.result_type(*(x.dtype for x in xs))
        first = xs[0].shape
        for x in xs:
            if x.ndim != len(first) or any(
                n != m for d, (n, m) in enumerate(zip(x.shape, first)) if d != axis
            ):
                raise ValueError(f"concatenate: shapes {first} and {x.shape} differ outside "
                                 f"axis {axis}")
        shape = list(first)
        shape[axis] = sum(x.shape[axis] for x in xs)
        out = self.empty(tuple(shape), dt)
        start = 0
        for x in xs:
            n = x.shape[axis]
            key = (slice(None),) * axis + (slice(start, start + n),)
            _cuda.copy_(self._basic(out, key)[0], x)
            start += n
        return out

    def pad(self, x, pad_width, value):
        shape = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape, pad_width))
        out = self.full(shape, value, x.dtype)
        key = tuple(slice(lo, lo + n) for n, (lo, _) in zip(x.shape, pad_width))
        _cuda.copy_(self._basic(out, key)[0], x)
        return out

    def take_along_axis(self, x, index, axis):
        if index.ndim != x.ndim:
            raise ValueError(f"take_along_axis: index {index.shape} and input {x.shape} "
                             "must have the same number of dimensions")
        others = lambda s: tuple(1 if d == axis else n for d, n in enumerate(s))  # noqa: E731
        shape = list(np.broadcast_shapes(others(x.shape), others(index.shape)))
        shape[axis] = index.shape[axis]
        shape = tuple(shape)
        xs = list(x.shape)
        xs[axis] = 1
        xv = self.broadcast_to(_view(x, xs, x.strides, x.offset), others(shape))
        xv = _view(x, [x.shape[axis] if d == axis else n for d, n in enumerate(xv.shape)],
                   [x.strides[axis] if d == axis else s for d, s in enumerate(xv.strides)],
                   x.offset)
        out = self.empty(shape, x.dtype)
        _cuda.axis_index("gather", xv, axis, self.broadcast_to(index, shape), out)
        return out

    def scatter_add_(self, out, axis, index, src):
        for d, (n, m) in enumerate(zip(index.shape, src.shape)):
            if n > m or (d != axis and n > out.shape[d]):
                raise ValueError(f"scatter_add_: index {index.shape} is larger than src "
                                 f"{src.shape} or out {out.shape} at dim {d}")
        view_shape = [out.shape[axis] if d == axis else n for d, n in enumerate(index.shape)]
        target = _view(out, view_shape, out.strides, out.offset)
        src = self._basic(src, tuple(slice(0, n) for n in index.shape))[0]
        if src.dtype != out.dtype:
            src = self.astype(src, out.dtype)
        _cuda.axis_index("add", target, axis, index, src)

    def index_add_(self, out, key, values):
        self._scatter("add", out, key, values)

    # ---------------------------------------------------------------- linear algebra
    def matmul(self, a, b):
        if a.ndim < 2 or b.ndim < 2:
            raise ValueError(f"matmul: needs at least 2-D inputs, got {a.shape} and {b.shape}")
        dt = np.result_type(a.dtype, b.dtype)
        if dt.kind in "iu":  # exact integer products have no kernel: NumPy's, on the host
            return self.from_numpy(np.matmul(self.to_numpy(a), self.to_numpy(b)))
        if dt not in _FLOATS:
            raise TypeError(f"matmul: needs float arrays, got {a.dtype} and {b.dtype}")
        m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
        if b.shape[-2] != k:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied "
                             f"({k} != {b.shape[-2]})")
        batch = tuple(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
        a3, b3 = (self._batch3(v, dt, batch) for v in (a, b))
        out = self.empty((math.prod(batch), m, n), dt)
        _cuda.gemm(a3, b3, out)
        return self.reshape(out, batch + (m, n))

    def _batch3(self, v, dt, batch: Shape):
        """v as a C-contiguous (B, rows, cols) array; B is 1 when v has no batch to speak of."""
        if v.dtype != dt:
            v = self.astype(v, dt)
        rows, cols = v.shape[-2:]
        if math.prod(v.shape[:-2]) == 1:
            return self.reshape(self.contiguous(v), (1, rows, cols))
        v = self.contiguous(self.broadcast_to(v, batch + (rows, cols)))
        return self.reshape(v, (math.prod(batch), rows, cols))

    # ---------------------------------------------------------------- convolution
    # The kernels take C-contiguous arrays and check them as the CPU's do (same errors).
    def conv2d(self, x, weight, bias, stride, padding, dilation, groups):
        b = None if bias is None else self.contiguous(bias)
        return _cuda.conv2d_forward(self.contiguous(x), self.contiguous(weight), b, stride,
                                    padding, dilation, groups)

    def conv2d_backward_input(self, grad, weight, input_size, stride, padding, dilation, groups):
        return _cuda.conv2d_backward_input(self.contiguous(grad), self.contiguous(weight),
                                           input_size, stride, padding, dilation, groups)

    def conv2d_backward_weight(self, x, grad, kernel_size, stride, padding, dilation, groups):
        return _cuda.conv2d_backward_weight(self.contiguous(x), self.contiguous(grad),
                                            kernel_size, stride, padding, dilation, groups)

    def channel_sum(self, x):
        return _cuda.channel_sum(self.contiguous(x))

    # ---------------------------------------------------------------- nn kernels: pooling
    # (csrc/cuda/pool.cu; inputs made C-contiguous here, checked again by gradflow._cuda;
    # interpolate and its backward are fused kernels, see base.FUSED_KERNELS)
    def max_pool2d(self, x, kernel_size, stride, padding, dilation, ceil_mode):
        return _cuda.max_pool2d(self.contiguous(x), kernel_size, stride, padding, dilation,
                                ceil_mode)

    def adaptive_max_pool2d(self, x, output_size):
        return _cuda.adaptive_max_pool2d(self.contiguous(x), output_size)

    def max_pool2d_backward(self, grad, indices, input_size):
        return _cuda.max_pool2d_backward(self.contiguous(grad), self.contiguous(indices),
                                         input_size)

    def max_unpool2d(self, x, indices, output_size):
        return _cuda.max_unpool2d(self.contiguous(x), self.contiguous(indices), output_size)

    def avg_pool2d(self, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                   divisor_override):
        return _cuda.avg_pool2d(self.contiguous(x), kernel_size, stride, padding, ceil_mode,
                                count_include_pad, divisor_override)

    def avg_pool2d_backward(self, grad, input_size, kernel_size, stride, padding, ceil_mode,
                            count_include_pad, divisor_override):
        return _cuda.avg_pool2d_backward(self.contiguous(grad), input_size, kernel_size, stride,
                                         padding, ceil_mode, count_include_pad, divisor_override)

    def adaptive_avg_pool2d(self, x, output_size):
        return _cuda.adaptive_avg_pool2d(self.contiguous(x), output_size)

    def adaptive_avg_pool2d_backward(self, grad, input_size):
        return _cuda.adaptive_avg_pool2d_backward(self.contiguous(grad), input_size)

    def interpolate(self, x, size, scales, bilinear, align_corners):
        return _cuda.interpolate(self.contiguous(x), size, scales, bilinear, align_corners)

    def interpolate_backward(self, grad, input_size, scales, bilinear, align_corners):
        return _cuda.interpolate_backward(self.contiguous(grad), input_size, scales, bilinear,
                                          align_corners)

    # ---------------------------------------------------------------- nn kernels: normalization
    # (csrc/cuda/batchnorm.cu)
    def _opt(self, x):
        return None if x is None else self.contiguous(x)

    def batch_norm_train(self, x, weight, bias, eps):
        return _cuda.batch_norm_train(self.contiguous(x), self._opt(weight), self._opt(bias),
                                      float(eps))

    def batch_norm_apply(self, x, mean, invstd, weight, bias):
        return _cuda.batch_norm_apply(self.contiguous(x), self.contiguous(mean),
                                      self.contiguous(invstd), self._opt(weight), self._opt(bias))

    def batch_norm_backward(self, x, grad, mean, invstd, weight, training, needs):
        return _cuda.batch_norm_backward(self.contiguous(x), self.contiguous(grad),
                                         self.contiguous(mean), self.contiguous(invstd),
                                         self._opt(weight), bool(training), tuple(needs))

    # ---------------------------------------------------------------- fused: softmax, NLL
    # (csrc/cuda/softmax.cu) The optional fused kernels of base.FUSED_KERNELS.
    def softmax(self, x, axis, log):
        return _cuda.softmax(self.contiguous(x), axis, log)

    def softmax_backward(self, y, grad, axis, log):
        return _cuda.softmax_backward(self.contiguous(y), self.contiguous(grad), axis, log)

    def nll_loss(self, logp, target, weight, ignore_index, smooth):
        return _cuda.nll_loss(self.contiguous(logp), self.contiguous(target), self._opt(weight),
                              int(ignore_index), bool(smooth))

    def nll_loss_backward(self, grad_loss, grad_smooth, target, weight, ignore_index, classes):
        return _cuda.nll_loss_backward(self.contiguous(grad_loss), self._opt(grad_smooth),
                                       self.contiguous(target), self._opt(weight),
                                       int(ignore_index), int(classes))


def _check_not_half(dtype: np.dtype) -> None:
    if dtype in HALF_FLOATS:
        raise TypeError(f"{from_numpy_dtype(dtype)} is not supported on cuda: float16 and "
                        "bfloat16 are CPU storage types; convert with .float() first")
