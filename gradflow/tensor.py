"""Tensor: a backend array plus what autograd needs (requires_grad, grad, the producing node).

A Tensor is a leaf (made by the user, ``grad_fn is None``) or the output of a Function call.
The math lives in ``gradflow.ops``; the methods are the PyTorch-shaped entry points, most of
them the ops functions themselves (``_OP_METHODS`` at the end of this module).
Views (reshape, permute, slicing, …) share storage and a version counter with their base, so
an in-place change to either is seen by autograd's saved-tensor check.
"""

from __future__ import annotations

import builtins
import importlib
import math
import numbers
import weakref
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Sequence,
    SupportsIndex,
    Tuple,
    TypeVar,
    Union,
    overload,
)

import numpy as np

from gradflow import backends, op_table
from gradflow.backends.base import Array, Backend
from gradflow.types import (
    BFLOAT16_BITS,
    DeviceLike,
    DTypeLike,
    Number,
    TensorLike,
    as_dtype,
    cast,
    dtype,
    from_numpy_dtype,
    get_default_dtype,
)
from gradflow.types import device as Device
from gradflow.types import widen as _widen

if TYPE_CHECKING:
    from gradflow import ops as _ops  # imported at the end at run time
    from gradflow.autograd.function import Context
    from gradflow.backends.cuda import CUDABackend

SizeArg = Union[int, Sequence[int]]  # f(2, 3) or f((2, 3)): each of *size
Hook = Callable[["Tensor"], Optional["Tensor"]]


class Size(Tuple[int, ...]):
    """The shape of a tensor: a tuple that prints like PyTorch's ``torch.Size``.

    >>> import gradflow as gf
    >>> gf.zeros(2, 3).shape
    gradflow.Size([2, 3])
    """

    def __repr__(self) -> str:
        return f"gradflow.Size({list(self)})"

    def numel(self) -> int:
        """The number of elements of a tensor of this shape.

        >>> import gradflow as gf
        >>> gf.Size([2, 3]).numel()
        6
        """
        n = 1
        for s in self:
            n *= s
        return n


