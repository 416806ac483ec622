"""Tensor: a backend array plus what autograd needs (requires_grad, grad, the producing node).

A Tensor is a leaf (made by the user, ``grad_fn is None``) or the output of a Function call.
The math lives in ``gradflow.ops``; the methods are the PyTorch-shaped entry points, most of
them the ops functions themselves (``_OP_METHODS`` at the end of this module).
Views (reshape, permute, slicing, …) share storage and a version counter with their base, so
an in-place change to either is seen by autograd's saved-tensor check.
"""

from __future__ import annotations

import importlib
import math
import numbers
import weakref
from typing import Any, Callable, List, Optional, Tuple, Union

import numpy as np

from gradflow import backends, op_table
from gradflow.types import (
    BFLOAT16_BITS,
    as_dtype,
    cast,
    dtype,
    from_numpy_dtype,
    get_default_dtype,
)
from gradflow.types import device as Device
from gradflow.types import widen as _widen


class Size(tuple):
    """The shape of a tensor: a tuple that prints like PyTorch's ``torch.Size``."""

    def __repr__(self) -> str:
        return f"gradflow.Size({list(self)})"

    def numel(self) -> int:
        n = 1
        for s in self:
            n *= s
        return n


class Tensor:
    __slots__ = (
        "_data",
        "_backend",
        "requires_grad",
        "grad",
        "_ctx",
        "_output_nr",
        "_version",
        "_hooks",
        "_post_accumulate_hooks",
        "_is_view",
        "__weakref__",
    )
    __array_priority__ = 1000  # NumPy defers `ndarray op Tensor` to Tensor's reflected op

    def __init__(self, data: Any = None, *, dtype=None, device=None, requires_grad=False):
        src = tensor(data if data is not None else [], dtype=dtype, device=device)
        Tensor._init(self, src._data, src._backend)
        self.requires_grad = _ops.common.as_bool(requires_grad, "Tensor", "requires_grad")

    def _init(self, data, backend) -> None:
        self._data = data
        self._backend = backend
        self.requires_grad = False
        self.grad = None
        self._ctx = None
        self._output_nr = 0
        self._version = [0]
        self._hooks = None
        self._post_accumulate_hooks = None
        self._is_view = False

    @staticmethod
    def _make(data, backend) -> "Tensor":
        """Wrap a backend array (no copy)."""
        t = object.__new__(Tensor)
        t._data = data
        t._backend = backend
        t.requires_grad = False
        t.grad = None
        t._ctx = None
        t._output_nr = 0
        t._version = [0]
        t._hooks = None
        t._post_accumulate_hooks = None
        t._is_view = False
        return t

    # ---------------------------------------------------------------- attributes
    @property
    def shape(self) -> Size:
        return Size(self._data.shape)

    def size(self, dim: Optional[int] = None):
        if dim is None:
            return Size(self._data.shape)
        dim = _ops.common.wrap_dim(dim, self.ndim, "size")
        if self.ndim == 0:
            raise IndexError("size: dimension specified as 0 but tensor has no dimensions")
        return self._data.shape[dim]

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def dim(self) -> int:
        return self._data.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def nelement(self) -> int:
        return int(self._data.size)

    def element_size(self) -> int:
        return self.dtype.itemsize

    @property
    def dtype(self) -> dtype:
        return from_numpy_dtype(self._data.dtype)

    @property
    def device(self) -> Device:
        return self._backend.device

    @property
    def is_cuda(self) -> bool:
        return self._backend.device.type == "cuda"

    def is_floating_point(self) -> bool:
        return self._data.dtype.kind == "f" or self._data.dtype == BFLOAT16_BITS

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self):
        return self._ctx

    @property
    def data(self) -> "Tensor":
        """The same storage, detached from the graph."""
        return self.detach()

    @data.setter
    def data(self, value: "Tensor") -> None:
        self._data = value._data
        self._backend = value._backend

    @property
    def _version_counter(self) -> int:
        return self._version[0]

    @property
    def T(self) -> "Tensor":
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> "Tensor":
        return self.transpose(-2, -1)

    # ---------------------------------------------------------------- conversion
    def numpy(self, *, force: bool = False) -> np.ndarray:
        if self.requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead."
            )
        if self._data.dtype == BFLOAT16_BITS:
            raise TypeError("numpy(): NumPy has no bfloat16; convert first, e.g. "
                            "t.float().numpy() (as PyTorch)")
        return self._backend.to_numpy(self._data)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = self.numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    def item(self) -> Union[float, int, bool]:
        if self.numel() != 1:
            raise RuntimeError(
                f"a Tensor with {self.numel()} elements cannot be converted to Scalar"
            )
        return _widen(self._backend.to_numpy(self._data)).reshape(()).item()

    def tolist(self):
        return _widen(self._backend.to_numpy(self._data)).tolist()

    def __dlpack__(self, *, stream=None, **kwargs):
        """A DLPack capsule sharing this CPU tensor's memory, for torch.from_dlpack or
        np.from_dlpack. Keyword arguments (max_version, dl_device, copy) go to NumPy's export.

        >>> import numpy as np
        >>> np.from_dlpack(gf.arange(3)).tolist()
        [0, 1, 2]
        """
        if self.requires_grad:
            raise RuntimeError("Can't export a Tensor that requires grad to DLPack; detach() it")
        _check_dlpack_cpu(self.device, "__dlpack__")
        return self._data.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> Tuple[int, int]:
        """(device type, index) in DLPack's codes: (1, 0) for the CPU, (2, i) for cuda:i."""
        return (2, self.device.index) if self.is_cuda else (1, 0)

    def to(self, *args, **kwargs) -> "Tensor":
        """to(dtype), to(device), to(device, dtype), to(other_tensor); copy=False."""
        target_dtype, target_device = None, None
        for a in list(args) + [kwargs.get("dtype"), kwargs.get("device")]:
            if a is None:
                continue
            if isinstance(a, Tensor):
                target_dtype, target_device = a.dtype, a.device
            elif isinstance(a, (str, Device, int)) and not isinstance(a, bool) and not (
                    isinstance(a, str) and a in _DTYPE_NAMES):
                target_device = Device(a)
            else:
                target_dtype = as_dtype(a)
        out = self
        if target_device is not None and target_device != self.device:
            out = _ops.shape.to_device(out, target_device)
        if target_dtype is not None and target_dtype != out.dtype:
            out = _ops.shape.to_dtype(out, target_dtype)
        return out

    def cuda(self, device: Union[int, str, None] = None) -> "Tensor":
        return self.to(Device("cuda", device) if isinstance(device, int) or device is None
                       else Device(device))

    def cpu(self) -> "Tensor":
        return self.to("cpu")

    def float(self) -> "Tensor":
        return self.to(_float32)

    def half(self) -> "Tensor":
        """self.to(gradflow.float16): a CPU storage type (math on it runs in float32).

        >>> import gradflow as gf
        >>> gf.tensor([1.0, 1/3]).half()
        tensor([1.0000, 0.3333], dtype=gradflow.float16)
        """
        return self.to(_STORED["float16"])

    def bfloat16(self) -> "Tensor":
        """self.to(gradflow.bfloat16): a CPU storage type (math on it runs in float32).

        >>> import gradflow as gf
        >>> gf.tensor([1.0, 1/3]).bfloat16()
        tensor([1.0000, 0.3340], dtype=gradflow.bfloat16)
        """
        return self.to(_STORED["bfloat16"])

    def double(self) -> "Tensor":
        return self.to(_float64)

    def long(self) -> "Tensor":
        return self.to(_int64)

    def int(self) -> "Tensor":
        return self.to(_STORED["int32"])

    def short(self) -> "Tensor":
        return self.to(_STORED["int16"])

    def char(self) -> "Tensor":
        return self.to(_STORED["int8"])

    def byte(self) -> "Tensor":
        return self.to(_STORED["uint8"])

    def bool(self) -> "Tensor":
        return self.to(_bool)

    def type(self, dtype=None) -> Union[str, "Tensor"]:
        """With no dtype, the PyTorch-style type name ('gradflow.FloatTensor'); with a dtype
        (or such a name), the tensor converted to it."""
        if dtype is None:
            return _type_name(self.dtype, self.is_cuda)
        if isinstance(dtype, str) and dtype.endswith("Tensor"):
            names = {_type_name(d, False).split(".")[-1]: d for d in _STORED.values()}
            if dtype.split(".")[-1] not in names:
                raise ValueError(f"type: unknown tensor type {dtype!r}")
            dtype = names[dtype.split(".")[-1]]
        return self.to(as_dtype(dtype))

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False) -> "Tensor":
        """A new tensor of `data`, with self's dtype and device unless given."""
        return tensor(data, dtype=self.dtype if dtype is None else dtype,
                      device=self.device if device is None else device,
                      requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False) -> "Tensor":
        """zeros(size) with self's dtype and device unless given."""
        return self._new_like(zeros, size, dtype, device, requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False) -> "Tensor":
        """ones(size) with self's dtype and device unless given."""
        return self._new_like(ones, size, dtype, device, requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False) -> "Tensor":
        """empty(size) with self's dtype and device unless given."""
        return self._new_like(empty, size, dtype, device, requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None,
                 requires_grad=False) -> "Tensor":
        """full(size, fill_value) with self's dtype and device unless given."""
        return full(size, fill_value, dtype=self.dtype if dtype is None else dtype,
                    device=self.device if device is None else device,
                    requires_grad=requires_grad)

    def _new_like(self, make: Callable, size: tuple, dtype, device, requires_grad) -> "Tensor":
        return make(*size, dtype=self.dtype if dtype is None else dtype,
                    device=self.device if device is None else device,
                    requires_grad=requires_grad)

    def data_ptr(self) -> int:
        """The memory address of the first element (an int, as PyTorch's)."""
        return self._backend.data_ptr(self._data)

    # device and layout predicates PyTorch scripts test: gradflow tensors are dense, not
    # quantized, on the CPU or a CUDA device
    is_xpu = is_mps = is_meta = is_sparse = is_quantized = property(lambda self: False)

    def type_as(self, other: "Tensor") -> "Tensor":
        _ops.common.check_tensor(other, "type_as", "other")
        return self.to(other.dtype)

    def contiguous(self) -> "Tensor":
        return self if self.is_contiguous() else self.clone()

    def is_contiguous(self) -> bool:
        return self._backend.is_contiguous(self._data)

    def detach(self) -> "Tensor":
        t = Tensor._make(self._data, self._backend)
        t._version = self._version
        return t

    def detach_(self) -> "Tensor":
        self._ctx = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        requires_grad = _ops.common.as_bool(requires_grad, "requires_grad_", "requires_grad")
        if not self.is_leaf and not requires_grad:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use a "
                "computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        if requires_grad and not self.is_floating_point():
            raise RuntimeError(
                f"requires_grad=True: only Tensors of floating point dtype can require gradients, "
                f"got {self.dtype}"
            )
        self.requires_grad = requires_grad
        return self

    # ---------------------------------------------------------------- autograd
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        _autograd.backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def register_hook(self, hook: Callable[["Tensor"], Optional["Tensor"]]):
        """hook(grad) runs when this tensor's gradient is computed; it may return a new one."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._ctx is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            node = self._ctx
            if node._output_hooks is None:
                node._output_hooks = {}
            hooks = node._output_hooks.setdefault(self._output_nr, [])
        hooks.append(hook)
        return _RemovableHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook: Callable[["Tensor"], None]):
        """hook(tensor) runs after a backward has summed this leaf's gradient into .grad (as
        PyTorch's; DistributedDataParallel starts its all-reduces from it)."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._ctx is not None:
            raise RuntimeError("post accumulate grad hooks cannot be registered on non-leaf "
                               "tensors")
        if self._post_accumulate_hooks is None:
            self._post_accumulate_hooks = []
        self._post_accumulate_hooks.append(hook)
        return _RemovableHandle(self._post_accumulate_hooks, hook)

    def retain_grad(self) -> None:
        """Keep this non-leaf's gradient in .grad (summed over backward calls), as seen after
        its hooks; a no-op on leaves and when called again."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._ctx is None:
            return
        node = self._ctx
        if node._retained is None:
            node._retained = {}
        node._retained[self._output_nr] = weakref.ref(self)

    # ---------------------------------------------------------------- printing
    def __repr__(self) -> str:
        a = _widen(self._backend.to_numpy(self._data))  # half floats print as float32 values
        extra = []
        if self.is_cuda:
            extra.append(f"device='{self.device}'")
        if self._data.dtype not in (np.float32, np.int64, np.bool_) or a.size == 0:
            if not (a.size == 0 and self._data.dtype == np.float32):
                extra.append(f"dtype={self.dtype}")
        if a.size == 0 and a.ndim > 1:
            extra.insert(0, f"size={tuple(a.shape)}")
        if self._ctx is not None:
            extra.append(f"grad_fn=<{self._ctx._name}>")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        # As PyTorch: integral floats print as "1.", others with 4 decimals ("fixed"); NumPy
        # switches to scientific notation on the same ranges (< 1e-4, > 1e8, ratio > 1e3).
        finite = a[np.isfinite(a)] if a.dtype.kind == "f" else a
        integral = a.dtype.kind != "f" or bool(np.all(finite == np.round(finite)))
        body = np.array2string(
            a, separator=", ", prefix="tensor(", threshold=1000, edgeitems=3,
            floatmode="maxprec" if integral else "fixed", precision=4,
        )
        return "tensor(" + body + "".join(", " + e for e in extra) + ")"

    __str__ = __repr__

    # ---------------------------------------------------------------- Python protocols
    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __bool__(self) -> bool:
        if self.numel() != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with {self.numel()} values is ambiguous"
            )
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.is_floating_point() or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __format__(self, spec: str) -> str:
        """f"{loss:.4f}": a 0-d tensor formats its value, as PyTorch (f"{loss}" too); a
        one-element tensor also takes a spec (PyTorch refuses it); any other tensor gives
        str(t) for an empty spec and refuses a spec."""
        if self.ndim == 0 or (spec and self.numel() == 1):
            return format(self.item(), spec)
        return object.__format__(self, spec)

    __hash__ = object.__hash__

    def __reduce_ex__(self, protocol: int):
        """pickle and copy.copy: the values (a NumPy array), the device and requires_grad; the
        graph and .grad are not kept, as PyTorch's. A Parameter comes back a Parameter.
        (Pickling is the user's choice: gradflow.save never uses it.)"""
        return (_rebuild, (type(self), self._backend.to_numpy(self._data), str(self.device),
                           self.requires_grad))

    def __deepcopy__(self, memo: dict) -> "Tensor":
        """copy.deepcopy of a leaf: new storage with the same values, requires_grad and grad."""
        if self._ctx is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) "
                               "support the deepcopy protocol")
        if id(self) not in memo:
            t = Tensor._make(self._backend.copy(self._data), self._backend)
            t.requires_grad = self.requires_grad
            if self.grad is not None:
                t.grad = self.grad.__deepcopy__(memo)
            memo[id(self)] = t
        return memo[id(self)]

    # ---------------------------------------------------------------- arithmetic
    def __add__(self, o): return _ops.elementwise.add(self, _nd(o, self))
    def __radd__(self, o): return _ops.elementwise.add(_nd(o, self), self)
    def __sub__(self, o): return _ops.elementwise.sub(self, _nd(o, self))
    def __rsub__(self, o): return _ops.elementwise.sub(_nd(o, self), self)
    def __mul__(self, o): return _ops.elementwise.mul(self, _nd(o, self))
    def __rmul__(self, o): return _ops.elementwise.mul(_nd(o, self), self)
    def __truediv__(self, o): return _ops.elementwise.div(self, _nd(o, self))
    def __rtruediv__(self, o): return _ops.elementwise.div(_nd(o, self), self)
    def __pow__(self, o): return _ops.elementwise.pow(self, _nd(o, self))
    def __rpow__(self, o): return _ops.elementwise.pow(_nd(o, self), self)
    def __matmul__(self, o): return _ops.linalg.matmul(self, _nd(o, self))
    def __rmatmul__(self, o): return _ops.linalg.matmul(_nd(o, self), self)
    def __neg__(self): return _ops.elementwise.neg(self)
    def __pos__(self): return self
    def __abs__(self): return _ops.elementwise.abs(self)
    def __mod__(self, o): return _ops.elementwise.remainder(self, _nd(o, self))
    def __floordiv__(self, o): return _ops.elementwise.floor_divide(self, _nd(o, self))
    def __eq__(self, o): return _ops.elementwise.eq(self, _nd(o, self))  # type: ignore[override]
    def __ne__(self, o): return _ops.elementwise.ne(self, _nd(o, self))  # type: ignore[override]
    def __lt__(self, o): return _ops.elementwise.lt(self, _nd(o, self))
    def __le__(self, o): return _ops.elementwise.le(self, _nd(o, self))
    def __gt__(self, o): return _ops.elementwise.gt(self, _nd(o, self))
    def __ge__(self, o): return _ops.elementwise.ge(self, _nd(o, self))
    def __and__(self, o): return _ops.elementwise.logical_and(self, _nd(o, self))
    def __or__(self, o): return _ops.elementwise.logical_or(self, _nd(o, self))
    def __xor__(self, o): return _ops.elementwise.logical_xor(self, _nd(o, self))
    def __invert__(self): return _ops.elementwise.logical_not(self)
    def __iadd__(self, o): return self.add_(_nd(o, self))
    def __isub__(self, o): return self.sub_(_nd(o, self))
    def __imul__(self, o): return self.mul_(_nd(o, self))
    def __itruediv__(self, o): return self.div_(_nd(o, self))

    # The methods that only call their op (x.sum(...) is reduce.sum(x, ...)) are the ops
    # functions themselves, installed from _OP_METHODS at the end of this module. Written
    # here: the operators above and the methods that adapt their arguments.
    def square(self): return _ops.elementwise.mul(self, self)
    def where(self, cond, o): return _ops.elementwise.where(cond, self, o)

    # ---------------------------------------------------------------- shape
    def reshape(self, *shape): return _ops.shape.reshape(self, _varargs(shape))
    def view(self, *shape): return _ops.shape.view(self, _varargs(shape))
    def view_as(self, other): return _ops.shape.view(self, _shape_of(other, "view_as"))
    def reshape_as(self, other): return _ops.shape.reshape(self, _shape_of(other, "reshape_as"))
    def permute(self, *dims): return _ops.shape.permute(self, _varargs(dims))
    def expand(self, *sizes): return _ops.shape.expand(self, _varargs(sizes))
    def expand_as(self, other): return _ops.shape.expand(self, _shape_of(other, "expand_as"))
    def repeat(self, *sizes): return _ops.shape.repeat(self, _varargs(sizes))

    # ---------------------------------------------------------------- indexing
    def __getitem__(self, key): return _ops.index.getitem(self, key)

    def __setitem__(self, key, value) -> None:
        _ops.inplace.setitem(self, key, value)

    # ---------------------------------------------------------------- in place
    def add_(self, o, alpha=1):
        return _ops.inplace.arith_(self, "add", o if alpha == 1 else o * alpha)
    def sub_(self, o, alpha=1):
        return _ops.inplace.arith_(self, "sub", o if alpha == 1 else o * alpha)
    def mul_(self, o): return _ops.inplace.arith_(self, "mul", o)
    def div_(self, o): return _ops.inplace.arith_(self, "div", o)
    def pow_(self, o): return _ops.inplace.arith_(self, "pow", o)
    def neg_(self): return _ops.inplace.apply_(self, Tensor.neg, "neg_")
    def exp_(self): return _ops.inplace.apply_(self, Tensor.exp, "exp_")
    def sqrt_(self): return _ops.inplace.apply_(self, Tensor.sqrt, "sqrt_")
    def relu_(self): return _ops.inplace.apply_(self, Tensor.relu, "relu_")
    def sigmoid_(self): return _ops.inplace.apply_(self, Tensor.sigmoid, "sigmoid_")
    def tanh_(self): return _ops.inplace.apply_(self, Tensor.tanh, "tanh_")
    def clamp_(self, min=None, max=None):
        return _ops.inplace.apply_(self, lambda s: s.clamp(min, max), "clamp_", min, max)
    clip_ = clamp_
    def masked_fill_(self, mask, value):
        return _ops.inplace.apply_(self, lambda s: s.masked_fill(mask, value), "masked_fill_",
                                   value)
    def lerp_(self, end, weight):
        return _ops.inplace.apply_(self, lambda s: s.lerp(end, weight), "lerp_", end, weight)
    def addcmul_(self, t1, t2, value=1):
        return _ops.inplace.pointwise_(self, "addcmul_", t1, t2, value, _ops.elementwise.mul)
    def addcdiv_(self, t1, t2, value=1):
        return _ops.inplace.pointwise_(self, "addcdiv_", t1, t2, value, _ops.elementwise.div)
    def zero_(self): return _ops.inplace.fill_(self, 0, "zero_")
    def fill_(self, value): return _ops.inplace.fill_(self, value)


