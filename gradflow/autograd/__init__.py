"""Reverse-mode automatic differentiation: backward(), grad(), Function, grad modes, checks."""

from __future__ import annotations

from typing import Optional

from gradflow.autograd.engine import run_backward
from gradflow.autograd.function import Context, Function, once_differentiable
from gradflow.autograd.grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__all__ = [
    "Function", "Context", "once_differentiable", "backward", "grad", "no_grad", "enable_grad",
    "set_grad_enabled", "is_grad_enabled", "gradcheck", "gradgradcheck", "GradcheckError",
]


def _as_seq(x) -> list:
    from gradflow.tensor import Tensor

    if x is None:
        return []
    return [x] if isinstance(x, Tensor) else list(x)


def _make_grads(outputs: list, grad_outputs: list) -> list:
    from gradflow.tensor import Tensor

    grads = []
    for i, out in enumerate(outputs):
        g = grad_outputs[i] if i < len(grad_outputs) else None
        if g is None:
            if out.numel() != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs (output {i} has "
                    f"shape {tuple(out.shape)}); pass a gradient"
                )
            g = Tensor._make(out._backend.full(out.shape, 1, out._data.dtype), out._backend)
        elif not isinstance(g, Tensor):
            raise TypeError(f"gradient for output {i} must be a Tensor, got {type(g).__name__}")
        elif g.shape != out.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output[{i}] has a shape of {tuple(g.shape)} and "
                f"output[{i}] has a shape of {tuple(out.shape)}."
            )
        grads.append(g)
    return grads


def _check_outputs(outputs: list) -> None:
    for i, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a grad_fn"
            )


def backward(tensors, grad_tensors=None, retain_graph: Optional[bool] = None,
             create_graph: bool = False, inputs=None) -> None:
    """Sum d(tensors)/d(leaf) * grad_tensors into each leaf's .grad."""
    outputs = _as_seq(tensors)
    _check_outputs(outputs)
    grads = _make_grads(outputs, _as_seq(grad_tensors) if grad_tensors is not None else [])
    retain = create_graph if retain_graph is None else retain_graph
    if inputs is not None:
        inputs = _as_seq(inputs)
        found = run_backward(outputs, grads, retain, create_graph, inputs, allow_unused=True)
        for t, g in zip(inputs, found):
            if g is not None:
                t.grad = g if t.grad is None else t.grad + g
        return
    run_backward(outputs, grads, retain, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph: Optional[bool] = None,
         create_graph: bool = False, allow_unused: bool = False) -> tuple:
    """The gradients of `outputs` with respect to `inputs`, without touching any .grad."""
    outs = _as_seq(outputs)
    ins = _as_seq(inputs)
    _check_outputs(outs)
    for i, t in enumerate(ins):
        if not t.requires_grad:
            raise RuntimeError(f"input {i} of autograd.grad does not require grad")
    grads = _make_grads(outs, _as_seq(grad_outputs) if grad_outputs is not None else [])
    retain = create_graph if retain_graph is None else retain_graph
    return tuple(run_backward(outs, grads, retain, create_graph, ins, allow_unused))


from gradflow.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck  # noqa: E402
