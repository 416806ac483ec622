"""The ops' use of a backend's optional fused kernels (backends/base.py FUSED_KERNELS), on any
machine: the CPU has its own NLL kernels, and is given NumPy versions of the fused softmax and
interpolation kernels (the contract's math, written out again here); every loss option must
give the composed path's values and gradients, with gradcheck and gradgradcheck through the
fused Functions.
The CUDA kernels themselves are compared with the CPU in test_cuda_nn.py (GPU only)."""

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn.functional as F
from gradflow.autograd import gradcheck, gradgradcheck
from gradflow.backends.base import FUSED_KERNELS, fused
from gradflow.backends.cpu import CPUBackend
from gradflow.ops.pool import _interp_matrix


def _softmax(self, x, axis, log):
    shifted = x - x.max(axis, keepdims=True)
    lse = np.log(np.exp(shifted).sum(axis, keepdims=True))
    return shifted - lse if log else np.exp(shifted - lse)


def _softmax_backward(self, y, grad, axis, log):
    if log:
        return grad - np.exp(y) * grad.sum(axis, keepdims=True)
    return y * (grad - (grad * y).sum(axis, keepdims=True))


def _matrices(in_size, out_size, scales, bilinear, align_corners):
    mode = "bilinear" if bilinear else "nearest"
    return [_interp_matrix(n, o, s or None, mode, align_corners)
            for n, o, s in zip(in_size, out_size, scales)]


def _interpolate(self, x, size, scales, bilinear, align_corners):
    ah, aw = _matrices(x.shape[2:], size, scales, bilinear, align_corners)
    return (ah @ x @ aw.T).astype(x.dtype)


def _interpolate_backward(self, grad, input_size, scales, bilinear, align_corners):
    ah, aw = _matrices(input_size, grad.shape[2:], scales, bilinear, align_corners)
    return (ah.T @ grad @ aw).astype(grad.dtype)


KERNELS = {"softmax": _softmax, "softmax_backward": _softmax_backward,
           "interpolate": _interpolate, "interpolate_backward": _interpolate_backward}


@pytest.fixture
def fused_cpu(monkeypatch):
    own = {name for name in FUSED_KERNELS if fused(CPUBackend, name)}  # the native ones
    assert set(KERNELS) | own == set(FUSED_KERNELS) and not set(KERNELS) & own
    for name, fn in KERNELS.items():
        monkeypatch.setattr(CPUBackend, name, fn, raising=False)


def _run(args, kw, fn):
    logits, target, weight = args
    x = gf.tensor(logits, requires_grad=True)
    w = None if weight is None else gf.tensor(weight)
    loss = fn(x, gf.tensor(target), weight=w, **kw)
    loss.sum().backward()
    return loss.detach().numpy(), x.grad.numpy()


CASES = [
    ((5, 4), {}),
    ((5, 4), {"reduction": "sum", "ignore_index": 2}),
    ((5, 4), {"reduction": "none", "label_smoothing": 0.2}),
    ((3, 4, 2, 3), {"label_smoothing": 0.1, "ignore_index": 0}),
    ((3, 4, 5), {"reduction": "none", "ignore_index": 1}),
    ((4,), {"label_smoothing": 0.3}),
    ((0, 3), {"reduction": "sum"}),
]


