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

from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    FrozenSet,
    Generic,
    List,
    Optional,
    Tuple,
    Type,
    TypeVar,
)

from gradflow.autograd.grad_mode import _GradMode

if TYPE_CHECKING:
    from gradflow.tensor import Tensor

Output = TypeVar("Output")  # what a Function's apply returns: a Tensor, or a tuple of them
Gradients = Tuple[Optional["Tensor"], ...]  # what backward returns: one per forward argument


class Context:
    """Saved state of one Function call and its place in the graph (PyTorch's ``ctx``).

    ``forward`` keeps what ``backward`` needs as tensors (``save_for_backward``) or as free
    attributes (``ctx.shape = x.shape``).

    >>> import gradflow as gf
    >>> y = gf.ones(2, requires_grad=True) * 3
    >>> y.grad_fn.name(), y.grad_fn.next_functions[0][0].__class__.__name__
    ('MulBackward', 'Tensor')
    """

    # Defaults shared by every instance; a recorded call overwrites them (keeps calls cheap).
    _edges: Tuple[Any, ...] = ()  # per forward arg: None, leaf Tensor or (node, output index)
    # (shape, NumPy dtype, backend) per output
    _outputs_meta: List[Optional[Tuple[Any, Any, Any]]] = []
    _output_hooks: Optional[Dict[int, List[Any]]] = None  # output index -> list of hooks
    # output index -> weakref to a tensor that retains grad
    _retained: Optional[Dict[int, Any]] = None
    _non_differentiable: FrozenSet[int] = frozenset()
    needs_input_grad: Tuple[bool, ...] = ()
    _saved: Optional[tuple] = ()  # the saved tensors; None once freed
    _versions: tuple = ()  # their versions when saved

    if TYPE_CHECKING:  # the free attributes forward sets, for the type checker
        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...

    def __init__(self, fn: Type[Function[Any]]) -> None:
        self._fn = fn
        self._name = fn._backward_name

    # ---------------------------------------------------------------- user API
    def save_for_backward(self, *tensors: Optional[Tensor]) -> None:
        """Keep tensors for backward (None entries allowed); backward reads them from
        saved_tensors, which checks that none was changed in place since."""
        self._saved = tensors
        versions = []  # (a loop, not a comprehension: that is a call of its own, per op)
        for t in tensors:
            versions.append(t._version[0] if t is not None else 0)
        self._versions = tuple(versions)

    @property
    def saved_tensors(self) -> Tuple[Any, ...]:
        """The tensors given to save_for_backward, in order."""
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

    def mark_non_differentiable(self, *tensors: Tensor) -> None:
        """Outputs of forward that get no gradient (indices, masks)."""
        self._non_differentiable = self._non_differentiable | {id(t) for t in tensors}

    # ---------------------------------------------------------------- graph introspection
    def name(self) -> str:
        """The node's name, as in repr(t.grad_fn): 'MulBackward'."""
        return self._name

    @property
    def next_functions(self) -> Tuple[Tuple[Any, int], ...]:
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

    def register_hook(self, hook: Callable[..., Any]) -> None:
        """hook(grad_inputs, grad_outputs) is not supported; use Tensor.register_hook."""
        raise RuntimeError("grad_fn.register_hook is not supported; use Tensor.register_hook")

    def _free(self) -> None:
        self._saved = None

    def __repr__(self) -> str:
        return f"<{self._name} object at {hex(id(self))}>"