class Tensor:
    """A multi-dimensional array on a device, with reverse-mode autograd.

    ``Tensor(data)`` is ``gradflow.tensor(data)``; most tensors come from the creation
    functions (``tensor``, ``zeros``, ``randn``, ...) and from ops.

    >>> import gradflow as gf
    >>> x = gf.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    tensor([[2., 4.],
            [6., 8.]])
    """

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
    _data: Array
    _backend: Backend
    requires_grad: bool
    grad: Optional[Tensor]
    _ctx: Optional[Context]
    _output_nr: int
    _version: List[int]
    _hooks: Optional[List[Hook]]
    _post_accumulate_hooks: Optional[List[Callable[[Tensor], None]]]
    _is_view: bool

    def __init__(self, data: Any = None, *, dtype: Optional[DTypeLike] = None,
                 device: Optional[DeviceLike] = None, requires_grad: bool = False) -> None:
        src = tensor(data if data is not None else [], dtype=dtype, device=device)
        Tensor._init(self, src._data, src._backend)
        self.requires_grad = _ops.common.as_bool(requires_grad, "Tensor", "requires_grad")

    def _init(self, data: Array, backend: Backend) -> None:
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
    def _make(data: Array, backend: Backend) -> Tensor:
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
        """The size of each dimension.

        >>> import gradflow as gf
        >>> gf.zeros(2, 3).shape
        gradflow.Size([2, 3])
        """
        return Size(self._data.shape)

    @overload
    def size(self, dim: None = None) -> Size: ...
    @overload
    def size(self, dim: int) -> int: ...

    def size(self, dim: Optional[int] = None) -> Union[Size, int]:
        """The shape, or the size of dimension dim.

        >>> import gradflow as gf
        >>> x = gf.zeros(2, 3)
        >>> x.size(), x.size(-1)
        (gradflow.Size([2, 3]), 3)
        """
        if dim is None:
            return Size(self._data.shape)
        dim = _ops.common.wrap_dim(dim, self.ndim, "size")
        if self.ndim == 0:
            raise IndexError("size: dimension specified as 0 but tensor has no dimensions")
        return int(self._data.shape[dim])

    @property
    def ndim(self) -> int:
        """The number of dimensions.

        >>> import gradflow as gf
        >>> gf.zeros(2, 3).ndim
        2
        """
        return int(self._data.ndim)

    def dim(self) -> int:
        """The number of dimensions (as ndim).

        >>> import gradflow as gf
        >>> gf.tensor(1.0).dim()
        0
        """
        return int(self._data.ndim)

    def numel(self) -> int:
        """The number of elements.

        >>> import gradflow as gf
        >>> gf.zeros(2, 3).numel()
        6
        """
        return int(self._data.size)

    def nelement(self) -> int:
        """The number of elements (as numel).

        >>> import gradflow as gf
        >>> gf.zeros(2, 3).nelement()
        6
        """
        return int(self._data.size)

    def element_size(self) -> int:
        """The size of one element in bytes.

        >>> import gradflow as gf
        >>> gf.zeros(2, dtype=gf.float64).element_size()
        8
        """
        return self.dtype.itemsize

    @property
    def dtype(self) -> dtype:
        """The element type.

        >>> import gradflow as gf
        >>> gf.tensor([1, 2]).dtype
        gradflow.int64
        """
        return from_numpy_dtype(self._data.dtype)

    @property
    def device(self) -> Device:
        """The device the tensor lives on.

        >>> import gradflow as gf
        >>> gf.zeros(2).device
        device(type='cpu')
        """
        return self._backend.device

    @property
    def is_cuda(self) -> bool:
        """Whether the tensor lives on a CUDA device.

        >>> import gradflow as gf
        >>> gf.zeros(2).is_cuda
        False
        """
        return bool(self._backend.device.type == "cuda")

    @property
    def is_cpu(self) -> bool:
        """Whether the tensor lives in host memory.

        >>> import gradflow as gf
        >>> gf.zeros(2).is_cpu
        True
        """
        return bool(self._backend.device.type == "cpu")

    def is_floating_point(self) -> bool:
        """Whether the dtype is a float type (float16 and bfloat16 included).

        >>> import gradflow as gf
        >>> gf.tensor([1.0]).is_floating_point(), gf.tensor([1]).is_floating_point()
        (True, False)
        """
        return bool(self._data.dtype.kind == "f" or self._data.dtype == BFLOAT16_BITS)

    @property
    def is_leaf(self) -> bool:
        """Whether the tensor was made by the user rather than computed by an op.

        >>> import gradflow as gf
        >>> x = gf.ones(2, requires_grad=True)
        >>> x.is_leaf, (x * 2).is_leaf
        (True, False)
        """
        return self._ctx is None

    @property
    def grad_fn(self) -> Optional[Context]:
        """The node that computed this tensor (None for a leaf).

        >>> import gradflow as gf
        >>> x = gf.ones(2, requires_grad=True)
        >>> (x * 2).grad_fn.name()
        'MulBackward'
        """
        return self._ctx

    @property
    def data(self) -> Tensor:
        """The same storage, detached from the graph; assigning it swaps the storage.

        >>> import gradflow as gf
        >>> x = gf.ones(2, requires_grad=True)
        >>> x.data
        tensor([1., 1.])
        """
        return self.detach()

    @data.setter
    def data(self, value: Tensor) -> None:
        self._data = value._data
        self._backend = value._backend

    @property
    def _version_counter(self) -> int:
        return self._version[0]

    @property
    def T(self) -> Tensor:
        """The dimensions in reverse order.

        >>> import gradflow as gf
        >>> gf.zeros(2, 3, 4).T.shape
        gradflow.Size([4, 3, 2])
        """
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> Tensor:
        """The last two dimensions swapped (a batch of matrices transposed).

        >>> import gradflow as gf
        >>> gf.zeros(5, 2, 3).mT.shape
        gradflow.Size([5, 3, 2])
        """
        return self.transpose(-2, -1)

    # ---------------------------------------------------------------- conversion
    def numpy(self, *, force: bool = False) -> np.ndarray[Any, Any]:
        """The values as a NumPy array, sharing memory on the CPU.

        >>> import gradflow as gf
        >>> gf.tensor([1.0, 2.0]).numpy()
        array([1., 2.], dtype=float32)
        """
        if self.requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead."
            )
        if self._data.dtype == BFLOAT16_BITS:
            raise TypeError("numpy(): NumPy has no bfloat16; convert first, e.g. "
                            "t.float().numpy() (as PyTorch)")
        return self._backend.to_numpy(self._data)

    def __array__(self, dtype: Any = None, copy: Optional[bool] = None) -> np.ndarray[Any, Any]:
        a = self.numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    def item(self) -> Number:
        """The value of a one-element tensor as a Python number.

        >>> import gradflow as gf
        >>> gf.tensor([2.5]).item()
        2.5
        """
        if self.numel() != 1:
            raise RuntimeError(
                f"a Tensor with {self.numel()} elements cannot be converted to Scalar"
            )
        value: Number = _widen(self._backend.to_numpy(self._data)).reshape(()).item()
        return value

    def tolist(self) -> Any:
        """The values as nested Python lists (a number for a 0-d tensor).

        >>> import gradflow as gf
        >>> gf.tensor([[1, 2], [3, 4]]).tolist()
        [[1, 2], [3, 4]]
        """
        return _widen(self._backend.to_numpy(self._data)).tolist()

    def __dlpack__(self, *, stream: Any = None, max_version: Optional[Tuple[int, int]] = None,
                   dl_device: Optional[Tuple[int, int]] = None, copy: Optional[bool] = None
                   ) -> Any:
        """A DLPack capsule sharing this tensor's memory, for torch.from_dlpack,
        np.from_dlpack (CPU) or gradflow.from_dlpack: versioned when ``max_version >= (1, 0)``.

        A CPU tensor is exported by NumPy. A CUDA tensor's capsule describes its device memory
        and keeps it alive until the consumer is done; the consumer's ``stream`` (None or 1:
        the legacy default stream, 2: per-thread, else a cudaStream_t; -1: none) waits for the
        work gradflow queued. ``copy=True`` exports a copy, ``dl_device=(1, 0)`` a host copy.

        >>> import gradflow as gf
        >>> import numpy as np
        >>> np.from_dlpack(gf.arange(3)).tolist()
        [0, 1, 2]
        """
        if self.requires_grad:
            raise RuntimeError("Can't export a Tensor that requires grad to DLPack; detach() it")
        if self.is_cuda:
            return _cuda_backend(self._backend).dlpack_export(
                self._data, stream=stream, max_version=max_version, dl_device=dl_device,
                copy=copy)
        asked = {"max_version": max_version, "dl_device": dl_device, "copy": copy}
        return self._data.__dlpack__(**{k: v for k, v in asked.items() if v is not None})

    def __dlpack_device__(self) -> Tuple[int, int]:
        """(device type, index) in DLPack's codes: (1, 0) for the CPU, (2, i) for cuda:i.

        >>> import gradflow as gf
        >>> gf.zeros(2).__dlpack_device__()
        (1, 0)
        """
        return (2, self.device.index or 0) if self.is_cuda else (1, 0)

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """The tensor converted to a dtype and/or device (self when it already is).

        to(dtype), to(device), to(device, dtype) or to(other_tensor); ``non_blocking`` and
        ``copy`` are accepted and ignored (no copy is made when nothing changes).

        >>> import gradflow as gf
        >>> gf.tensor([1, 2]).to(gf.float32)
        tensor([1., 2.])
        """
        target_dtype, target_device = parse_to(args, kwargs)
        out = self
        if target_device is not None and target_device != self.device:
            out = _ops.shape.to_device(out, target_device)
        if target_dtype is not None and target_dtype != out.dtype:
            out = _ops.shape.to_dtype(out, target_dtype)
        return out

    def cuda(self, device: Union[int, str, None] = None) -> Tensor:
        """The tensor on a CUDA device (device 0 by default); needs the CUDA backend and a GPU.

        >>> import gradflow as gf
        >>> if gf.cuda.is_available():
        ...     assert gf.zeros(2).cuda().is_cuda
        """
        return self.to(Device("cuda", device) if isinstance(device, int) or device is None
                       else Device(device))

    def cpu(self) -> Tensor:
        """The tensor on the CPU (self when it is there).

        >>> import gradflow as gf
        >>> gf.tensor([1.0]).cpu().device
        device(type='cpu')
        """
        return self.to("cpu")

    def type(self, dtype: Union[DTypeLike, None] = None) -> Union[str, Tensor]:
        """With no dtype, the PyTorch-style type name ('gradflow.FloatTensor'); with a dtype
        (or such a name), the tensor converted to it.

        >>> import gradflow as gf
        >>> x = gf.tensor([1.0])
        >>> x.type(), x.type("gradflow.LongTensor")
        ('gradflow.FloatTensor', tensor([1]))
        """
        if dtype is None:
            return _type_name(self.dtype, self.is_cuda)
        if isinstance(dtype, str) and dtype.endswith("Tensor"):
            names = {_type_name(d, False).split(".")[-1]: d for d in _STORED.values()}
            if dtype.split(".")[-1] not in names:
                raise ValueError(f"type: unknown tensor type {dtype!r}")
            dtype = names[dtype.split(".")[-1]]
        return self.to(as_dtype(dtype))

    def new_tensor(self, data: Any, dtype: Optional[DTypeLike] = None,
                   device: Optional[DeviceLike] = None, requires_grad: builtins.bool = False
                   ) -> Tensor:
        """A new tensor of `data`, with self's dtype and device unless given.

        >>> import gradflow as gf
        >>> gf.zeros(2, dtype=gf.float64).new_tensor([1, 2])
        tensor([1., 2.], dtype=gradflow.float64)
        """
        return tensor(data, dtype=self.dtype if dtype is None else dtype,
                      device=self.device if device is None else device,
                      requires_grad=requires_grad)

    def new_zeros(self, *size: SizeArg, dtype: Optional[DTypeLike] = None,
                  device: Optional[DeviceLike] = None, requires_grad: builtins.bool = False
                  ) -> Tensor:
        """zeros(size) with self's dtype and device unless given.

        >>> import gradflow as gf
        >>> gf.zeros(2, dtype=gf.float64).new_zeros(1, 2)
        tensor([[0., 0.]], dtype=gradflow.float64)
        """
        return self._new_like(zeros, size, dtype, device, requires_grad)

    def new_ones(self, *size: SizeArg, dtype: Optional[DTypeLike] = None,
                  device: Optional[DeviceLike] = None, requires_grad: builtins.bool = False
                  ) -> Tensor:
        """ones(size) with self's dtype and device unless given.

        >>> import gradflow as gf
        >>> gf.zeros(2, dtype=gf.float64).new_ones(1, 2)
        tensor([[1., 1.]], dtype=gradflow.float64)
        """
        return self._new_like(ones, size, dtype, device, requires_grad)

    def new_empty(self, *size: SizeArg, dtype: Optional[DTypeLike] = None,
                  device: Optional[DeviceLike] = None, requires_grad: builtins.bool = False
                  ) -> Tensor:
        """empty(size) with self's dtype and device unless given.

        >>> import gradflow as gf
        >>> gf.zeros(2, dtype=gf.float64).new_empty(1, 2).shape
        gradflow.Size([1, 2])
        """
        return self._new_like(empty, size, dtype, device, requires_grad)

    def new_full(self, size: Sequence[builtins.int], fill_value: Number,
                 dtype: Optional[DTypeLike] = None, device: Optional[DeviceLike] = None,
                 requires_grad: builtins.bool = False) -> Tensor:
        """full(size, fill_value) with self's dtype and device unless given.

        >>> import gradflow as gf
        >>> gf.zeros(2, dtype=gf.int64).new_full((2,), 7)
        tensor([7, 7])
        """
        return full(size, fill_value, dtype=self.dtype if dtype is None else dtype,
                    device=self.device if device is None else device,
                    requires_grad=requires_grad)

    def _new_like(self, make: Callable[..., Tensor], size: Tuple[SizeArg, ...],
                  dtype: Optional[DTypeLike], device: Optional[DeviceLike],
                  requires_grad: builtins.bool) -> Tensor:
        return make(*size, dtype=self.dtype if dtype is None else dtype,
                    device=self.device if device is None else device,
                    requires_grad=requires_grad)

    def data_ptr(self) -> builtins.int:
        """The memory address of the first element (an int, as PyTorch's).

        >>> import gradflow as gf
        >>> x = gf.zeros(4)
        >>> x[1:].data_ptr() - x.data_ptr()
        4
        """
        return builtins.int(self._backend.data_ptr(self._data))

    # device and layout predicates PyTorch scripts test: gradflow tensors are dense, not
    # quantized, on the CPU or a CUDA device
    def _never(self) -> builtins.bool:
        """False: gradflow tensors are dense, on the CPU or a CUDA device.

        >>> import gradflow as gf
        >>> gf.zeros(1).is_xpu, gf.zeros(1).is_sparse
        (False, False)
        """
        return False

    is_xpu = is_mps = is_meta = is_sparse = is_quantized = property(_never)
    del _never

    def type_as(self, other: Tensor) -> Tensor:
        """self.to(other.dtype).

        >>> import gradflow as gf
        >>> gf.tensor([1, 2]).type_as(gf.zeros(1))
        tensor([1., 2.])
        """
        _ops.common.check_tensor(other, "type_as", "other")
        return self.to(other.dtype)

    def contiguous(self) -> Tensor:
        """self when its elements are laid out in row-major order, else a row-major copy.

        >>> import gradflow as gf
        >>> x = gf.zeros(2, 3).t()
        >>> x.is_contiguous(), x.contiguous().is_contiguous()
        (False, True)
        """
        return self if self.is_contiguous() else self.clone()

    def is_contiguous(self) -> builtins.bool:
        """Whether the elements are laid out in row-major order without gaps.

        >>> import gradflow as gf
        >>> gf.zeros(2, 3).is_contiguous()
        True
        """
        return builtins.bool(self._backend.is_contiguous(self._data))

    def detach(self) -> Tensor:
        """A tensor sharing storage with self, out of the graph (requires_grad=False).

        >>> import gradflow as gf
        >>> gf.ones(2, requires_grad=True).detach()
        tensor([1., 1.])
        """
        t = Tensor._make(self._data, self._backend)
        t._version = self._version
        return t

    def detach_(self) -> Tensor:
        """Take self out of the graph in place: it becomes a leaf that does not require grad.

        >>> import gradflow as gf
        >>> y = gf.ones(2, requires_grad=True) * 2
        >>> y.detach_().requires_grad
        False
        """
        self._ctx = None
        self.requires_grad = False
        return self

    def requires_grad_(self, requires_grad: builtins.bool = True) -> Tensor:
        """Set whether autograd records ops on this leaf; returns self.

        >>> import gradflow as gf
        >>> gf.zeros(2).requires_grad_()
        tensor([0., 0.], requires_grad=True)
        """
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
    def backward(self, gradient: Optional[Tensor] = None,
                 retain_graph: Optional[builtins.bool] = None,
                 create_graph: builtins.bool = False,
                 inputs: Union[Tensor, Sequence[Tensor], None] = None) -> None:
        """Sum the gradient of self with respect to each leaf into the leaf's .grad.

        >>> import gradflow as gf
        >>> x = gf.tensor([1.0, 2.0], requires_grad=True)
        >>> (x ** 2).sum().backward()
        >>> x.grad
        tensor([2., 4.])
        """
        _autograd.backward(self, gradient, retain_graph, create_graph, inputs=inputs)

    def register_hook(self, hook: Hook) -> _RemovableHandle:
        """hook(grad) runs when this tensor's gradient is computed; it may return a new one.

        >>> import gradflow as gf
        >>> x = gf.tensor([1.0, 2.0], requires_grad=True)
        >>> handle = x.register_hook(lambda g: g * 10)
        >>> x.sum().backward()
        >>> x.grad
        tensor([10., 10.])
        >>> handle.remove()
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        if self._ctx is None:
            if self._hooks is None:
                self._hooks = []
            hooks: List[Any] = self._hooks
        else:
            node = self._ctx
            if node._output_hooks is None:
                node._output_hooks = {}
            hooks = node._output_hooks.setdefault(self._output_nr, [])
        hooks.append(hook)
        return _RemovableHandle(hooks, hook)

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]
                                           ) -> _RemovableHandle:
        """hook(tensor) runs after a backward has summed this leaf's gradient into .grad (as
        PyTorch's; DistributedDataParallel starts its all-reduces from it).

        >>> import gradflow as gf
        >>> x = gf.tensor([1.0], requires_grad=True)
        >>> handle = x.register_post_accumulate_grad_hook(lambda t: print("grad", t.grad))
        >>> (x * 3).sum().backward()
        grad tensor([3.])
        """
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
        its hooks; a no-op on leaves and when called again.

        >>> import gradflow as gf
        >>> y = gf.tensor([1.0, 2.0], requires_grad=True) * 2
        >>> y.retain_grad()
        >>> y.sum().backward()
        >>> y.grad
        tensor([1., 1.])
        """
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
    def __len__(self) -> builtins.int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return builtins.int(self._data.shape[0])

    def __iter__(self) -> Iterator[Tensor]:
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self._data.shape[0]))

    def __bool__(self) -> builtins.bool:
        if self.numel() != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with {self.numel()} values is ambiguous"
            )
        return builtins.bool(self.item())

    def __float__(self) -> builtins.float:
        return builtins.float(self.item())

    def __int__(self) -> builtins.int:
        return builtins.int(self.item())

    def __index__(self) -> builtins.int:
        if self.is_floating_point() or self.numel() != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return builtins.int(self.item())

    def __format__(self, spec: str) -> str:
        """f"{loss:.4f}": a 0-d tensor formats its value, as PyTorch (f"{loss}" too); a
        one-element tensor also takes a spec (PyTorch refuses it); any other tensor gives
        str(t) for an empty spec and refuses a spec."""
        if self.ndim == 0 or (spec and self.numel() == 1):
            return format(self.item(), spec)
        return object.__format__(self, spec)

    __hash__ = object.__hash__

    def __reduce_ex__(self, protocol: SupportsIndex) -> Tuple[Any, ...]:
        """pickle and copy.copy: the values (a NumPy array), the device and requires_grad; the
        graph and .grad are not kept, as PyTorch's. A Parameter comes back a Parameter.
        (Pickling is the user's choice: gradflow.save never uses it.)

        >>> import pickle
        >>> import gradflow as gf
        >>> pickle.loads(pickle.dumps(gf.tensor([1.0, 2.0], requires_grad=True)))
        tensor([1., 2.], requires_grad=True)
        """
        return (_rebuild, (type(self), self._backend.to_numpy(self._data), str(self.device),
                           self.requires_grad))

    def __deepcopy__(self, memo: Dict[builtins.int, Any]) -> Tensor:
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
        copied: Tensor = memo[id(self)]
        return copied

    # ---------------------------------------------------------------- arithmetic
    def __add__(self, o: TensorLike) -> Tensor: return _ops.elementwise.add(self, _nd(o, self))
    def __radd__(self, o: TensorLike) -> Tensor: return _ops.elementwise.add(_nd(o, self), self)
    def __sub__(self, o: TensorLike) -> Tensor: return _ops.elementwise.sub(self, _nd(o, self))
    def __rsub__(self, o: TensorLike) -> Tensor: return _ops.elementwise.sub(_nd(o, self), self)
    def __mul__(self, o: TensorLike) -> Tensor: return _ops.elementwise.mul(self, _nd(o, self))
    def __rmul__(self, o: TensorLike) -> Tensor: return _ops.elementwise.mul(_nd(o, self), self)
    def __truediv__(self, o: TensorLike) -> Tensor: return _ops.elementwise.div(self, _nd(o, self))
    def __rtruediv__(self, o: TensorLike) -> Tensor: return _ops.elementwise.div(_nd(o, self), self)
    def __pow__(self, o: TensorLike) -> Tensor: return _ops.elementwise.pow(self, _nd(o, self))
    def __rpow__(self, o: TensorLike) -> Tensor: return _ops.elementwise.pow(_nd(o, self), self)
    def __matmul__(self, o: Tensor) -> Tensor:
        return _ops.linalg.matmul(self, _nd(o, self))
    def __rmatmul__(self, o: Tensor) -> Tensor:
        return _ops.linalg.matmul(_nd(o, self), self)
    def __neg__(self) -> Tensor: return _ops.elementwise.neg(self)
    def __pos__(self) -> Tensor: return self
    def __abs__(self) -> Tensor: return _ops.elementwise.abs(self)
    def __mod__(self, o: TensorLike) -> Tensor:
        return _ops.elementwise.remainder(self, _nd(o, self))
    def __floordiv__(self, o: TensorLike) -> Tensor:
        return _ops.elementwise.floor_divide(self, _nd(o, self))
    def __eq__(self, o: TensorLike) -> Tensor:  # type: ignore[override]
        return _ops.elementwise.eq(self, _nd(o, self))
    def __ne__(self, o: TensorLike) -> Tensor:  # type: ignore[override]
        return _ops.elementwise.ne(self, _nd(o, self))
    def __lt__(self, o: TensorLike) -> Tensor: return _ops.elementwise.lt(self, _nd(o, self))
    def __le__(self, o: TensorLike) -> Tensor: return _ops.elementwise.le(self, _nd(o, self))
    def __gt__(self, o: TensorLike) -> Tensor: return _ops.elementwise.gt(self, _nd(o, self))
    def __ge__(self, o: TensorLike) -> Tensor: return _ops.elementwise.ge(self, _nd(o, self))
    def __and__(self, o: TensorLike) -> Tensor:
        return _ops.elementwise.logical_and(self, _nd(o, self))
    def __or__(self, o: TensorLike) -> Tensor:
        return _ops.elementwise.logical_or(self, _nd(o, self))
    def __xor__(self, o: TensorLike) -> Tensor:
        return _ops.elementwise.logical_xor(self, _nd(o, self))
    def __invert__(self) -> Tensor: return _ops.elementwise.logical_not(self)
    def __iadd__(self, o: TensorLike) -> Tensor: return self.add_(_nd(o, self))
    def __isub__(self, o: TensorLike) -> Tensor: return self.sub_(_nd(o, self))
    def __imul__(self, o: TensorLike) -> Tensor: return self.mul_(_nd(o, self))
    def __itruediv__(self, o: TensorLike) -> Tensor: return self.div_(_nd(o, self))

    if TYPE_CHECKING:  # the methods the _CASTS loop installs, as type checkers see them
        def float(self) -> Tensor: ...
        def half(self) -> Tensor: ...
        def bfloat16(self) -> Tensor: ...
        def double(self) -> Tensor: ...
        def long(self) -> Tensor: ...
        def int(self) -> Tensor: ...
        def short(self) -> Tensor: ...
        def char(self) -> Tensor: ...
        def byte(self) -> Tensor: ...
        def bool(self) -> Tensor: ...
        # ... and, from each row of op_table.UNARY, x.exp(), x.exp_(), ... (_OP_METHODS)
        def __getattr__(self, name: str) -> Callable[[], Tensor]: ...

    if TYPE_CHECKING:  # the methods _OP_METHODS installs, as type checkers see them
        # gradflow.ops.elementwise
        add = _ops.elementwise.add
        sub = _ops.elementwise.sub
        mul = _ops.elementwise.mul
        div = _ops.elementwise.div
        pow = _ops.elementwise.pow
        maximum = _ops.elementwise.maximum
        minimum = _ops.elementwise.minimum
        clamp = _ops.elementwise.clamp
        clip = _ops.elementwise.clamp
        lerp = _ops.elementwise.lerp
        masked_fill = _ops.elementwise.masked_fill
        eq = _ops.elementwise.eq
        ne = _ops.elementwise.ne
        lt = _ops.elementwise.lt
        le = _ops.elementwise.le
        gt = _ops.elementwise.gt
        ge = _ops.elementwise.ge
        logical_and = _ops.elementwise.logical_and
        logical_or = _ops.elementwise.logical_or
        isclose = _ops.elementwise.isclose
        allclose = _ops.elementwise.allclose
        # gradflow.ops.linalg
        matmul = _ops.linalg.matmul
        mm = _ops.linalg.mm
        bmm = _ops.linalg.bmm
        dot = _ops.linalg.dot
        tril = _ops.linalg.tril
        triu = _ops.linalg.triu
        diag = _ops.linalg.diag
        outer = _ops.linalg.outer
        addmm = _ops.linalg.addmm
        baddbmm = _ops.linalg.baddbmm
        det = _ops.linalg.det
        slogdet = _ops.linalg.slogdet
        inverse = _ops.linalg.inverse
        # gradflow.ops.reduce
        sum = _ops.reduce.sum
        mean = _ops.reduce.mean
        var = _ops.reduce.var
        std = _ops.reduce.std
        prod = _ops.reduce.prod
        max = _ops.reduce.max
        min = _ops.reduce.min
        amax = _ops.reduce.amax
        amin = _ops.reduce.amin
        argmax = _ops.reduce.argmax
        argmin = _ops.reduce.argmin
        logsumexp = _ops.reduce.logsumexp
        norm = _ops.reduce.norm
        all = _ops.reduce.all
        any = _ops.reduce.any
        softmax = _ops.reduce.softmax
        log_softmax = _ops.reduce.log_softmax
        cumsum = _ops.reduce.cumsum
        cumprod = _ops.reduce.cumprod
        # gradflow.ops.shape
        clone = _ops.shape.clone
        flatten = _ops.shape.flatten
        unflatten = _ops.shape.unflatten
        squeeze = _ops.shape.squeeze
        unsqueeze = _ops.shape.unsqueeze
        transpose = _ops.shape.transpose
        t = _ops.shape.t
        flip = _ops.shape.flip
        broadcast_to = _ops.shape.expand
        split = _ops.shape.split
        chunk = _ops.shape.chunk
        unbind = _ops.shape.unbind
        narrow = _ops.shape.narrow
        roll = _ops.shape.roll
        # gradflow.ops.index
        gather = _ops.index.gather
        scatter_add = _ops.index.scatter_add
        index_select = _ops.index.index_select
        index_add = _ops.index.index_add
        scatter = _ops.index.scatter
        sort = _ops.index.sort
        argsort = _ops.index.argsort
        topk = _ops.index.topk
        masked_select = _ops.index.masked_select
        nonzero = _ops.index.nonzero
        unique = _ops.index.unique
        # gradflow.ops.random
        multinomial = _ops.random.multinomial
        # gradflow.ops.inplace
        copy_ = _ops.inplace.copy_
        uniform_ = _ops.inplace.uniform_
        normal_ = _ops.inplace.normal_
        bernoulli_ = _ops.inplace.bernoulli_
        index_add_ = _ops.inplace.index_add_
        scatter_ = _ops.inplace.scatter_
        fill_diagonal_ = _ops.inplace.fill_diagonal_

    # The methods that only call their op (x.sum(...) is reduce.sum(x, ...)) are the ops
    # functions themselves, installed from _OP_METHODS at the end of this module. Written
    # here: the operators above and the methods that adapt their arguments.
    def square(self) -> Tensor:
        """self * self.

        >>> import gradflow as gf
        >>> gf.tensor([1.0, -3.0]).square()
        tensor([1., 9.])
        """
        return _ops.elementwise.mul(self, self)

    def where(self, condition: Tensor, other: TensorLike) -> Tensor:
        """gradflow.where(condition, self, other).

        >>> import gradflow as gf
        >>> x = gf.tensor([1.0, -2.0])
        >>> x.where(x > 0, 0.0)
        tensor([1., 0.])
        """
        return _ops.elementwise.where(condition, self, other)

    # ---------------------------------------------------------------- shape
    def reshape(self, *shape: SizeArg) -> Tensor:
        """gradflow.reshape(self, shape); the shape as one tuple or as separate ints.

        >>> import gradflow as gf
        >>> gf.arange(6).reshape(2, -1)
        tensor([[0, 1, 2],
                [3, 4, 5]])
        """
        return _ops.shape.reshape(self, _varargs(shape))

    def view(self, *shape: SizeArg) -> Tensor:
        """The same storage seen with another shape (it must not need a copy); dtype
        reinterpretation (view(dtype)) is not supported.

        >>> import gradflow as gf
        >>> gf.arange(6).view(3, 2)
        tensor([[0, 1],
                [2, 3],
                [4, 5]])
        """
        return _ops.shape.view(self, _varargs(shape))

    def view_as(self, other: Tensor) -> Tensor:
        """self.view(other.shape).

        >>> import gradflow as gf
        >>> gf.arange(4).view_as(gf.zeros(2, 2)).shape
        gradflow.Size([2, 2])
        """
        return _ops.shape.view(self, _shape_of(other, "view_as"))

    def reshape_as(self, other: Tensor) -> Tensor:
        """self.reshape(other.shape).

        >>> import gradflow as gf
        >>> gf.arange(4).reshape_as(gf.zeros(2, 2)).shape
        gradflow.Size([2, 2])
        """
        return _ops.shape.reshape(self, _shape_of(other, "reshape_as"))

    def permute(self, *dims: SizeArg) -> Tensor:
        """gradflow.permute(self, dims); the dims as one tuple or as separate ints.

        >>> import gradflow as gf
        >>> gf.zeros(2, 3, 4).permute(2, 0, 1).shape
        gradflow.Size([4, 2, 3])
        """
        return _ops.shape.permute(self, _varargs(dims))

    def expand(self, *sizes: SizeArg) -> Tensor:
        """gradflow.expand(self, sizes); the sizes as one tuple or as separate ints.

        >>> import gradflow as gf
        >>> gf.tensor([[1], [2]]).expand(2, 3)
        tensor([[1, 1, 1],
                [2, 2, 2]])
        """
        return _ops.shape.expand(self, _varargs(sizes))

    def expand_as(self, other: Tensor) -> Tensor:
        """self.expand(other.shape).

        >>> import gradflow as gf
        >>> gf.tensor([1, 2]).expand_as(gf.zeros(2, 2))
        tensor([[1, 2],
                [1, 2]])
        """
        return _ops.shape.expand(self, _shape_of(other, "expand_as"))

    def repeat(self, *sizes: SizeArg) -> Tensor:
        """gradflow.repeat(self, sizes); the sizes as one tuple or as separate ints.

        >>> import gradflow as gf
        >>> gf.tensor([1, 2]).repeat(2)
        tensor([1, 2, 1, 2])
        """
        return _ops.shape.repeat(self, _varargs(sizes))

    # ---------------------------------------------------------------- indexing
    def __getitem__(self, key: Any) -> Tensor: return _ops.index.getitem(self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        _ops.inplace.setitem(self, key, value)

    # ---------------------------------------------------------------- in place
    # Each x.op_(...) below: self = x.op(...) in place, returning self (see ops/inplace.py).
    def add_(self, o: TensorLike, alpha: Number = 1) -> Tensor:
        """self += alpha * o in place.

        >>> import gradflow as gf
        >>> gf.ones(2).add_(gf.tensor([1.0, 2.0]), alpha=10)
        tensor([11., 21.])
        """
        return _ops.inplace.arith_(self, "add", o if alpha == 1 else o * alpha)

    def sub_(self, o: TensorLike, alpha: Number = 1) -> Tensor:
        """self -= alpha * o in place.

        >>> import gradflow as gf
        >>> gf.ones(2).sub_(1.0)
        tensor([0., 0.])
        """
        return _ops.inplace.arith_(self, "sub", o if alpha == 1 else o * alpha)

    def mul_(self, o: TensorLike) -> Tensor:
        """self *= o in place.

        >>> import gradflow as gf
        >>> gf.ones(2).mul_(3)
        tensor([3., 3.])
        """
        return _ops.inplace.arith_(self, "mul", o)

    def div_(self, o: TensorLike) -> Tensor:
        """self /= o in place.

        >>> import gradflow as gf
        >>> gf.ones(2).div_(4)
        tensor([0.2500, 0.2500])
        """
        return _ops.inplace.arith_(self, "div", o)

    def pow_(self, o: TensorLike) -> Tensor:
        """self **= o in place.

        >>> import gradflow as gf
        >>> gf.tensor([2.0, 3.0]).pow_(2)
        tensor([4., 9.])
        """
        return _ops.inplace.arith_(self, "pow", o)

    def clamp_(self, min: Optional[TensorLike] = None, max: Optional[TensorLike] = None
               ) -> Tensor:
        """self = clamp(self, min, max) in place.

        >>> import gradflow as gf
        >>> gf.tensor([-2.0, 0.5, 3.0]).clamp_(-1, 1)
        tensor([-1.0000,  0.5000,  1.0000])
        """
        return _ops.inplace.apply_(self, lambda s: s.clamp(min, max), "clamp_", min, max)

    clip_ = clamp_

    def masked_fill_(self, mask: Tensor, value: TensorLike) -> Tensor:
        """self = masked_fill(self, mask, value) in place.

        >>> import gradflow as gf
        >>> x = gf.tensor([1.0, -2.0])
        >>> x.masked_fill_(x < 0, 0.0)
        tensor([1., 0.])
        """
        return _ops.inplace.apply_(self, lambda s: s.masked_fill(mask, value), "masked_fill_",
                                   value)

    def lerp_(self, end: TensorLike, weight: TensorLike) -> Tensor:
        """self += weight * (end - self) in place.

        >>> import gradflow as gf
        >>> gf.zeros(2).lerp_(gf.tensor([10.0, 20.0]), 0.5)
        tensor([ 5., 10.])
        """
        return _ops.inplace.apply_(self, lambda s: s.lerp(end, weight), "lerp_", end, weight)

    def addcmul_(self, tensor1: Tensor, tensor2: Tensor, value: Number = 1) -> Tensor:
        """self += value * tensor1 * tensor2 in place.

        >>> import gradflow as gf
        >>> gf.ones(2).addcmul_(gf.tensor([2.0, 3.0]), gf.tensor([4.0, 5.0]), value=0.5)
        tensor([5.0000, 8.5000])
        """
        return _ops.inplace.pointwise_(self, "addcmul_", tensor1, tensor2, value,
                                       _ops.elementwise.mul)

    def addcdiv_(self, tensor1: Tensor, tensor2: Tensor, value: Number = 1) -> Tensor:
        """self += value * tensor1 / tensor2 in place.

        >>> import gradflow as gf
        >>> gf.ones(2).addcdiv_(gf.tensor([2.0, 3.0]), gf.tensor([4.0, 6.0]))
        tensor([1.5000, 1.5000])
        """
        return _ops.inplace.pointwise_(self, "addcdiv_", tensor1, tensor2, value,
                                       _ops.elementwise.div)

    def zero_(self) -> Tensor:
        """Fill self with zeros in place.

        >>> import gradflow as gf
        >>> gf.ones(2).zero_()
        tensor([0., 0.])
        """
        return _ops.inplace.fill_(self, 0, "zero_")

    def fill_(self, value: TensorLike) -> Tensor:
        """Fill self with value in place.

        >>> import gradflow as gf
        >>> gf.zeros(2).fill_(7)
        tensor([7., 7.])
        """
        return _ops.inplace.fill_(self, value)


class _RemovableHandle:
    """What register_hook returns: remove() unregisters the hook."""

    def __init__(self, hooks: List[Any], hook: Callable[..., Any]) -> None:
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        """Unregister the hook (a no-op when called again)."""
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)


