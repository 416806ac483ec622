"""Reverse-mode automatic differentiation: backward(), grad(), Function, grad modes, checks."""

from __future__ import annotations

from typing import Optional

from gradflow.autograd.engine import run_backward, run_post_accumulate_hooks
from gradflow.autograd.function import Context, Function, _tensor_class, once_differentiable
from gradflow.autograd.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)

__all__ = [
    "Function", "Context", "once_differentiable", "backward", "grad", "no_grad", "enable_grad",
    "set_grad_enabled", "is_grad_enabled", "inference_mode", "is_inference_mode_enabled",
    "gradcheck", "gradgradcheck", "GradcheckError",
    "functional",
]


def _as_seq(x, op: str, arg: str, none_ok: bool = True) -> list:
    """A Tensor or a sequence of Tensors (None entries allowed where none_ok) as a list."""
    Tensor = _tensor_class()
    if x is None:
        return []
    if isinstance(x, Tensor):  # the common call, loss.backward()
        return [x]
    seq = list(x) if isinstance(x, (list, tuple)) else None
    if seq is None or not all(isinstance(t, Tensor) or (none_ok and t is None) for t in seq):
        raise TypeError(f"{op}: {arg} must be a Tensor or a sequence of Tensors, got "
                        f"{type(x).__name__}" + ("" if seq is None else " holding "
                        + ", ".join(sorted({type(t).__name__ for t in seq}))))
    return seq


def _make_grads(outputs: list, grad_outputs: list, op: str) -> list:
    Tensor = _tensor_class()
    grads = []
    for i, out in enumerate(outputs):
        g = grad_outputs[i] if i < len(grad_outputs) else None
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(
                    f"{op}: grad can be implicitly created only for scalar outputs (output {i} "
                    f"has shape {tuple(out.shape)}); pass a gradient"
                )
            g = Tensor._make(out._backend.full(out.shape, 1, out._data.dtype), out._backend)
        elif g.shape != out.shape:
            raise RuntimeError(
                f"{op}: Mismatch in shape: grad_output[{i}] has a shape of {tuple(g.shape)} and "
                f"output[{i}] has a shape of {tuple(out.shape)}."
            )
        elif not g.is_floating_point():
            raise TypeError(f"{op}: gradient for output {i} must be a floating-point Tensor, "
                            f"got {g.dtype}")
        grads.append(g)
    return grads


def _check_outputs(outputs: list, op: str) -> None:
    for i, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(
                f"{op}: element {i} of tensors does not require grad and does not have a "
                "grad_fn"
            )


def backward(tensors, grad_tensors=None, retain_graph: Optional[bool] = None,
             create_graph: bool = False, inputs=None) -> None:
    """Sum d(tensors)/d(leaf) * grad_tensors into each leaf's .grad (only into `inputs`'
    when given); a one-element tensor needs no grad_tensors.

    >>> import gradflow as gf
    >>> x = gf.tensor([1.0, 2.0], requires_grad=True)
    >>> y = x * x
    >>> gf.autograd.backward(y, gf.tensor([1.0, 0.5]))
    >>> x.grad
    tensor([2., 2.])
    """
    op = "backward"
    outputs = _as_seq(tensors, op, "tensors", none_ok=False)
    _check_outputs(outputs, op)
    grads = _make_grads(outputs, _as_seq(grad_tensors, op, "gradient"), op)
    retain = create_graph if retain_graph is None else retain_graph
    if inputs is not None:
        inputs = _as_seq(inputs, op, "inputs", none_ok=False)
        found = run_backward(outputs, grads, retain, create_graph, inputs, allow_unused=True)
        for t, g in zip(inputs, found):
            if g is not None:
                t.grad = g if t.grad is None else t.grad + g
                if t.is_leaf:
                    run_post_accumulate_hooks(t)
        return
    run_backward(outputs, grads, retain, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph: Optional[bool] = None,
         create_graph: bool = False, allow_unused: bool = False) -> tuple:
    """The gradients of `outputs` with respect to `inputs`, without touching any .grad; with
    create_graph=True they are differentiable again (higher-order gradients).

    >>> import gradflow as gf
    >>> x = gf.tensor(3.0, requires_grad=True)
    >>> (dx,) = gf.autograd.grad(x ** 3, x, create_graph=True)
    >>> dx, gf.autograd.grad(dx, x)
    (tensor(27., grad_fn=<MulBackward>), (tensor(18.),))
    """
    op = "autograd.grad"
    outs = _as_seq(outputs, op, "outputs", none_ok=False)
    ins = _as_seq(inputs, op, "inputs", none_ok=False)
    _check_outputs(outs, op)
    for i, t in enumerate(ins):
        if not t.requires_grad:
            raise RuntimeError(f"input {i} of autograd.grad does not require grad")
    grads = _make_grads(outs, _as_seq(grad_outputs, op, "grad_outputs"), op)
    retain = create_graph if retain_graph is None else retain_graph
    return tuple(run_backward(outs, grads, retain, create_graph, ins, allow_unused))


from gradflow.autograd import functional  # noqa: E402
from gradflow.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck  # noqa: E402