class _RemovableHandle:
    def __init__(self, hooks: List, hook) -> None:
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _type_name(d: dtype, on_cuda: bool) -> str:
    """PyTorch's legacy tensor type name of a dtype: 'gradflow.cuda.LongTensor'."""
    kind = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
            "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool", "float16": "Half",
            "bfloat16": "BFloat16"}[d.name]
    return f"gradflow.{'cuda.' if on_cuda else ''}{kind}Tensor"


def _shape_of(other, op: str) -> tuple:
    """other's shape, for the *_as methods (a TypeError naming the op if other is no Tensor)."""
    _ops.common.check_tensor(other, op, "other")
    return tuple(other.shape)


def _varargs(args: tuple) -> tuple:
    """Accept f(2, 3) and f((2, 3)) alike."""
    if len(args) == 1 and isinstance(args[0], (tuple, list, Size)):
        return tuple(args[0])
    return tuple(args)


# ---------------------------------------------------------------- creation functions
_float32 = as_dtype("float32")
_float64 = as_dtype("float64")
_int64 = as_dtype("int64")
_bool = as_dtype("bool")
_DTYPE_NAMES = ("float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool",
                "float16", "bfloat16")
_STORED = {name: as_dtype(name) for name in _DTYPE_NAMES}
_STORED_NP = tuple(d.np for d in _STORED.values())