@pytest.mark.parametrize("shape,kw", CASES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_fused_losses_match_the_composed_path(monkeypatch, shape, kw, weighted, name):
    if name == "nll_loss" and "label_smoothing" in kw:
        return
    rng = np.random.default_rng(0)
    c = shape[1] if len(shape) > 1 else shape[0]
    target_shape = (shape[0],) + shape[2:] if len(shape) > 1 else ()
    args = (rng.standard_normal(shape), rng.integers(0, c, target_shape),
            rng.random(c) + 0.5 if weighted else None)
    fn = getattr(F, name)
    got = _run(args, kw, fn)  # the CPU's own NLL kernels
    for kernel in ("nll_loss", "nll_loss_backward"):
        monkeypatch.delattr(CPUBackend, kernel)
    assert fused(gf.tensor(0.0)._backend, "nll_loss") is None
    composed = _run(args, kw, fn)
    np.testing.assert_allclose(got[0], composed[0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(got[1], composed[1], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("target", [[0, 3, 1], [0, -2, 1]])
def test_fused_nll_names_a_target_out_of_range(name, target):
    logits = gf.tensor(np.zeros((3, 3)))
    with pytest.raises(IndexError, match=f"{name}: Target {target[1]} is out of bounds"):
        getattr(F, name)(logits, gf.tensor(target))
    F.cross_entropy(logits, gf.tensor(target), ignore_index=target[1])  # ignored: no error


def test_fused_nll_in_half_precision_matches_float32():
    rng = np.random.default_rng(6)
    logits, target = rng.standard_normal((6, 5)).astype(np.float32), rng.integers(0, 5, 6)
    results = []
    for dtype in (gf.float32, gf.float16):
        x = gf.tensor(logits, dtype=dtype, requires_grad=True)
        loss = F.cross_entropy(x, gf.tensor(target), label_smoothing=0.1)
        loss.backward()
        assert loss.dtype == dtype and x.grad.dtype == dtype
        results.append((float(loss), x.grad.float().numpy()))
    assert abs(results[0][0] - results[1][0]) < 1e-2
    np.testing.assert_allclose(results[0][1], results[1][1], atol=2e-3)


@pytest.mark.parametrize("kw", [{}, {"label_smoothing": 0.2, "ignore_index": 1}])
def test_fused_cross_entropy_gradcheck_and_gradgradcheck(fused_cpu, kw):
    rng = np.random.default_rng(1)
    x = gf.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    target = gf.tensor(rng.integers(0, 3, 4))
    weight = gf.tensor(rng.random(3) + 0.5)
    fn = lambda x: F.cross_entropy(x, target, weight=weight, **kw)  # noqa: E731
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_fused_softmax_matches_the_composed_path(fused_cpu, monkeypatch, name, dim):
    a = np.random.default_rng(2).standard_normal((3, 4, 5))
    x = gf.tensor(a, requires_grad=True)
    y = getattr(F, name)(x, dim)
    (y * gf.tensor(np.arange(60.0).reshape(3, 4, 5))).sum().backward()
    ref = a - a.max(dim, keepdims=True)
    ref = ref - np.log(np.exp(ref).sum(dim, keepdims=True))
    np.testing.assert_allclose(y.detach().numpy(), ref if name == "log_softmax" else np.exp(ref),
                               rtol=1e-12)
    grad = x.grad.numpy()
    monkeypatch.undo()
    x2 = gf.tensor(a, requires_grad=True)
    (getattr(F, name)(x2, dim) * gf.tensor(np.arange(60.0).reshape(3, 4, 5))).sum().backward()
    np.testing.assert_allclose(grad, x2.grad.numpy(), rtol=1e-12, atol=1e-14)
    assert gradgradcheck(lambda t: getattr(F, name)(t, dim), (gf.tensor(a[0],
                                                                        requires_grad=True),))


@pytest.mark.parametrize("kw", [dict(size=(5, 7)), dict(scale_factor=1.7, mode="bilinear"),
                                dict(size=(3, 8), mode="bilinear", align_corners=True),
                                dict(scale_factor=(0.6, 2.0))])
def test_fused_interpolate_matches_the_composed_path(monkeypatch, kw):
    a = np.random.default_rng(4).standard_normal((2, 3, 4, 6))
    weights = None
    results = []
    for patch in (False, True):
        if patch:
            for name, fn in KERNELS.items():
                monkeypatch.setattr(CPUBackend, name, fn, raising=False)
        x = gf.tensor(a, requires_grad=True)
        y = F.interpolate(x, **kw)
        if weights is None:
            weights = gf.tensor(np.random.default_rng(5).standard_normal(tuple(y.shape)))
        (y * weights).sum().backward()
        results.append((y.detach().numpy(), x.grad.numpy()))
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    fn = lambda t: F.interpolate(t, **kw)  # noqa: E731
    assert gradgradcheck(fn, (gf.tensor(a[:1, :1], requires_grad=True),))


def test_weights_that_need_a_gradient_use_the_composed_path(fused_cpu):
    x = gf.tensor(np.random.default_rng(3).standard_normal((4, 3)), requires_grad=True)
    w = gf.tensor([1.0, 2.0, 0.5], requires_grad=True)
    F.cross_entropy(x, gf.tensor([0, 2, 1, 1]), weight=w).backward()
    assert w.grad is not None