def _type_name(d: dtype, on_cuda: bool) -> str:
    """PyTorch's legacy tensor type name of a dtype: 'gradflow.cuda.LongTensor'."""
    kind = {"float32": "Float", "float64": "Double", "int64": "Long", "int32": "Int",
            "int16": "Short", "int8": "Char", "uint8": "Byte", "bool": "Bool", "float16": "Half",
            "bfloat16": "BFloat16"}[d.name]
    return f"gradflow.{'cuda.' if on_cuda else ''}{kind}Tensor"


def _shape_of(other: Tensor, op: str) -> Tuple[int, ...]:
    """other's shape, for the *_as methods (a TypeError naming the op if other is no Tensor)."""
    _ops.common.check_tensor(other, op, "other")
    return tuple(other.shape)


def _varargs(args: Tuple[Any, ...]) -> Tuple[Any, ...]:
    """Accept f(2, 3) and f((2, 3)) alike."""
    if len(args) == 1 and isinstance(args[0], (tuple, list, Size)):
        return tuple(args[0])
    return tuple(args)


# ---------------------------------------------------------------- creation functions
_int64 = as_dtype("int64")
_bool = as_dtype("bool")
_DTYPE_NAMES = ("float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool",
                "float16", "bfloat16")
_STORED = {name: as_dtype(name) for name in _DTYPE_NAMES}
_STORED_NP = tuple(d.np for d in _STORED.values())
_HALF_NOTE = ": a CPU storage type (math on it runs in float32)"