class Function(Generic[Output]):
    """Base class for differentiable operations; subclass and define forward/backward.

    As PyTorch's ``torch.autograd.Function`` with static methods: ``forward(ctx, *args)``
    returns backend arrays or Tensors (``Tensor._make`` wraps them), ``backward(ctx, *grads)``
    one gradient per argument. ``Function[Tensor]`` tells the type checker what apply returns.

    >>> import gradflow as gf
    >>> class Cube(gf.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x * x
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         (x,) = ctx.saved_tensors
    ...         return g * 3 * x * x
    >>> x = gf.tensor([1.0, 2.0], requires_grad=True)
    >>> Cube.apply(x).sum().backward()
    >>> x.grad
    tensor([ 3., 12.])
    """

    _backward_name = "FunctionBackward"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._backward_name = cls.__name__ + "Backward"

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> Any:
        """Compute the outputs (backend arrays or Tensors) from the arguments."""
        raise NotImplementedError(f"{type(ctx).__name__} must implement forward")

    @staticmethod
    def backward(ctx: Context, *grads: Any, **kwargs: Any) -> Any:
        """One gradient per forward argument (None where it has none) from the outputs'."""
        raise NotImplementedError("this Function has no backward")

    @classmethod
    def apply(cls: Type[Function[Output]], *args: Any) -> Output:
        """Run forward on args and, when one of them requires grad, record the node."""
        Tensor = _Tensor or _tensor_class()
        ctx = Context(cls)
        backend = None
        needs = []  # per argument: whether it is a Tensor that requires grad
        edges = []  # per argument: where its gradient goes, its node or itself (a leaf)
        for a in args:
            if isinstance(a, Tensor):
                if backend is None:
                    backend = a._backend
                if a.requires_grad:
                    needs.append(True)
                    edges.append((a._ctx, a._output_nr) if a._ctx is not None else a)
                    continue
            needs.append(False)
            edges.append(None)
        record = _GradMode.enabled and True in needs
        if record:  # forward may read needs_input_grad too, as in PyTorch
            ctx.needs_input_grad = tuple(needs)
            ctx._edges = tuple(edges)
        prev = _GradMode.enabled
        _GradMode.enabled = False
        try:
            raw = cls.forward(ctx, *args)
        finally:
            _GradMode.enabled = prev

        if type(raw) is not tuple:  # one output (the common case)
            out = raw if isinstance(raw, Tensor) else Tensor._make(raw, backend)
            if record:
                _record(ctx, (out,))
            return out  # type: ignore[return-value]  # forward's output, as Output says
        outputs = tuple([o if o is None or isinstance(o, Tensor) else Tensor._make(o, backend)
                         for o in raw])
        if record:
            _record(ctx, outputs)
        return outputs  # type: ignore[return-value]  # forward's outputs, as Output says


def _record(ctx: Context, outputs: Tuple[Any, ...]) -> None:
    """Make the call's ctx the node of its floating-point outputs."""
    meta: List[Optional[Tuple[Any, Any, Any]]] = []
    skip = ctx._non_differentiable
    for i, o in enumerate(outputs):
        if o is None:
            meta.append(None)
            continue
        meta.append((o._data.shape, o._data.dtype, o._backend))
        if o.is_floating_point() and id(o) not in skip:
            o.requires_grad = True
            o._ctx = ctx
            o._output_nr = i
    ctx._outputs_meta = meta


_Tensor: Optional[Type[Tensor]] = None


def _tensor_class() -> Type[Tensor]:
    """gradflow.tensor.Tensor (imported on first use: tensor.py imports this module)."""
    global _Tensor
    if _Tensor is None:
        from gradflow.tensor import Tensor

        _Tensor = Tensor
    return _Tensor


Backward = Callable[..., Any]


def once_differentiable(backward: Backward) -> Backward:
    """Decorator for a backward written on backend arrays: it cannot build a graph, so asking
    for a higher-order gradient through it raises instead of silently returning zeros.

    >>> import gradflow as gf
    >>> class Double(gf.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         return x * 2
    ...     @staticmethod
    ...     @gf.autograd.once_differentiable
    ...     def backward(ctx, g):
    ...         return g * 2
    >>> x = gf.ones(2, requires_grad=True)
    >>> gf.autograd.grad(Double.apply(x).sum(), x)
    (tensor([2., 2.]),)
    """

    def wrapper(ctx: Context, *grads: Any) -> Any:
        if _GradMode.enabled:  # only under create_graph=True
            raise RuntimeError(
                f"{ctx._name} is not differentiable twice (its backward runs native kernels); "
                "create_graph=True cannot pass through it"
            )
        return backward(ctx, *grads)

    wrapper.__name__ = backward.__name__
    wrapper.__doc__ = backward.__doc__
    return wrapper