def _infer_dtype(data) -> dtype:
    """PyTorch's rule: bools -> bool, ints -> int64, any float -> the default float dtype."""
    if isinstance(data, (np.ndarray, np.generic)):
        try:
            return from_numpy_dtype(data.dtype)
        except TypeError as exc:
            raise TypeError(f"tensor(): {exc}") from None
    a = np.asarray(data)
    if a.dtype == np.bool_:
        return _bool
    if a.dtype.kind in "iu":
        return _int64
    if a.dtype.kind == "f":
        return get_default_dtype()
    raise TypeError(f"tensor(): cannot build a tensor from {type(data).__name__} data")


def _kind_only(a: np.ndarray):
    """A stand-in whose inferred dtype depends only on a's kind (lists carry no width)."""
    return a.dtype.type(0).item()


def _nested_to_numpy(data):
    """Nested lists/tuples that may hold tensors or scalars -> one NumPy array."""
    if isinstance(data, Tensor):
        return data.detach().numpy()
    if isinstance(data, (list, tuple)) and any(isinstance(d, (Tensor, list, tuple)) for d in data):
        return np.stack([np.asarray(_nested_to_numpy(d)) for d in data]) if data else np.array([])
    return np.asarray(data)


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor copying `data` (nested lists, numbers, NumPy arrays or tensors)."""
    if isinstance(data, Tensor):
        a = _widen(data._backend.to_numpy(data._data))  # (NumPy has no bfloat16)
        dt = as_dtype(dtype) if dtype is not None else data.dtype
    else:
        try:
            a = _nested_to_numpy(data)
        except ValueError as exc:  # NumPy's words for ragged nesting
            raise ValueError(f"tensor(): data must have a regular shape ({exc})") from None
        if a.dtype.kind in "USV":
            raise TypeError("tensor(): cannot build a tensor from str data")
        if a.dtype == object:
            raise TypeError("tensor(): data must be numbers, nested sequences of numbers or arrays")
        if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
            raise ValueError(f"tensor(): the value {a.max()} does not fit in int64")
        dt = as_dtype(dtype) if dtype is not None else _infer_dtype(
            data if isinstance(data, (np.ndarray, np.generic)) else a.tolist() if a.ndim == 0
            else _kind_only(a)
        )
    a = np.asarray(cast(np.asarray(a), dt.np), order="C")  # (cast copies)
    backend = backends.get_backend(device if device is not None else "cpu")
    t = Tensor._make(backend.from_numpy(a), backend)
    if _ops.common.as_bool(requires_grad, "tensor", "requires_grad"):
        t.requires_grad_(True)
    return t


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like tensor(), but shares memory with a NumPy array when dtype and device allow."""
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype) if (dtype or device) else data
    if isinstance(data, np.ndarray) and (device is None or isinstance(device, str)
                                         and device == "cpu") and (
        dtype is None or as_dtype(dtype).np == data.dtype
    ) and data.dtype in _STORED_NP:
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(a: np.ndarray) -> Tensor:
    """A CPU tensor sharing memory with `a` (float32, float64, an integer type of
    gradflow's or bool)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray, got {type(a).__name__}")
    if a.dtype not in _STORED_NP:
        raise TypeError(
            f"from_numpy: can't convert np.ndarray of type {a.dtype}; the supported types are "
            f"{', '.join(_DTYPE_NAMES)} (use gradflow.tensor to convert with a copy)"
        )
    canonical = from_numpy_dtype(a.dtype).np  # an unpickled array's dtype is an equal copy
    return Tensor._make(a if a.dtype is canonical else a.view(canonical), backends.cpu)


def from_dlpack(obj) -> Tensor:
    """A CPU tensor sharing memory with an object that implements the DLPack protocol
    (a torch or NumPy array, a gradflow tensor, ...).

    CUDA memory cannot be shared: gradflow's CUDA allocator has no DLPack import or export,
    so a device tensor raises (move it to the CPU first).

    >>> import numpy as np
    >>> gf.from_dlpack(np.arange(3))
    tensor([0, 1, 2])
    """
    if not hasattr(obj, "__dlpack_device__"):
        raise TypeError(f"from_dlpack: expected an object with __dlpack__ and "
                        f"__dlpack_device__, got {type(obj).__name__}")
    dev_type, dev_id = obj.__dlpack_device__()
    if dev_type != 1:  # kDLCPU
        _check_dlpack_cpu(Device("cuda", dev_id) if dev_type == 2 else f"DLPack device type "
                          f"{dev_type}", "from_dlpack")
    try:
        a = np.from_dlpack(obj)
    except (TypeError, BufferError) as exc:  # a dtype NumPy has no type for
        raise TypeError(f"from_dlpack: {exc}") from None
    return from_numpy(a)


def _check_dlpack_cpu(device, op: str) -> None:
    """DLPack exchange is CPU-only: say so for any other device."""
    if not (isinstance(device, Device) and device.type == "cpu"):
        raise RuntimeError(f"{op}: DLPack exchange works for CPU tensors only, got one on "
                           f"{device}; gradflow's CUDA memory cannot be shared through DLPack "
                           "(copy it with .cpu() first)")


def _rebuild(cls: type, values: np.ndarray, device: str, requires_grad: bool) -> Tensor:
    """The inverse of Tensor.__reduce_ex__ (pickle and copy.copy)."""
    backend = backends.get_backend(device)
    t = Tensor._make(backend.from_numpy(from_numpy(values)._data), backend)
    return t.requires_grad_(requires_grad) if cls is Tensor else cls(t, requires_grad)


def _nd(operand, like: Tensor):
    """An np.ndarray operand of an operator as a tensor on like's device, as PyTorch (`t + a`
    and `a + t` give a Tensor, promoting dtypes as two tensors do); anything else as is."""
    return tensor(operand, device=like.device) if isinstance(operand, np.ndarray) else operand


def _shape_arg(size: tuple, op: str) -> Tuple[int, ...]:
    """f(2, 3), f((2, 3)) or f([2, 3]): ints >= 0 (bools and floats refused, as PyTorch)."""
    shape = _ops.common.as_ints(_varargs(size), op, "size")
    if any(s < 0 for s in shape):
        raise ValueError(f"{op}: invalid shape {shape}: sizes must be non-negative integers")
    return shape


def _new(op: str, make: Callable, size: tuple, dtype, device, requires_grad,
         default=None) -> Tensor:
    dt = as_dtype(dtype) if dtype is not None else (default or get_default_dtype())
    backend = backends.get_backend(device if device is not None else "cpu")
    shape = _shape_arg(size, op)
    with _ops.common.allocating(op, shape, dt.itemsize):
        t = Tensor._make(make(backend, shape, dt.np), backend)
    if _ops.common.as_bool(requires_grad, op, "requires_grad"):
        t.requires_grad_(True)
    return t


def zeros(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new("zeros", lambda b, s, d: b.full(s, 0, d), size, dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new("ones", lambda b, s, d: b.full(s, 1, d), size, dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new("empty", lambda b, s, d: b.empty(s, d), size, dtype, device, requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    if not isinstance(fill_value, numbers.Number):
        raise TypeError(f"full: argument 'fill_value' must be a number, not "
                        f"{type(fill_value).__name__}")
    default = None if dtype is not None else _infer_dtype(fill_value)
    dt = as_dtype(dtype) if dtype is not None else default
    fill_value = _ops.common.fit_scalar("full", fill_value, dt)
    return _new("full", lambda b, s, d: b.full(s, fill_value, d), (size,), dt, device,
                requires_grad)


def _like(fn, t: Tensor, dtype, device, requires_grad, *args) -> Tensor:
    _ops.common.check_tensor(t, fn.__name__ + "_like")
    return fn(*args, t.shape, dtype=t.dtype if dtype is None else dtype,
              device=t.device if device is None else device, requires_grad=requires_grad)


def zeros_like(t, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(zeros, t, dtype, device, requires_grad)


def ones_like(t, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(ones, t, dtype, device, requires_grad)


def empty_like(t, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(empty, t, dtype, device, requires_grad)


def full_like(t, fill_value, dtype=None, device=None, requires_grad=False) -> Tensor:
    _ops.common.check_tensor(t, "full_like")
    return full(t.shape, fill_value, dtype=t.dtype if dtype is None else dtype,
                device=t.device if device is None else device, requires_grad=requires_grad)


def _number(value, op: str, arg: str):
    """A real-number argument as given (an int stays an int); a one-element tensor's value."""
    if isinstance(value, Tensor):
        return _ops.common.as_float(value, op, arg)
    if isinstance(value, numbers.Real):
        return value
    raise TypeError(f"{op}: argument '{arg}' must be a number, not {type(value).__name__}")