def _infer_dtype(data: Any) -> dtype:
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


def _kind_only(a: np.ndarray[Any, Any]) -> Any:
    """A stand-in whose inferred dtype depends only on a's kind (lists carry no width)."""
    return a.dtype.type(0).item()


def _nested_to_numpy(data: Any) -> Any:
    """Nested lists/tuples that may hold tensors or scalars -> one NumPy array."""
    if isinstance(data, Tensor):
        return data.detach().numpy()
    if isinstance(data, (list, tuple)) and any(isinstance(d, (Tensor, list, tuple)) for d in data):
        return np.stack([np.asarray(_nested_to_numpy(d)) for d in data]) if data else np.array([])
    return np.asarray(data)


def tensor(data: Any, dtype: Optional[DTypeLike] = None, device: Optional[DeviceLike] = None,
           requires_grad: bool = False) -> Tensor:
    """A new tensor copying `data` (nested lists, numbers, NumPy arrays or tensors).

    >>> import gradflow as gf
    >>> gf.tensor([[1, 2], [3, 4]])
    tensor([[1, 2],
            [3, 4]])
    >>> gf.tensor([0.5, 1.0], dtype=gf.float64, requires_grad=True)
    tensor([0.5000, 1.0000], dtype=gradflow.float64, requires_grad=True)
    """
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


