"""gradcheck / gradgradcheck: compare autograd's Jacobians with central finite differences.

For each differentiable input x and output y, the numerical Jacobian column for element j is
(f(x + eps e_j) - f(x - eps e_j)) / (2 eps); the analytical rows come from one vector-Jacobian
product per output element. Elements must agree within atol + rtol * |numerical|.
"""

from __future__ import annotations

import warnings
from typing import Callable, List, Sequence

import numpy as np

from gradflow.autograd.grad_mode import enable_grad, no_grad


class GradcheckError(RuntimeError):
    """What gradcheck and gradgradcheck raise when the Jacobians disagree.

    >>> import gradflow as gf
    >>> x = gf.tensor([1.0], dtype=gf.float64, requires_grad=True)
    >>> class Wrong(gf.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, t):
    ...         return t * 2
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         return g * 3
    >>> try:
    ...     gf.autograd.gradcheck(Wrong.apply, (x,))
    ... except gf.autograd.GradcheckError as e:
    ...     print(str(e).splitlines()[0])
    Jacobian mismatch for output 0 with respect to input 0,
    """


def _tensors(x) -> tuple:
    from gradflow.tensor import Tensor

    return (x,) if isinstance(x, Tensor) else tuple(x)


def _outputs(func: Callable, inputs: tuple) -> List:
    from gradflow.tensor import Tensor

    out = func(*inputs)
    return [o for o in _tensors(out) if isinstance(o, Tensor) and o.is_floating_point()]


def _flat_outputs(func, inputs) -> List[np.ndarray]:
    return [o.detach().numpy().ravel().astype(np.float64) for o in _outputs(func, inputs)]


def _numerical_jacobians(func, inputs, diff_idx, eps) -> List[List[np.ndarray]]:
    """jac[i][k]: (numel(output k), numel(input i)) matrix of finite differences."""
    with no_grad():
        n_out = [o.numel() for o in _outputs(func, inputs)]
        jacs = []
        for i in diff_idx:
            x = inputs[i]
            be = x._backend
            values = be.to_numpy(x._data).copy()
            cols = [np.zeros((n, x.numel())) for n in n_out]
            for j, idx in enumerate(np.ndindex(*x.shape)):
                orig = values[idx]
                be.setitem(x._data, idx, orig + eps)
                plus = _flat_outputs(func, inputs)
                be.setitem(x._data, idx, orig - eps)
                minus = _flat_outputs(func, inputs)
                be.setitem(x._data, idx, orig)
                for k in range(len(n_out)):
                    cols[k][:, j] = (plus[k] - minus[k]) / (2 * eps)
            jacs.append(cols)
    return jacs


def _analytical_jacobians(func, inputs, diff_idx) -> List[List[np.ndarray]]:
    from gradflow.autograd import grad
    from gradflow.tensor import Tensor

    outputs = _outputs(func, inputs)
    diff_inputs = [inputs[i] for i in diff_idx]
    jacs = [[np.zeros((o.numel(), inputs[i].numel())) for o in outputs] for i in diff_idx]
    for k, out in enumerate(outputs):
        if not out.requires_grad:
            continue
        for r in range(out.numel()):
            onehot = np.zeros(out.numel(), dtype=out._data.dtype)
            onehot[r] = 1
            g = Tensor._make(out._backend.from_numpy(onehot.reshape(out.shape)), out._backend)
            grads = grad(out, diff_inputs, g, retain_graph=True, allow_unused=True)
            for n, gi in enumerate(grads):
                if gi is not None:
                    jacs[n][k][r, :] = gi.detach().numpy().ravel()
    return jacs


def gradcheck(func: Callable, inputs, *, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True, **_ignored) -> bool:
    """Check autograd's gradients of `func` at `inputs` against finite differences: True, or
    GradcheckError (False with raise_exception=False). PyTorch's other options (nondet_tol,
    check_undefined_grad, ...) are accepted and ignored.

    >>> import gradflow as gf
    >>> x = gf.tensor([1.0, 2.0], dtype=gf.float64, requires_grad=True)
    >>> gf.autograd.gradcheck(lambda t: (t * t).sin(), (x,))
    True
    """
    from gradflow.tensor import Tensor

    inputs = _tensors(inputs)
    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    if not diff_idx:
        raise ValueError("gradcheck expects at least one input tensor to require gradient")
    for i in diff_idx:
        if inputs[i].dtype.name != "float64":
            warnings.warn(
                f"Input #{i} requires gradient and is not a double precision floating point; "
                "gradcheck is only reliable in float64",
                stacklevel=2,
            )
    numerical = _numerical_jacobians(func, inputs, diff_idx, eps)
    analytical = _analytical_jacobians(func, inputs, diff_idx)
    for n, i in enumerate(diff_idx):
        for k, (num, ana) in enumerate(zip(numerical[n], analytical[n])):
            err = np.abs(ana - num) - (atol + rtol * np.abs(num))
            bad = ~(err <= 0)
            if bad.any():
                r, c = np.unravel_index(np.argmax(np.where(bad, np.nan_to_num(err, nan=np.inf),
                                                           -np.inf)), err.shape)
                msg = (
                    f"Jacobian mismatch for output {k} with respect to input {i},\n"
                    f"numerical:{num}\nanalytical:{ana}\n"
                    f"worst element: output index {r}, input index {c}: numerical "
                    f"{float(num[r, c])!r}, analytical {float(ana[r, c])!r}"
                )
                if raise_exception:
                    raise GradcheckError(msg)
                return False
    return True


def gradgradcheck(func: Callable, inputs, grad_outputs: Sequence = None, *, eps: float = 1e-6,
                  atol: float = 1e-5, rtol: float = 1e-3, raise_exception: bool = True,
                  **_ignored) -> bool:
    """gradcheck of the map (inputs, v) -> v^T J(inputs): checks second derivatives (v random
    unless grad_outputs is given).

    >>> import gradflow as gf
    >>> x = gf.tensor([1.0, 2.0], dtype=gf.float64, requires_grad=True)
    >>> gf.autograd.gradgradcheck(lambda t: t ** 3, (x,))
    True
    """
    from gradflow.autograd import grad
    from gradflow.tensor import Tensor, randn

    inputs = _tensors(inputs)
    diff_idx = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
    outputs = _outputs(func, inputs)
    if grad_outputs is None:
        grad_outputs = [randn(o.shape, dtype=o.dtype, device=o.device, requires_grad=True)
                        for o in outputs]
    grad_outputs = list(_tensors(grad_outputs))
    n_in = len(inputs)

    def first_derivatives(*args):
        ins, vs = args[:n_in], args[n_in:]
        with enable_grad():  # finite differences run under no_grad; this needs a graph
            outs = _outputs(func, ins)
            diff = [ins[i] for i in diff_idx]
            gs = grad(outs, diff, list(vs), create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_derivatives, tuple(inputs) + tuple(grad_outputs), eps=eps, atol=atol,
                     rtol=rtol, raise_exception=raise_exception)
