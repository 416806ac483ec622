"""Function: the one way to add a differentiable op, shaped like torch.autograd.Function.

``forward(ctx, *args)`` receives Tensor arguments as Tensors (and anything else as given),
runs with grad recording off, and returns backend arrays or Tensors. ``backward(ctx, *grads)``
receives one gradient Tensor per output and returns one gradient per forward argument (a
Tensor, a backend array or None). When ``backward`` is written in Tensor ops it is itself
differentiable, which gives higher-order gradients with ``create_graph=True``.

The ``ctx`` of a call is also its node in the graph: it keeps the edges to the nodes (or
leaf tensors) that produced its inputs.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from gradflow.autograd.grad_mode import _GradMode


class Context:
    """Saved state of one Function call and its place in the graph."""

    # Defaults shared by every instance; a recorded call overwrites them (keeps calls cheap).
    _edges: Tuple[Any, ...] = ()  # per forward arg: None, leaf Tensor or (node, output index)
    _outputs_meta: List[tuple] = []  # (shape, NumPy dtype, backend) per output
    _output_hooks: Optional[dict] = None  # output index -> list of hooks
    _retained: Optional[dict] = None  # output index -> weakref to a tensor that retains grad
    _non_differentiable: frozenset = frozenset()
    needs_input_grad: Tuple[bool, ...] = ()
    _saved: Optional[tuple] = ()  # the saved tensors; None once freed
    _versions: tuple = ()  # their versions when saved

    def __init__(self, fn: type) -> None:
        self._fn = fn
        self._name = fn._backward_name

    # ---------------------------------------------------------------- user API
    def save_for_backward(self, *tensors) -> None:
        self._saved = tensors
        self._versions = tuple([t._version[0] if t is not None else 0 for t in tensors])

    @property
    def saved_tensors(self) -> tuple:
        if self._saved is None:
            raise RuntimeError(
                f"{self._name}: trying to backward through the graph a second time (or directly "
                "access saved tensors after they have already been freed). Saved intermediate "
                "values of the graph are freed when you call .backward() or autograd.grad(). "
                "Specify retain_graph=True if you need to backward a second time."
            )
        for t, version in zip(self._saved, self._versions):
            if t is not None and t._version[0] != version:
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified by "
                    f"an inplace operation: [{t.dtype.name} tensor of shape {tuple(t.shape)}], "
                    f"which is input to {self._name}, is at version {t._version[0]}; expected "
                    f"version {version} instead."
                )
        return self._saved

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_differentiable = self._non_differentiable | {id(t) for t in tensors}

    # ---------------------------------------------------------------- graph introspection
    def name(self) -> str:
        return self._name

    @property
    def next_functions(self) -> tuple:
        """(node or None, output index) per input, like PyTorch's; leaves show as ('leaf', 0)."""
        out = []
        for e in self._edges:
            if e is None:
                out.append((None, 0))
            elif isinstance(e, tuple):
                out.append(e)
            else:
                out.append((e, 0))
        return tuple(out)

    def register_hook(self, hook) -> None:
        """hook(grad_inputs, grad_outputs) is not supported; use Tensor.register_hook."""
        raise RuntimeError("grad_fn.register_hook is not supported; use Tensor.register_hook")

    def _free(self) -> None:
        self._saved = None

    def __repr__(self) -> str:
        return f"<{self._name} object at {hex(id(self))}>"


class Function:
    """Base class for differentiable operations; subclass and define forward/backward."""

    _backward_name = "FunctionBackward"

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls._backward_name = cls.__name__ + "Backward"

    @staticmethod
    def forward(ctx: Context, *args: Any) -> Any:
        raise NotImplementedError(f"{type(ctx).__name__} must implement forward")

    @staticmethod
    def backward(ctx: Context, *grads: Any) -> Any:
        raise NotImplementedError("this Function has no backward")

    @classmethod
    def apply(cls, *args: Any) -> Any:
        Tensor = _Tensor or _tensor_class()
        ctx = Context(cls)
        backend = None
        record = False
        for a in args:
            if isinstance(a, Tensor):
                if backend is None:
                    backend = a._backend
                if a.requires_grad:
                    record = _GradMode.enabled
        if record:  # forward may read it too, as in PyTorch
            ctx.needs_input_grad = tuple([isinstance(a, Tensor) and a.requires_grad
                                          for a in args])
        prev = _GradMode.enabled
        _GradMode.enabled = False
        try:
            raw = cls.forward(ctx, *args)
        finally:
            _GradMode.enabled = prev

        if type(raw) is tuple:
            outputs = tuple([o if o is None or isinstance(o, Tensor) else Tensor._make(o, backend)
                             for o in raw])
        else:
            outputs = (raw if isinstance(raw, Tensor) else Tensor._make(raw, backend),)
        if record:
            _record(ctx, args, outputs)
        return outputs if type(raw) is tuple else outputs[0]


def _record(ctx: Context, args: tuple, outputs: tuple) -> None:
    """Make the call's ctx the node of its floating-point outputs, with an edge per input
    that requires grad."""
    ctx._edges = tuple([_edge(a) if need else None
                        for a, need in zip(args, ctx.needs_input_grad)])
    ctx._outputs_meta = [(o._data.shape, o._data.dtype, o._backend) if o is not None else None
                         for o in outputs]
    skip = ctx._non_differentiable
    for i, o in enumerate(outputs):
        if o is not None and o.is_floating_point() and id(o) not in skip:
            o.requires_grad = True
            o._ctx = ctx
            o._output_nr = i


_Tensor = None


def _tensor_class():
    """gradflow.tensor.Tensor (imported on first use: tensor.py imports this module)."""
    global _Tensor
    if _Tensor is None:
        from gradflow.tensor import Tensor

        _Tensor = Tensor
    return _Tensor


def _edge(t):
    """Where the gradient for input tensor `t` goes: its producing node, or the leaf itself."""
    return (t._ctx, t._output_nr) if t._ctx is not None else t


def once_differentiable(backward):
    """Decorator for a backward written on backend arrays: it cannot build a graph, so asking
    for a higher-order gradient through it raises instead of silently returning zeros."""

    def wrapper(ctx, *grads):
        if _GradMode.enabled:  # only under create_graph=True
            raise RuntimeError(
                f"{ctx._name} is not differentiable twice (its backward runs native kernels); "
                "create_graph=True cannot pass through it"
            )
        return backward(ctx, *grads)

    wrapper.__name__ = backward.__name__
    wrapper.__doc__ = backward.__doc__
    return wrapper