def as_tensor(data: Any, dtype: Optional[DTypeLike] = None,
              device: Optional[DeviceLike] = None) -> Tensor:
    """Like tensor(), but shares memory with a NumPy array when dtype and device allow.

    >>> import gradflow as gf
    >>> import numpy as np
    >>> a = np.zeros(2, dtype=np.float32)
    >>> t = gf.as_tensor(a)
    >>> a[0] = 5
    >>> t
    tensor([5., 0.])
    """
    if isinstance(data, Tensor):
        return data.to(device=device, dtype=dtype) if (dtype or device) else data
    if isinstance(data, np.ndarray) and (device is None or isinstance(device, str)
                                         and device == "cpu") and (
        dtype is None or as_dtype(dtype).np == data.dtype
    ) and data.dtype in _STORED_NP:
        return from_numpy(data)
    return tensor(data, dtype=dtype, device=device)


def from_numpy(a: np.ndarray[Any, Any]) -> Tensor:
    """A CPU tensor sharing memory with `a` (float32, float64, an integer type of
    gradflow's or bool).

    >>> import gradflow as gf
    >>> import numpy as np
    >>> gf.from_numpy(np.arange(3))
    tensor([0, 1, 2])
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray, got {type(a).__name__}")
    if a.dtype not in _STORED_NP:
        raise TypeError(
            f"from_numpy: can't convert np.ndarray of type {a.dtype}; the supported types are "
            f"{', '.join(_DTYPE_NAMES)} (use gradflow.tensor to convert with a copy)"
        )
    canonical = from_numpy_dtype(a.dtype).np  # an unpickled array's dtype is an equal copy
    return Tensor._make(a if a.dtype is canonical else a.view(canonical), backends.cpu)


def from_dlpack(obj: Any) -> Tensor:
    """A tensor sharing memory with an object that implements the DLPack protocol (a torch
    or NumPy array, a gradflow tensor, ...), on the object's device.

    CPU memory comes through NumPy; CUDA memory (``__dlpack_device__() == (2, 0)``) becomes a
    CUDA tensor that keeps the producer's memory alive and releases it through the producer's
    deleter when the last view of it dies. The producer is asked to make gradflow's stream wait
    for its work.

    >>> import gradflow as gf
    >>> import numpy as np
    >>> gf.from_dlpack(np.array([1.0, 2.0]))
    tensor([1., 2.], dtype=gradflow.float64)
    """
    if not (hasattr(obj, "__dlpack_device__") and hasattr(obj, "__dlpack__")):
        raise TypeError(f"from_dlpack: expected an object with __dlpack__ and "
                        f"__dlpack_device__, got {type(obj).__name__}")
    dev_type, dev_id = obj.__dlpack_device__()
    if dev_type == 2:  # kDLCUDA
        try:
            backend = backends.get_backend(Device("cuda", dev_id))
        except RuntimeError as exc:
            raise RuntimeError(f"from_dlpack: {exc}") from None
        return Tensor._make(_cuda_backend(backend).dlpack_import(obj), backend)
    if dev_type != 1:  # kDLCPU
        raise BufferError(f"from_dlpack: DLPack device type {dev_type} is not supported; "
                          "gradflow shares CPU (1) and CUDA (2) memory")
    try:
        a = np.from_dlpack(obj)
    except (TypeError, BufferError) as exc:  # a dtype NumPy has no type for
        raise TypeError(f"from_dlpack: {exc}") from None
    return from_numpy(a)


def _cuda_backend(backend: Backend) -> "CUDABackend":
    """The CUDA backend a CUDA tensor runs on, as its own type (the DLPack exchange is
    device-specific)."""
    from gradflow.backends.cuda import CUDABackend

    if not isinstance(backend, CUDABackend):
        raise TypeError(f"expected the CUDA backend, got {type(backend).__name__}")
    return backend


def _rebuild(cls: type, values: "np.ndarray[Any, Any]", device: str, requires_grad: bool
             ) -> Tensor:
    """The inverse of Tensor.__reduce_ex__ (pickle and copy.copy)."""
    backend = backends.get_backend(device)
    t = Tensor._make(backend.from_numpy(from_numpy(values)._data), backend)
    return t.requires_grad_(requires_grad) if cls is Tensor else cls(t, requires_grad)


_T = TypeVar("_T")


def _nd(operand: Union[_T, "np.ndarray[Any, Any]"], like: Tensor) -> Union[_T, Tensor]:
    """An np.ndarray operand of an operator as a tensor on like's device, as PyTorch (`t + a`
    and `a + t` give a Tensor, promoting dtypes as two tensors do); anything else as is.
    (The operators' annotations say TensorLike: an ndarray there would overlap NumPy's own.)"""
    return tensor(operand, device=like.device) if isinstance(operand, np.ndarray) else operand


def _shape_arg(size: Tuple[Any, ...], op: str) -> Tuple[int, ...]:
    """f(2, 3), f((2, 3)) or f([2, 3]): ints >= 0 (bools and floats refused, as PyTorch)."""
    shape = _ops.common.as_ints(_varargs(size), op, "size")
    if any(s < 0 for s in shape):
        raise ValueError(f"{op}: invalid shape {shape}: sizes must be non-negative integers")
    return shape


def _new(op: str, make: Callable[[Backend, Tuple[int, ...], Any], Array], size: Tuple[Any, ...],
         dtype: Optional[DTypeLike], device: Optional[DeviceLike], requires_grad: bool,
         default: Optional[dtype] = None) -> Tensor:
    dt = as_dtype(dtype) if dtype is not None else (default or get_default_dtype())
    backend = backends.get_backend(device if device is not None else "cpu")
    shape = _shape_arg(size, op)
    with _ops.common.allocating(op, shape, dt.itemsize):
        t = Tensor._make(make(backend, shape, dt.np), backend)
    if _ops.common.as_bool(requires_grad, op, "requires_grad"):
        t.requires_grad_(True)
    return t


def zeros(*size: SizeArg, dtype: Optional[DTypeLike] = None, device: Optional[DeviceLike] = None,
          requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of the given shape.

    >>> import gradflow as gf
    >>> gf.zeros(2, 3)
    tensor([[0., 0., 0.],
            [0., 0., 0.]])
    """
    return _new("zeros", lambda b, s, d: b.full(s, 0, d), size, dtype, device, requires_grad)


