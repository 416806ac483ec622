"""Higher-order derivatives of a whole function, as torch.autograd.functional: vjp, jvp,
jacobian, hessian, vhp and hvp.

Each takes a function `func` of one Tensor or of a tuple of Tensors (`inputs`), returning one
Tensor or a tuple of Tensors, and gives its results in the same structure. All are built on
reverse mode (``autograd.grad``, with ``create_graph=True`` where a derivative is
differentiated again):

- vjp:  v^T J, one backward pass from the outputs with gradient v.
- jvp:  J v by the double-backward trick: g(u) = J^T u is linear in a dummy u, so J v is the
  gradient of g(u) . v with respect to u (two backward passes, no forward mode needed).
- jacobian: one vjp per output element (the rows of J); strategy="forward-mode" builds it
  from one jvp per input element (the columns).
- hessian: the jacobian of the gradient.
- vhp:  v^T H, the gradient of grad(f) . v; hvp: H v, by the double-backward trick on grad(f).

`create_graph=True` keeps the graph of the results (to differentiate them again); otherwise
they are detached. `strict=True` raises where an output does not depend on an input, instead
of returning zeros. gradflow has no vmap: ``vectorize=True`` is accepted and computes the same
result with the loop (row by row, or column by column), so PyTorch code runs unchanged.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple, Union

from gradflow.autograd.grad_mode import enable_grad

__all__ = ["vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"]

TensorOrTuple = Union[Any, Tuple[Any, ...]]
_STRATEGIES = ("reverse-mode", "forward-mode")


def _tensor_cls() -> type:
    from gradflow.tensor import Tensor

    return Tensor


# ---------------------------------------------------------------- arguments and results
def _as_tuple(x: Any, arg: str, fn: str) -> Tuple[bool, tuple]:
    """(whether x was a tuple, x as a tuple of Tensors)."""
    is_tuple = isinstance(x, tuple)
    items = x if is_tuple else (x,)
    for i, el in enumerate(items):
        if not isinstance(el, _tensor_cls()):
            where = f"the value at index {i}" if is_tuple else f"the given {arg}"
            raise TypeError(f"{fn}: The {arg} given to {fn} must be either a Tensor or a tuple "
                            f"of Tensors but {where} has type {type(el).__name__}.")
    return is_tuple, items


def _unpack(res: Sequence, is_tuple: bool) -> Any:
    return tuple(res) if is_tuple else res[0]


def _prepare(tensors: tuple, create_graph: bool, need_graph: bool, fn: str = "") -> tuple:
    """Fresh tensors to differentiate with respect to (need_graph; they must be floating
    point): a view that keeps the caller's graph (create_graph, for a tensor that requires
    grad), else a detached copy of the reference."""
    if need_graph:
        _check_floating(tensors, fn)
    return tuple(t.view_as(t) if create_graph and t.requires_grad
                 else t.detach().requires_grad_(need_graph) for t in tensors)


def _check_floating(inputs: tuple, fn: str) -> None:
    for i, t in enumerate(inputs):
        if not t.is_floating_point():
            raise TypeError(f"{fn}: input {i} must be a floating-point Tensor to differentiate "
                            f"with respect to, got {t.dtype} (shape {tuple(t.shape)})")


def _finish(tensors: Sequence, create_graph: bool) -> tuple:
    """The results as returned: detached unless create_graph (nested tuples too)."""
    if create_graph:
        return tuple(tensors)
    return tuple(t.detach() if isinstance(t, _tensor_cls()) else _finish(t, False)
                 for t in tensors)


def _prepared_v(v: Any, refs: tuple, refs_are_tuple: bool, create_graph: bool, fn: str,
                what: str) -> Optional[tuple]:
    """v as a tuple shaped like refs; None is allowed only where refs is one one-element
    Tensor (`what` names it in the error)."""
    if v is None:
        if len(refs) != 1 or refs[0].numel() != 1:
            raise RuntimeError(f"{fn}: The vector v can only be None if {what} a single Tensor "
                               "with a single element.")
        return None
    _, v = _as_tuple(v, "v", fn)
    v = _prepare(v, create_graph, need_graph=False)
    if len(v) != len(refs):
        raise RuntimeError(f"{fn}: v is a tuple of invalid length: should be {len(refs)} but "
                           f"got {len(v)}." if refs_are_tuple
                           else f"{fn}: The given v should contain a single Tensor.")
    for i, (el, ref) in enumerate(zip(v, refs)):
        if tuple(el.shape) != tuple(ref.shape):
            entry = f"Entry {i} in " if refs_are_tuple else ""
            raise RuntimeError(f"{fn}: {entry}v has invalid size: should be {tuple(ref.shape)} "
                               f"but got {tuple(el.shape)}.")
    return v


def _call(func: Callable, inputs: tuple, fn: str, strict: bool) -> Tuple[bool, tuple]:
    if not callable(func):
        raise TypeError(f"{fn}: func must be callable, got {type(func).__name__}")
    is_tuple, outputs = _as_tuple(func(*inputs), "outputs of the user-provided function", fn)
    if strict:
        for i, out in enumerate(outputs):
            if not out.requires_grad:
                raise RuntimeError(f"{fn}: Output {i} of the user-provided function does not "
                                   "require gradients. The outputs must be computed in a "
                                   "differentiable manner from the input when running in "
                                   "strict mode.")
    return is_tuple, outputs


def _single_output(outputs: tuple, is_tuple: bool, fn: str) -> None:
    if is_tuple:
        raise RuntimeError(f"{fn}: The function given to {fn} should return a single Tensor")
    if outputs[0].numel() != 1:
        raise RuntimeError(f"{fn}: The Tensor returned by the function given to {fn} should "
                           "contain a single element")


# ---------------------------------------------------------------- gradients
def _grad(outputs: Sequence, inputs: tuple, grad_outputs: Optional[Sequence] = None,
          create_graph: bool = False, retain_graph: Optional[bool] = None) -> List:
    """autograd.grad over the outputs that require grad (None entries and constants
    skipped), None for an input they do not reach."""
    from gradflow.autograd import grad

    grad_outputs = [None] * len(outputs) if grad_outputs is None else list(grad_outputs)
    used = [(o, g) for o, g in zip(outputs, grad_outputs) if o is not None and o.requires_grad]
    if not used:
        return [None] * len(inputs)
    return list(grad([o for o, _ in used], list(inputs), [g for _, g in used],
                     retain_graph=retain_graph, create_graph=create_graph, allow_unused=True))


_INDEPENDENT = {
    "back": "The output of the user-provided function is independent of input {i}.",
    "back_trick": "The gradient with respect to the input is independent of entry {i} in the "
                  "grad_outputs when using the double backward trick to compute forward mode "
                  "gradients.",
    "double_back": "The jacobian of the user-provided function is independent of input {i}.",
    "double_back_trick": "The hessian of the user-provided function is independent of entry "
                         "{i} in the grad_jacobian.",
}


def _zeros_for_none(grads: Sequence, refs: Sequence, strict: bool, create_graph: bool,
                    stage: str, fn: str) -> tuple:
    """Zeros shaped like refs[i] where grads[i] is None; with strict, an error there (and,
    with create_graph, where a result does not depend on the inputs)."""
    from gradflow import zeros_like

    out = []
    for i, g in enumerate(grads):
        if g is None:
            if strict:
                raise RuntimeError(f"{fn}: " + _INDEPENDENT[stage].format(i=i)
                                   + " This is not allowed in strict mode.")
            g = zeros_like(refs[i])
        elif strict and create_graph and not g.requires_grad:
            what = "hessian" if "double" in stage else "jacobian"
            raise RuntimeError(f"{fn}: The {what} of the user-provided function is independent "
                               f"of input {i}. This is not allowed in strict mode when "
                               "create_graph=True.")
        out.append(g)
    return tuple(out)


def _check_depends(tensors: Sequence, what: str, strict: bool, fn: str) -> None:
    """With strict: an error where an intermediate derivative is None or a constant."""
    if not strict:
        return
    for i, t in enumerate(tensors):
        if t is None:
            raise RuntimeError(f"{fn}: The output of the user-provided function is independent "
                               f"of input {i}. This is not allowed in strict mode.")
        if not t.requires_grad:
            raise RuntimeError(f"{fn}: The {what} with respect to input {i} is independent of "
                               "the inputs of the user-provided function. This is not allowed "
                               "in strict mode.")


# ---------------------------------------------------------------- vjp, jvp
def vjp(func: Callable, inputs: TensorOrTuple, v: Optional[TensorOrTuple] = None,
        create_graph: bool = False, strict: bool = False) -> Tuple[Any, Any]:
    """The vector-Jacobian product v^T J of func at inputs: (func(inputs), v^T J).

    v is shaped like func's output(s); it may be None when func returns a one-element Tensor.

    Example::

        >>> import gradflow as gf
        >>> from gradflow.autograd.functional import vjp
        >>> out, g = vjp(lambda x: x ** 2, gf.tensor([1.0, 2.0]), gf.tensor([1.0, 0.5]))
        >>> g.tolist()
        [2.0, 2.0]
    """
    with enable_grad():
        is_in_tuple, inputs = _as_tuple(inputs, "inputs", "vjp")
        inputs = _prepare(inputs, create_graph, need_graph=True, fn="vjp")
        is_out_tuple, outputs = _call(func, inputs, "vjp", strict)
        v = _prepared_v(v, outputs, is_out_tuple, create_graph, "vjp",
                        "the user-provided function returns")
        grads = _grad(outputs, inputs, v, create_graph=create_graph)
        result = _zeros_for_none(grads, inputs, strict, create_graph, "back", "vjp")
    return (_unpack(_finish(outputs, create_graph), is_out_tuple),
            _unpack(_finish(result, create_graph), is_in_tuple))


def _jvp_trick(outputs: tuple, inputs: tuple, v: Optional[tuple], create_graph: bool,
               strict: bool, fn: str) -> tuple:
    """J v for outputs computed from inputs: g(u) = J^T u with u a dummy zero tensor per
    output, then the gradient of g(u) . v with respect to u."""
    from gradflow import zeros_like

    u = tuple(zeros_like(out, requires_grad=True) for out in outputs)
    g = _grad(outputs, inputs, u, create_graph=True)
    _check_depends(g, "gradient", strict, fn)
    jv = _grad(g, u, v, create_graph=create_graph)
    return _zeros_for_none(jv, outputs, strict, create_graph, "back_trick", fn)


def jvp(func: Callable, inputs: TensorOrTuple, v: Optional[TensorOrTuple] = None,
        create_graph: bool = False, strict: bool = False) -> Tuple[Any, Any]:
    """The Jacobian-vector product J v of func at inputs: (func(inputs), J v), computed by
    the double-backward trick (see the module's docstring).

    v is shaped like the input(s); it may be None when the input is one one-element Tensor.

    Example::

        >>> import gradflow as gf
        >>> from gradflow.autograd.functional import jvp
        >>> out, jv = jvp(lambda x: x ** 2, gf.tensor([1.0, 2.0]), gf.tensor([1.0, 0.5]))
        >>> jv.tolist()
        [2.0, 2.0]
    """
    with enable_grad():
        is_in_tuple, inputs = _as_tuple(inputs, "inputs", "jvp")
        inputs = _prepare(inputs, create_graph, need_graph=True, fn="jvp")
        v = _prepared_v(v, inputs, is_in_tuple, create_graph, "jvp",
                        "the input to the user-provided function is")
        is_out_tuple, outputs = _call(func, inputs, "jvp", strict)
        result = _jvp_trick(outputs, inputs, v, create_graph, strict, "jvp")
    return (_unpack(_finish(outputs, create_graph), is_out_tuple),
            _unpack(_finish(result, create_graph), is_out_tuple))


# ---------------------------------------------------------------- jacobian, hessian
def _stacked(parts: List, out_shape: tuple, in_shape: tuple, ref: Any, by_rows: bool) -> Any:
    """The block d out / d in (shape out_shape + in_shape) from its rows (one per output
    element, each shaped like the input) or its columns (one per input element, each shaped
    like the output)."""
    from gradflow import stack, zeros

    if not parts:  # a zero-size output (rows) or input (columns)
        return zeros(out_shape + in_shape, dtype=ref.dtype, device=ref.device)
    if by_rows:
        return stack(parts).reshape(out_shape + in_shape)
    return stack([c.reshape(-1) for c in parts], dim=1).reshape(out_shape + in_shape)


def _jacobian_rows(outputs: tuple, inputs: tuple, create_graph: bool, strict: bool) -> list:
    """jac[i][j] = d outputs[i] / d inputs[j], one backward pass per output element."""
    from gradflow import zeros_like

    jac = []
    for i, out in enumerate(outputs):
        flat = out.reshape(-1)
        rows: List[List] = [[] for _ in inputs]
        for e in range(flat.numel()):
            grads = _grad((flat[e],), inputs, retain_graph=True, create_graph=create_graph)
            for j, (g, inp) in enumerate(zip(grads, inputs)):
                if g is None and strict:
                    raise RuntimeError(f"jacobian: Output {i} of the user-provided function is "
                                       f"independent of input {j}. This is not allowed in "
                                       "strict mode.")
                if strict and create_graph and not g.requires_grad:
                    raise RuntimeError(f"jacobian: The jacobian of the user-provided function "
                                       f"is independent of input {j}. This is not allowed in "
                                       "strict mode when create_graph=True.")
                rows[j].append(zeros_like(inp) if g is None else g)
        jac.append([_stacked(r, tuple(out.shape), tuple(inp.shape), inp, True)
                    for r, inp in zip(rows, inputs)])
    return jac


def _jacobian_columns(func: Callable, inputs: tuple) -> Tuple[bool, list]:
    """jac[i][j] from one jvp per input element (the forward-mode strategy): g(u) = J^T u is
    built once, then each column J e is the gradient of g(u) . e with respect to u."""
    from gradflow import zeros, zeros_like

    with enable_grad():
        inputs = _prepare(inputs, False, need_graph=True, fn="jacobian")
        is_out_tuple, outputs = _call(func, inputs, "jacobian", False)
        u = tuple(zeros_like(out, requires_grad=True) for out in outputs)
        g = _grad(outputs, inputs, u, create_graph=True)
        cols: List[List[List]] = [[[] for _ in inputs] for _ in outputs]
        for j, inp in enumerate(inputs):
            for e in range(inp.numel()):
                basis = zeros(inp.numel(), dtype=inp.dtype, device=inp.device)
                basis[e] = 1
                tangent = [basis.reshape(inp.shape) if k == j else zeros_like(t)
                           for k, t in enumerate(inputs)]
                jv = _grad(g, u, tangent, retain_graph=True)
                for i, col in enumerate(_zeros_for_none(jv, outputs, False, False,
                                                        "back_trick", "jacobian")):
                    cols[i][j].append(col)
    jac = [[_stacked(cols[i][j], tuple(out.shape), tuple(inp.shape), inp, False)
            for j, inp in enumerate(inputs)] for i, out in enumerate(outputs)]
    return is_out_tuple, jac


def jacobian(func: Callable, inputs: TensorOrTuple, create_graph: bool = False,
             strict: bool = False, vectorize: bool = False,
             strategy: str = "reverse-mode") -> Any:
    """The Jacobian of func at inputs: d output / d input, of shape
    output.shape + input.shape; a tuple (per input) when inputs is a tuple, and a tuple (per
    output) of those when func returns a tuple.

    ``strategy="reverse-mode"`` computes it row by row (one backward pass per output
    element), ``"forward-mode"`` column by column (one jvp per input element; as in PyTorch,
    not with create_graph or strict). ``vectorize=True`` gives the same result by the same
    loop: gradflow has no vmap.

    Example::

        >>> import gradflow as gf
        >>> from gradflow.autograd.functional import jacobian
        >>> jacobian(lambda x: x ** 2, gf.tensor([1.0, 2.0])).tolist()
        [[2.0, 0.0], [0.0, 4.0]]
    """
    if strategy not in _STRATEGIES:
        raise ValueError(f'jacobian: Expected strategy to be either "forward-mode" or '
                         f'"reverse-mode", got {strategy!r}')
    if vectorize and strict:
        raise RuntimeError("jacobian: `strict=True` and `vectorized=True` are not supported "
                           "together. Please either set `strict=False` or `vectorize=False`.")
    is_in_tuple, inputs = _as_tuple(inputs, "inputs", "jacobian")
    if strategy == "forward-mode":
        if create_graph or strict:
            raise RuntimeError("jacobian: `create_graph=True` and `strict=True` are not "
                               'supported with strategy="forward-mode" (as in PyTorch); use '
                               'strategy="reverse-mode"')
        is_out_tuple, jac = _jacobian_columns(func, inputs)
    else:
        with enable_grad():
            inputs = _prepare(inputs, create_graph, need_graph=True, fn="jacobian")
            is_out_tuple, outputs = _call(func, inputs, "jacobian", strict)
            jac = _jacobian_rows(outputs, inputs, create_graph, strict)
    jac = [_finish(row, create_graph) for row in jac]
    return _unpack([_unpack(row, is_in_tuple) for row in jac], is_out_tuple)


def hessian(func: Callable, inputs: TensorOrTuple, create_graph: bool = False,
            strict: bool = False, vectorize: bool = False,
            outer_jacobian_strategy: str = "reverse-mode") -> Any:
    """The Hessian of a scalar function at inputs: the jacobian of its gradient, of shape
    input.shape + input.shape; for a tuple of inputs, a tuple of tuples with
    hessian[i][j] = d^2 f / (d inputs[i] d inputs[j]).

    func must return a Tensor with one element. ``outer_jacobian_strategy`` and
    ``vectorize`` are as `strategy` and `vectorize` of jacobian.

    Example::

        >>> import gradflow as gf
        >>> from gradflow.autograd.functional import hessian
        >>> hessian(lambda x: (x ** 3).sum(), gf.tensor([1.0, 2.0])).tolist()
        [[6.0, 0.0], [0.0, 12.0]]
    """
    is_in_tuple, inputs = _as_tuple(inputs, "inputs", "hessian")
    _check_floating(inputs, "hessian")
    if outer_jacobian_strategy not in _STRATEGIES:
        raise ValueError(f'hessian: Expected strategy to be either "forward-mode" or '
                         f'"reverse-mode", got {outer_jacobian_strategy!r}')

    def scalar_func(*inp: Any) -> Any:
        is_tuple, out = _call(func, inp, "hessian", strict)
        _single_output(out, is_tuple, "hessian")
        return out[0].reshape(())

    def gradient(*inp: Any) -> tuple:
        jac = jacobian(scalar_func, inp, create_graph=True)
        _check_depends(jac, "jacobian", strict, "hessian")
        return jac

    res = jacobian(gradient, inputs, create_graph=create_graph, strict=strict,
                   vectorize=vectorize, strategy=outer_jacobian_strategy)
    return res if is_in_tuple else res[0][0]


# ---------------------------------------------------------------- vhp, hvp
def _scalar_and_gradient(func: Callable, inputs: Any, v: Any, create_graph: bool, strict: bool,
                         fn: str) -> Tuple[bool, tuple, tuple, Optional[tuple], list]:
    """The common start of vhp and hvp: prepared inputs and v, the scalar output and its
    gradient (with its graph)."""
    is_in_tuple, inputs = _as_tuple(inputs, "inputs", fn)
    inputs = _prepare(inputs, create_graph, need_graph=True, fn=fn)
    v = _prepared_v(v, inputs, is_in_tuple, create_graph, fn,
                    "the input to the user-provided function is")
    is_out_tuple, outputs = _call(func, inputs, fn, strict)
    _single_output(outputs, is_out_tuple, fn)
    gradient = _grad(outputs, inputs, create_graph=True)
    _check_depends(gradient, "jacobian", strict, fn)
    return is_in_tuple, inputs, outputs, v, gradient


def vhp(func: Callable, inputs: TensorOrTuple, v: Optional[TensorOrTuple] = None,
        create_graph: bool = False, strict: bool = False) -> Tuple[Any, Any]:
    """The vector-Hessian product v^T H of a scalar function at inputs:
    (func(inputs), v^T H), the gradient of grad(func) . v.

    Example::

        >>> import gradflow as gf
        >>> from gradflow.autograd.functional import vhp
        >>> f, vh = vhp(lambda x: (x ** 3).sum(), gf.tensor([1.0, 2.0]), gf.tensor([1.0, 1.0]))
        >>> (f.item(), vh.tolist())
        (9.0, [6.0, 12.0])
    """
    with enable_grad():
        is_in_tuple, inputs, outputs, v, gradient = _scalar_and_gradient(
            func, inputs, v, create_graph, strict, "vhp")
        grads = _grad(gradient, inputs, v, create_graph=create_graph)
        result = _zeros_for_none(grads, inputs, strict, create_graph, "double_back", "vhp")
    return (_finish(outputs, create_graph)[0], _unpack(_finish(result, create_graph),
                                                       is_in_tuple))


def hvp(func: Callable, inputs: TensorOrTuple, v: Optional[TensorOrTuple] = None,
        create_graph: bool = False, strict: bool = False) -> Tuple[Any, Any]:
    """The Hessian-vector product H v of a scalar function at inputs: (func(inputs), H v),
    by the double-backward trick on its gradient (H is symmetric, so this equals vhp for
    twice continuously differentiable functions).

    Example::

        >>> import gradflow as gf
        >>> from gradflow.autograd.functional import hvp
        >>> f, hv = hvp(lambda x: (x ** 3).sum(), gf.tensor([1.0, 2.0]), gf.tensor([1.0, 1.0]))
        >>> hv.tolist()
        [6.0, 12.0]
    """
    from gradflow import zeros_like

    with enable_grad():
        is_in_tuple, inputs, outputs, v, gradient = _scalar_and_gradient(
            func, inputs, v, create_graph, strict, "hvp")
        u = tuple(zeros_like(inp, requires_grad=True) for inp in inputs)
        double_back = _grad(gradient, inputs, u, create_graph=True)
        grads = _grad(double_back, u, v, create_graph=create_graph)
        result = _zeros_for_none(grads, inputs, strict, create_graph, "double_back_trick",
                                 "hvp")
    return (_finish(outputs, create_graph)[0], _unpack(_finish(result, create_graph),
                                                       is_in_tuple))