def _arange_length(start, end, step) -> int:
    """ceil((end - start) / step), exact for ints."""
    if all(isinstance(v, numbers.Integral) for v in (start, end, step)):
        return -((start - end) // step)
    return math.ceil((end - start) / step)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False) -> Tensor:
    if end is None:
        start, end = 0, start
    values = [_number(v, "arange", name) for name, v in (("start", start), ("end", end),
                                                           ("step", step))]
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"arange: start, end and step must be finite, got {values}")
    if values[2] == 0:
        raise ValueError("arange: step must be nonzero")
    if (values[1] - values[0]) * values[2] < 0:
        raise ValueError(f"arange: upper bound and lower bound inconsistent with step sign "
                         f"(start={values[0]}, end={values[1]}, step={values[2]})")
    dt = as_dtype(dtype) if dtype is not None else (
        _int64 if all(isinstance(v, numbers.Integral) for v in values) else get_default_dtype()
    )
    backend = backends.get_backend(device if device is not None else "cpu")
    with _ops.common.allocating("arange", (_arange_length(*values),), dt.itemsize):
        t = Tensor._make(backend.arange(*values, dt.np), backend)
    return t.requires_grad_(True) if requires_grad else t


def linspace(start, end, steps: int, dtype=None, device=None, requires_grad=False) -> Tensor:
    start, end = _number(start, "linspace", "start"), _number(end, "linspace", "end")
    steps = _ops.common.as_int(steps, "linspace", "steps")
    if steps < 0:
        raise ValueError(f"linspace: number of steps must be non-negative, got {steps}")
    with _ops.common.allocating("linspace", (steps,), 8):
        values = np.linspace(start, end, steps)
    return tensor(values, dtype=get_default_dtype() if dtype is None else dtype, device=device,
                  requires_grad=requires_grad)