def ones(*size: SizeArg, dtype: Optional[DTypeLike] = None, device: Optional[DeviceLike] = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor of ones of the given shape.

    >>> import gradflow as gf
    >>> gf.ones((2,), dtype=gf.int64)
    tensor([1, 1])
    """
    return _new("ones", lambda b, s, d: b.full(s, 1, d), size, dtype, device, requires_grad)


def empty(*size: SizeArg, dtype: Optional[DTypeLike] = None, device: Optional[DeviceLike] = None,
          requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor of the given shape.

    >>> import gradflow as gf
    >>> gf.empty(2, 3).shape
    gradflow.Size([2, 3])
    """
    return _new("empty", lambda b, s, d: b.empty(s, d), size, dtype, device, requires_grad)


def full(size: SizeArg, fill_value: Number, dtype: Optional[DTypeLike] = None,
         device: Optional[DeviceLike] = None, requires_grad: bool = False) -> Tensor:
    """A tensor of the given shape filled with fill_value (its dtype inferred from it).

    >>> import gradflow as gf
    >>> gf.full((2, 2), 7)
    tensor([[7, 7],
            [7, 7]])
    """
    if not isinstance(fill_value, numbers.Number):
        raise TypeError(f"full: argument 'fill_value' must be a number, not "
                        f"{type(fill_value).__name__}")
    dt = as_dtype(dtype) if dtype is not None else _infer_dtype(fill_value)
    fill_value = _ops.common.fit_scalar("full", fill_value, dt)
    return _new("full", lambda b, s, d: b.full(s, fill_value, d), (size,), dt, device,
                requires_grad)


def parse_to(args: Sequence[Any], kwargs: Dict[str, Any]
             ) -> Tuple[Optional[dtype], Optional[Device]]:
    """(dtype, device) from the arguments of Tensor.to and Module.to: dtypes (or their names),
    devices (a string, a device, an int for cuda:<int>), a tensor giving both, or the keywords
    dtype= and device=; None for what is not given."""
    dtype, device = None, None
    for a in list(args) + [kwargs.get("dtype"), kwargs.get("device")]:
        if a is None:
            continue
        if isinstance(a, Tensor):
            dtype, device = a.dtype, a.device
        elif isinstance(a, (str, Device, int)) and not isinstance(a, bool) and not (
                isinstance(a, str) and a in _DTYPE_NAMES):
            device = Device(a)
        else:
            dtype = as_dtype(a)
    return dtype, device


def _like(fn: Callable[..., Tensor], t: Tensor, dtype: Optional[DTypeLike],
          device: Optional[DeviceLike], requires_grad: bool, *args: Any) -> Tensor:
    _ops.common.check_tensor(t, fn.__name__ + "_like")
    return fn(*args, t.shape, dtype=t.dtype if dtype is None else dtype,
              device=t.device if device is None else device, requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype: Optional[DTypeLike] = None,
               device: Optional[DeviceLike] = None, requires_grad: bool = False
               ) -> Tensor:
    """zeros(input.shape) with input's dtype and device unless given.

    >>> import gradflow as gf
    >>> gf.zeros_like(gf.tensor([1, 2]))
    tensor([0, 0])
    """
    return _like(zeros, t, dtype, device, requires_grad)


def ones_like(t: Tensor, dtype: Optional[DTypeLike] = None,
              device: Optional[DeviceLike] = None, requires_grad: bool = False
              ) -> Tensor:
    """ones(input.shape) with input's dtype and device unless given.

    >>> import gradflow as gf
    >>> gf.ones_like(gf.tensor([1.0, 2.0]))
    tensor([1., 1.])
    """
    return _like(ones, t, dtype, device, requires_grad)


def empty_like(t: Tensor, dtype: Optional[DTypeLike] = None,
               device: Optional[DeviceLike] = None, requires_grad: bool = False
               ) -> Tensor:
    """empty(input.shape) with input's dtype and device unless given.

    >>> import gradflow as gf
    >>> gf.empty_like(gf.zeros(2, 3)).shape
    gradflow.Size([2, 3])
    """
    return _like(empty, t, dtype, device, requires_grad)


def full_like(t: Tensor, fill_value: Number, dtype: Optional[DTypeLike] = None,
              device: Optional[DeviceLike] = None, requires_grad: bool = False) -> Tensor:
    """full(input.shape, fill_value) with input's dtype and device unless given.

    >>> import gradflow as gf
    >>> gf.full_like(gf.zeros(2), 3)
    tensor([3., 3.])
    """
    _ops.common.check_tensor(t, "full_like")
    return full(t.shape, fill_value, dtype=t.dtype if dtype is None else dtype,
                device=t.device if device is None else device, requires_grad=requires_grad)


def _number(value: Any, op: str, arg: str) -> Union[int, float]:
    """A real-number argument as given (an int stays an int); a one-element tensor's value."""
    if isinstance(value, Tensor):
        return _ops.common.as_float(value, op, arg)
    if isinstance(value, numbers.Real):
        return value  # type: ignore[return-value]  # a numbers.Real is an int or a float
    raise TypeError(f"{op}: argument '{arg}' must be a number, not {type(value).__name__}")


def _arange_length(start: Number, end: Number, step: Number) -> int:
    """ceil((end - start) / step), exact for ints."""
    if all(isinstance(v, numbers.Integral) for v in (start, end, step)):
        return int(-((start - end) // step))
    return math.ceil((end - start) / step)


def arange(start: Number, end: Optional[Number] = None, step: Number = 1,
           dtype: Optional[DTypeLike] = None, device: Optional[DeviceLike] = None,
           requires_grad: bool = False) -> Tensor:
    """The numbers start, start + step, ... up to end (excluded); arange(n) is 0 .. n-1.

    >>> import gradflow as gf
    >>> gf.arange(4), gf.arange(0, 1, 0.25)
    (tensor([0, 1, 2, 3]), tensor([0.0000, 0.2500, 0.5000, 0.7500]))
    """
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
        t = Tensor._make(backend.arange(values[0], values[1], values[2], dt.np), backend)
    return t.requires_grad_(True) if requires_grad else t


def linspace(start: Number, end: Number, steps: int, dtype: Optional[DTypeLike] = None,
             device: Optional[DeviceLike] = None, requires_grad: bool = False) -> Tensor:
    """steps evenly spaced numbers from start to end, both included.

    >>> import gradflow as gf
    >>> gf.linspace(0, 1, 5)
    tensor([0.0000, 0.2500, 0.5000, 0.7500, 1.0000])
    """
    start, end = _number(start, "linspace", "start"), _number(end, "linspace", "end")
    steps = _ops.common.as_int(steps, "linspace", "steps")
    if steps < 0:
        raise ValueError(f"linspace: number of steps must be non-negative, got {steps}")
    with _ops.common.allocating("linspace", (steps,), 8):
        values = np.linspace(start, end, steps)
    return tensor(values, dtype=get_default_dtype() if dtype is None else dtype, device=device,
                  requires_grad=requires_grad)


def eye(n: int, m: Optional[int] = None, dtype: Optional[DTypeLike] = None,
        device: Optional[DeviceLike] = None, requires_grad: bool = False) -> Tensor:
    """The n x m identity matrix (m = n by default).

    >>> import gradflow as gf
    >>> gf.eye(2)
    tensor([[1., 0.],
            [0., 1.]])
    """
    n = _ops.common.as_int(n, "eye", "n")
    m = n if m is None else _ops.common.as_int(m, "eye", "m")
    if n < 0 or m < 0:
        raise ValueError(f"eye: n and m must be non-negative, got n={n}, m={m}")
    with _ops.common.allocating("eye", (n, m), 8):
        values = np.eye(n, m)
    return tensor(values, dtype=get_default_dtype() if dtype is None else dtype, device=device,
                  requires_grad=requires_grad)


def rand(*size: SizeArg, dtype: Optional[DTypeLike] = None, device: Optional[DeviceLike] = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform random numbers in [0, 1), from the device's seeded generator.

    >>> import gradflow as gf
    >>> gf.rand(2, 3).shape
    gradflow.Size([2, 3])
    """
    return _new("rand", lambda b, s, d: b.rand(s, d), size, dtype, device, requires_grad)


def randn(*size: SizeArg, dtype: Optional[DTypeLike] = None, device: Optional[DeviceLike] = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal random numbers, from the device's seeded generator.

    >>> import gradflow as gf
    >>> gf.randn(4).shape
    gradflow.Size([4])
    """
    return _new("randn", lambda b, s, d: b.randn(s, d), size, dtype, device, requires_grad)


def randint(low: int, high: Optional[int] = None, size: Optional[Sequence[int]] = None,
            dtype: Optional[DTypeLike] = None, device: Optional[DeviceLike] = None) -> Tensor:
    """Random integers in [low, high) (int64 unless dtype says), randint(high, size) too.

    >>> import gradflow as gf
    >>> x = gf.randint(0, 10, (2, 3))
    >>> x.shape, x.dtype, bool(((x >= 0) & (x < 10)).all())
    (gradflow.Size([2, 3]), gradflow.int64, True)
    """
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


def randperm(n: int, dtype: Optional[DTypeLike] = None,
             device: Optional[DeviceLike] = None) -> Tensor:
    """A random permutation of 0 .. n-1.

    >>> import gradflow as gf
    >>> gf.randperm(5).sort().values
    tensor([0, 1, 2, 3, 4])
    """
    n = _ops.common.as_int(n, "randperm", "n")
    if n < 0:
        raise ValueError(f"randperm: n must be non-negative, got {n}")
    backend = backends.get_backend(device if device is not None else "cpu")
    with _ops.common.allocating("randperm", (n,), 8):
        t = Tensor._make(backend.randperm(n), backend)
    return t if dtype is None else t.to(as_dtype(dtype))


def rand_like(t: Tensor, dtype: Optional[DTypeLike] = None,
              device: Optional[DeviceLike] = None, requires_grad: bool = False
              ) -> Tensor:
    """rand(input.shape) with input's dtype and device unless given.

    >>> import gradflow as gf
    >>> gf.rand_like(gf.zeros(2, 3)).shape
    gradflow.Size([2, 3])
    """
    return _like(rand, t, dtype, device, requires_grad)


def randn_like(t: Tensor, dtype: Optional[DTypeLike] = None,
               device: Optional[DeviceLike] = None, requires_grad: bool = False
               ) -> Tensor:
    """randn(input.shape) with input's dtype and device unless given.

    >>> import gradflow as gf
    >>> gf.randn_like(gf.zeros(2, 3)).dtype
    gradflow.float32
    """
    return _like(randn, t, dtype, device, requires_grad)


def randint_like(t: Tensor, low: int, high: Optional[int] = None,
                 dtype: Optional[DTypeLike] = None, device: Optional[DeviceLike] = None
                 ) -> Tensor:
    """randint(low, high, input.shape) with input's dtype and device unless given.

    >>> import gradflow as gf
    >>> gf.randint_like(gf.zeros(2, 2), 5).shape
    gradflow.Size([2, 2])
    """
    _ops.common.check_tensor(t, "randint_like")
    return randint(low, high, t.shape, dtype=t.dtype if dtype is None else dtype,
                   device=t.device if device is None else device)


def manual_seed(seed: int) -> None:
    """Seed every device's generator: the same seed gives the same numbers. A negative seed
    counts modulo 2**64, as PyTorch's.

    >>> import gradflow as gf
    >>> gf.manual_seed(0)
    >>> a = gf.rand(3)
    >>> gf.manual_seed(0)
    >>> gf.equal(a, gf.rand(3))
    True
    """
    seed = _ops.common.as_int(seed, "manual_seed", "seed") % 2**64
    for backend in backends.active_backends():
        backend.manual_seed(seed)
    backends.default_seed = seed


def is_tensor(obj: object) -> bool:
    """Whether obj is a gradflow Tensor.

    >>> import gradflow as gf
    >>> gf.is_tensor(gf.zeros(1)), gf.is_tensor([1.0])
    (True, False)
    """
    return isinstance(obj, Tensor)


def numel(input: Tensor) -> int:
    """The number of elements of input.

    >>> import gradflow as gf
    >>> gf.numel(gf.zeros(2, 3))
    6
    """
    _ops.common.check_tensor(input, "numel")
    return input.numel()


# x.float(), x.long(), ...: x.to(dtype), one method per row: (dtype, a note, what
# gf.tensor([1.5, 2.5]) becomes).
_CASTS = {
    "float": ("float32", "", "tensor([1.5000, 2.5000])"),
    "half": ("float16", _HALF_NOTE, "tensor([1.5000, 2.5000], dtype=gradflow.float16)"),
    "bfloat16": ("bfloat16", _HALF_NOTE, "tensor([1.5000, 2.5000], dtype=gradflow.bfloat16)"),
    "double": ("float64", "", "tensor([1.5000, 2.5000], dtype=gradflow.float64)"),
    "long": ("int64", "", "tensor([1, 2])"),
    "int": ("int32", "", "tensor([1, 2], dtype=gradflow.int32)"),
    "short": ("int16", "", "tensor([1, 2], dtype=gradflow.int16)"),
    "char": ("int8", "", "tensor([1, 2], dtype=gradflow.int8)"),
    "byte": ("uint8", "", "tensor([1, 2], dtype=gradflow.uint8)"),
    "bool": ("bool", "", "tensor([ True,  True])"),
}


def _cast_method(name: str, dtype_name: str, note: str, example: str
                 ) -> Callable[[Tensor], Tensor]:
    dtype = _STORED[dtype_name]

    def cast(self: Tensor) -> Tensor:
        return self.to(dtype)

    cast.__name__, cast.__qualname__ = name, "Tensor." + name
    cast.__doc__ = f"""self.to(gradflow.{dtype_name}){note}.

        >>> import gradflow as gf
        >>> gf.tensor([1.5, 2.5]).{name}()
        {example}
        """
    return cast


for _name, (_dtype_name, _note, _example) in _CASTS.items():
    setattr(Tensor, _name, _cast_method(_name, _dtype_name, _note, _example))

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
    "inplace": op_table.UNARY_INPLACE + (
        "copy_", "uniform_", "normal_", "bernoulli_", "index_add_", "scatter_", "fill_diagonal_"),
}
for _module, _names in _OP_METHODS.items():
    _functions = importlib.import_module("gradflow.ops." + _module)
    for _name in _names:
        setattr(Tensor, _name, getattr(_functions, _name))