def eye(n: int, m: Optional[int] = None, dtype=None, device=None, requires_grad=False) -> Tensor:
    n = _ops.common.as_int(n, "eye", "n")
    m = n if m is None else _ops.common.as_int(m, "eye", "m")
    if n < 0 or m < 0:
        raise ValueError(f"eye: n and m must be non-negative, got n={n}, m={m}")
    with _ops.common.allocating("eye", (n, m), 8):
        values = np.eye(n, m)
    return tensor(values, dtype=get_default_dtype() if dtype is None else dtype, device=device,
                  requires_grad=requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new("rand", lambda b, s, d: b.rand(s, d), size, dtype, device, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _new("randn", lambda b, s, d: b.randn(s, d), size, dtype, device, requires_grad)


def randint(low, high=None, size=None, dtype=None, device=None) -> Tensor:
    if high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint: missing the size argument")
    low, high = _ops.common.as_int(low, "randint", "low"), _ops.common.as_int(high, "randint",
                                                                               "high")
    if high <= low:
        raise ValueError(f"randint: expected low < high, got low={low}, high={high}")
    t = _new("randint", lambda b, s, d: b.randint(low, high, s), (size,), _int64, device, False)
    return t if dtype is None else t.to(as_dtype(dtype))


def randperm(n: int, dtype=None, device=None) -> Tensor:
    n = _ops.common.as_int(n, "randperm", "n")
    if n < 0:
        raise ValueError(f"randperm: n must be non-negative, got {n}")
    backend = backends.get_backend(device if device is not None else "cpu")
    with _ops.common.allocating("randperm", (n,), 8):
        t = Tensor._make(backend.randperm(n), backend)
    return t if dtype is None else t.to(as_dtype(dtype))


def rand_like(t, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(rand, t, dtype, device, requires_grad)


def randn_like(t, dtype=None, device=None, requires_grad=False) -> Tensor:
    return _like(randn, t, dtype, device, requires_grad)


def randint_like(t, low, high=None, dtype=None, device=None) -> Tensor:
    _ops.common.check_tensor(t, "randint_like")
    return randint(low, high, t.shape, dtype=t.dtype if dtype is None else dtype,
                   device=t.device if device is None else device)


def manual_seed(seed: int) -> None:
    """Seed every device's generator: the same seed gives the same numbers. A negative seed
    counts modulo 2**64, as PyTorch's."""
    seed = _ops.common.as_int(seed, "manual_seed", "seed") % 2**64
    for backend in backends.active_backends():
        backend.manual_seed(seed)
    backends.default_seed = seed


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    """The number of elements of input."""
    _ops.common.check_tensor(input, "numel")
    return input.numel()


from gradflow import autograd as _autograd  # noqa: E402
from gradflow import ops as _ops  # noqa: E402  (ops import Tensor from this module)

# Tensor methods that are their op: x.name(*args) calls name(x, *args) of gradflow.ops.<module>,
# installed as it is (so help(), the signature and the docstring are the op's). Each module is
# imported whole here first: ops/__init__.py imports this module before any op module, so that
# this loop, not an op module, runs their imports.
_OP_METHODS = {
    "elementwise": op_table.names(op_table.UNARY) + (
        "add", "sub", "mul", "div", "pow", "maximum", "minimum", "clamp", "clip", "lerp",
        "masked_fill", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or",
        "isclose", "allclose",
    ),
    "linalg": ("matmul", "mm", "bmm", "dot", "tril", "triu", "diag", "outer", "addmm",
               "baddbmm", "det", "slogdet", "inverse"),
    "reduce": ("sum", "mean", "var", "std", "prod", "max", "min", "amax", "amin", "argmax",
               "argmin", "logsumexp", "norm", "all", "any", "softmax", "log_softmax", "cumsum",
               "cumprod"),
    "shape": ("clone", "flatten", "unflatten", "squeeze", "unsqueeze", "transpose", "t", "flip",
              "broadcast_to", "split", "chunk", "unbind", "narrow", "roll"),
    "index": ("gather", "scatter_add", "index_select", "index_add", "scatter", "sort",
              "argsort", "topk", "masked_select", "nonzero", "unique"),
    "random": ("multinomial",),
    "inplace": ("copy_", "uniform_", "normal_", "bernoulli_", "index_add_", "scatter_",
                "fill_diagonal_"),
}
for _module, _names in _OP_METHODS.items():
    _functions = importlib.import_module("gradflow.ops." + _module)
    for _name in _names:
        setattr(Tensor, _name, getattr(_functions, _name))
