"""Pooling, unpooling, interpolate: NumPy reference, gradcheck, PyTorch parity, bad inputs."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import DEVICES

import gradflow as gf
import gradflow.nn.functional as F
from gradflow import _C
from gradflow.autograd import gradcheck, gradgradcheck
from gradflow.ops.pool import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    interpolate,
    max_pool2d,
    max_unpool2d,
    pool_output_size,
)

RNG = np.random.default_rng(1)


def t(a, requires_grad=False, device="cpu"):
    return gf.tensor(a, requires_grad=requires_grad, device=device)


# ---------------------------------------------------------------- NumPy references (loops)
def ref_max_pool(x, k, s, p, d, ceil_mode):
    n, c, h, w = x.shape
    oh = pool_output_size(h, k[0], s[0], p[0], d[0], ceil_mode)
    ow = pool_output_size(w, k[1], s[1], p[1], d[1], ceil_mode)
    y = np.full((n, c, oh, ow), -np.inf)
    idx = np.zeros((n, c, oh, ow), np.int64)
    for i in range(oh):
        for j in range(ow):
            # PyTorch's index for a window with no input pixel: its first in-range start
            r0, q0 = i * s[0] - p[0], j * s[1] - p[1]
            r0 += d[0] * max(0, -(r0 // d[0]))
            q0 += d[1] * max(0, -(q0 // d[1]))
            idx[:, :, i, j] = r0 * w + q0
            for a in range(k[0]):
                for b in range(k[1]):
                    r, q = i * s[0] - p[0] + a * d[0], j * s[1] - p[1] + b * d[1]
                    if 0 <= r < h and 0 <= q < w:
                        v = x[:, :, r, q]
                        better = v > y[:, :, i, j]
                        y[:, :, i, j] = np.where(better, v, y[:, :, i, j])
                        idx[:, :, i, j] = np.where(better, r * w + q, idx[:, :, i, j])
    return y, idx


def ref_avg_pool(x, k, s, p, ceil_mode, count_include_pad, divisor_override):
    n, c, h, w = x.shape
    oh = pool_output_size(h, k[0], s[0], p[0], 1, ceil_mode)
    ow = pool_output_size(w, k[1], s[1], p[1], 1, ceil_mode)
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, q0 = i * s[0] - p[0], j * s[1] - p[1]
            r1, q1 = min(r0 + k[0], h + p[0]), min(q0 + k[1], w + p[1])
            padded = (r1 - r0) * (q1 - q0)
            r0, q0, r1, q1 = max(r0, 0), max(q0, 0), min(r1, h), min(q1, w)
            total = x[:, :, r0:r1, q0:q1].sum((2, 3))
            div = divisor_override or (padded if count_include_pad else (r1 - r0) * (q1 - q0))
            y[:, :, i, j] = total / div
    return y


def ref_adaptive(x, out, reduce):
    n, c, h, w = x.shape
    y = np.zeros((n, c) + out)
    for i in range(out[0]):
        for j in range(out[1]):
            r0, r1 = (i * h) // out[0], math.ceil((i + 1) * h / out[0])
            q0, q1 = (j * w) // out[1], math.ceil((j + 1) * w / out[1])
            y[:, :, i, j] = reduce(x[:, :, r0:r1, q0:q1], axis=(2, 3))
    return y


# ---------------------------------------------------------------- forward vs reference
@st.composite
def pool_configs(draw, dilation=True):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    ceil_mode = draw(st.booleans())
    h = draw(st.integers(max(1, d[0] * (k[0] - 1) + 1 - 2 * p[0]), 9))
    w = draw(st.integers(max(1, d[1] * (k[1] - 1) + 1 - 2 * p[1]), 9))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w), k, s, p, d, ceil_mode


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=60, deadline=None)
@given(pool_configs())
def test_max_pool2d_matches_reference(device, cfg):
    shape, k, s, p, d, ceil_mode = cfg
    x = RNG.standard_normal(shape)
    y, idx = max_pool2d(t(x, device=device), k, s, p, d, ceil_mode, return_indices=True)
    ry, ridx = ref_max_pool(x, k, s, p, d, ceil_mode)
    np.testing.assert_array_equal(y.numpy(), ry)
    np.testing.assert_array_equal(idx.numpy(), ridx)


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=60, deadline=None)
@given(pool_configs(dilation=False), st.booleans(), st.sampled_from([None, 1, 3]))
def test_avg_pool2d_matches_reference(device, cfg, count_include_pad, divisor):
    shape, k, s, p, _, ceil_mode = cfg
    x = RNG.standard_normal(shape)
    y = avg_pool2d(t(x, device=device), k, s, p, ceil_mode, count_include_pad, divisor)
    np.testing.assert_allclose(y.numpy(), ref_avg_pool(x, k, s, p, ceil_mode, count_include_pad,
                                                       divisor), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=40, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9), st.integers(1, 9))
def test_adaptive_pools_match_reference(device, h, w, oh, ow):
    x = RNG.standard_normal((2, 2, h, w))
    np.testing.assert_allclose(adaptive_avg_pool2d(t(x, device=device), (oh, ow)).numpy(),
                               ref_adaptive(x, (oh, ow), np.mean), rtol=1e-12, atol=1e-12)
    y, idx = adaptive_max_pool2d(t(x, device=device), (oh, ow), return_indices=True)
    np.testing.assert_array_equal(y.numpy(), ref_adaptive(x, (oh, ow), np.max))
    flat = x.reshape(2, 2, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, idx.numpy().reshape(2, 2, -1), 2),
                                  y.numpy().reshape(2, 2, -1))


@pytest.mark.parametrize("device", DEVICES)
def test_max_pool_nan_propagates_and_unbatched(device):
    x = RNG.standard_normal((2, 4, 4))
    x[0, 1, 2] = np.nan
    y = max_pool2d(t(x, device=device), 2)
    assert y.shape == (2, 2, 2)
    assert np.isnan(y.numpy()[0, 0, 1]) and not np.isnan(y.numpy()[1]).any()
    ya, ia = adaptive_max_pool2d(t(x, device=device), 1, return_indices=True)
    assert np.isnan(ya.numpy()[0, 0, 0]) and ia.numpy()[0, 0, 0] == 1 * 4 + 2
    assert adaptive_max_pool2d(t(x, device=device), (None, 2)).shape == (2, 4, 2)


@pytest.mark.parametrize("device", DEVICES)
def test_max_unpool2d_inverts_pool(device):
    x = RNG.standard_normal((2, 3, 6, 5))
    y, idx = max_pool2d(t(x, device=device), 2, return_indices=True)
    u = max_unpool2d(y, idx, 2, output_size=(6, 5)).numpy()
    assert u.shape == (2, 3, 6, 5)
    mask = u != 0
    np.testing.assert_array_equal(u[mask], x[mask])
    assert mask.sum() == y.numel()
    y, idx = max_pool2d(t(x[..., :4], device=device), 2, return_indices=True)
    assert max_unpool2d(y, idx, 2).shape == (2, 3, 6, 4)  # default (H-1)*s - 2p + k


# ---------------------------------------------------------------- the CPU's parallel threshold
# The CPU kernels run planes in parallel above 65536 visited elements (kParallelMin in
# csrc/cpu/pool.cpp): the outputs for the strided and max pools and their backwards, the input
# pixels for the adaptive averages and max_unpool2d. Planes of 2x2 pooled to 1x1 put those counts
# at P and 4P: each is crossed just below, at and just above.
@pytest.mark.parametrize("planes", [65535, 65536, 65537, 16383, 16384, 16385])
def test_pool_kernels_across_parallel_threshold(planes):
    saved = _C.get_num_threads()
    _C.set_num_threads(2)
    try:
        x = RNG.standard_normal((1, planes, 2, 2))
        flat = x.reshape(planes, 4)
        onehot = (flat == flat.max(1, keepdims=True)).astype(float)
        for pool in (lambda v: max_pool2d(v, 2, return_indices=True),
                     lambda v: adaptive_max_pool2d(v, 1, return_indices=True)):
            g = t(x, True)
            y, idx = pool(g)
            np.testing.assert_array_equal(y.detach().numpy().ravel(), flat.max(1))
            np.testing.assert_array_equal(idx.numpy().ravel(), flat.argmax(1))
            y.sum().backward()
            np.testing.assert_array_equal(g.grad.numpy().reshape(planes, 4), onehot)
            u = max_unpool2d(y.detach(), idx, 2, output_size=(2, 2)).numpy().reshape(planes, 4)
            np.testing.assert_array_equal(u, onehot * flat)
        for pool in (lambda v: avg_pool2d(v, 2), lambda v: adaptive_avg_pool2d(v, 1)):
            g = t(x, True)
            y = pool(g)
            np.testing.assert_allclose(y.detach().numpy().ravel(), flat.mean(1), rtol=1e-12)
            y.sum().backward()
            np.testing.assert_array_equal(g.grad.numpy(), np.full(x.shape, 0.25))
    finally:
        _C.set_num_threads(saved)


# 2x2 windows at stride 2 without padding or dilation take a branch-free path in
# csrc/cpu/pool.cpp when every window lies inside the input; ceil_mode's partial windows, and
# any other geometry, the general one. Few distinct values make ties (the first largest wins),
# NaNs (the last NaN of a window wins) and -inf (a window of them points at its first).
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("h,w,ceil_mode", [(4, 6, False), (5, 7, False), (5, 7, True),
                                           (2, 2, False), (3, 4, False), (6, 9, True)])
def test_max_pool_2x2_path_keeps_the_window_rule(dtype, h, w, ceil_mode):
    rng = np.random.default_rng(h * w + ceil_mode)
    x = rng.integers(-2, 3, (2, 3, h, w)).astype(dtype)
    x[rng.random(x.shape) < 0.15] = np.nan
    x[rng.random(x.shape) < 0.15] = -np.inf
    y, idx = _C.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), ceil_mode)
    assert y.shape[2:] == (pool_output_size(h, 2, 2, 0, 1, ceil_mode),
                           pool_output_size(w, 2, 2, 0, 1, ceil_mode))
    for n, c, i, j in np.ndindex(y.shape):
        best, arg = -np.inf, 2 * i * w + 2 * j
        for r, q in [(2 * i + a, 2 * j + b) for a in (0, 1) for b in (0, 1)]:
            if r < h and q < w and (x[n, c, r, q] > best or np.isnan(x[n, c, r, q])):
                best, arg = x[n, c, r, q], r * w + q
        np.testing.assert_array_equal(y[n, c, i, j], best)
        assert idx[n, c, i, j] == arg


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k,s,p,d,ceil", [(2, None, 0, 1, False), (3, 2, 1, 1, True),
                                          ((2, 3), (1, 2), (1, 0), (2, 1), False)])
def test_max_pool2d_gradcheck(k, s, p, d, ceil, device):
    # distinct values so the argmax is stable under the finite-difference step
    x = t(RNG.permutation(2 * 2 * 5 * 6).reshape(2, 2, 5, 6) / 7.0, True, device=device)
    assert gradcheck(lambda x: max_pool2d(x, k, s, p, d, ceil), (x,))
    assert gradgradcheck(lambda x: max_pool2d(x, k, s, p, d, ceil), (x,))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("k,s,p,ceil,inc,div", [(2, None, 0, False, True, None),
                                                (3, 2, 1, True, False, None),
                                                ((3, 2), (2, 1), (1, 1), True, True, 5)])
def test_avg_pool2d_gradcheck(k, s, p, ceil, inc, div, device):
    x = t(RNG.standard_normal((2, 2, 5, 6)), True, device=device)
    assert gradcheck(lambda x: avg_pool2d(x, k, s, p, ceil, inc, div), (x,))
    assert gradgradcheck(lambda x: avg_pool2d(x, k, s, p, ceil, inc, div), (x,))


@pytest.mark.parametrize("device", DEVICES)
def test_adaptive_and_unpool_gradcheck(device):
    x = t(RNG.permutation(60).reshape(1, 3, 4, 5) / 3.0, True, device=device)
    assert gradcheck(lambda x: adaptive_avg_pool2d(x, (3, 2)), (x,))
    assert gradgradcheck(lambda x: adaptive_avg_pool2d(x, (3, 2)), (x,))
    assert gradcheck(lambda x: adaptive_max_pool2d(x, (3, 3)), (x,))
    y, idx = max_pool2d(x.detach(), 2, return_indices=True)
    v = t(RNG.standard_normal(tuple(y.shape)), True, device=device)
    assert gradcheck(lambda v: max_unpool2d(v, idx, 2, output_size=(4, 5)), (v,))


@pytest.mark.parametrize("mode,ac", [("nearest", None), ("bilinear", False), ("bilinear", True)])
def test_interpolate_gradcheck(mode, ac):
    x = t(RNG.standard_normal((1, 2, 3, 4)), True)
    assert gradcheck(lambda x: interpolate(x, size=(5, 3), mode=mode, align_corners=ac), (x,))


# ---------------------------------------------------------------- PyTorch parity
def test_pool_torch_parity():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = RNG.standard_normal((2, 3, 9, 11)).astype(np.float32)
    g, tx = t(x, True), torch.tensor(x, requires_grad=True)
    cases = [
        (lambda a: max_pool2d(a, 3, 2, 1, 2, True), lambda a: F.max_pool2d(a, 3, 2, 1, 2, True)),
        (lambda a: avg_pool2d(a, (3, 2), 2, 1, True, False),
         lambda a: F.avg_pool2d(a, (3, 2), 2, 1, True, False)),
        (lambda a: avg_pool2d(a, 2, 1, 1, False, True, 3),
         lambda a: F.avg_pool2d(a, 2, 1, 1, False, True, 3)),
        (lambda a: adaptive_avg_pool2d(a, (4, 5)), lambda a: F.adaptive_avg_pool2d(a, (4, 5))),
        (lambda a: adaptive_max_pool2d(a, (4, 5)), lambda a: F.adaptive_max_pool2d(a, (4, 5))),
        (lambda a: interpolate(a, scale_factor=2), lambda a: F.interpolate(a, scale_factor=2)),
        (lambda a: interpolate(a, size=(5, 17)), lambda a: F.interpolate(a, size=(5, 17))),
        (lambda a: interpolate(a, scale_factor=1.5, mode="bilinear", align_corners=False),
         lambda a: F.interpolate(a, scale_factor=1.5, mode="bilinear", align_corners=False)),
        (lambda a: interpolate(a, size=(4, 20), mode="bilinear", align_corners=True),
         lambda a: F.interpolate(a, size=(4, 20), mode="bilinear", align_corners=True)),
    ]
    for ours, theirs in cases:
        g.grad, tx.grad = None, None
        y, ty = ours(g), theirs(tx)
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
        gy = RNG.standard_normal(ty.shape).astype(np.float32)
        y.backward(t(gy))
        ty.backward(torch.tensor(gy))
        np.testing.assert_allclose(g.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    y, idx = max_pool2d(g, 2, return_indices=True)
    ty, tidx = F.max_pool2d(tx, 2, return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), tidx.numpy())
    np.testing.assert_array_equal(max_unpool2d(y, idx, 2, output_size=(9, 11)).detach().numpy(),
                                  F.max_unpool2d(ty, tidx, 2, output_size=(9, 11)).detach().numpy())


# ---------------------------------------------------------------- bad inputs
def _x(*shape):
    return t(np.zeros(shape))


@pytest.mark.parametrize("call,match", [
    (lambda: max_pool2d(_x(1, 1, 4, 4), 3, padding=2), r"at most half .* \(2, 2\)"),
    (lambda: max_pool2d(_x(1, 1, 2, 2), 3), r"output size \(1, 0, 0\) is too small"),
    (lambda: max_pool2d(_x(1, 1, 4, 4), 2, stride=0), r"stride must be >= 1"),
    (lambda: max_pool2d(_x(1, 1, 4, 4), 0), r"kernel_size must be >= 1"),
    (lambda: max_pool2d(_x(4, 4), 2), r"expected 3-D .* \(4, 4\)"),
    (lambda: avg_pool2d(_x(1, 1, 4, 4), 2, divisor_override=0), r"divisor_override"),
    (lambda: adaptive_avg_pool2d(_x(1, 1, 4, 4), (0, 2)), r"output_size must be >= 1"),
    (lambda: max_unpool2d(_x(1, 1, 2, 2), t(np.full((1, 1, 2, 2), 16)), 2),
     r"invalid max index 16 .* 4x4"),
    (lambda: max_unpool2d(_x(1, 1, 2, 2), t(np.zeros((1, 1, 2, 1), np.int64)), 2),
     r"indices of the input's shape"),
    (lambda: interpolate(_x(1, 1, 4, 4), size=2, mode="bicubic"), r"mode"),
    (lambda: interpolate(_x(1, 1, 4, 4), size=2, align_corners=True), r"align_corners"),
    (lambda: interpolate(_x(1, 1, 4, 4)), r"exactly one of size or scale_factor"),
])
def test_pool_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_pool_binding_validates():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"max_pool2d: padding .* at most half"):
        _C.max_pool2d(x, (2, 2), (2, 2), (2, 0), (1, 1), False)
    with pytest.raises(ValueError, match=r"too small"):
        _C.avg_pool2d(x, (5, 5), (1, 1), (0, 0), False, True, 0)
    with pytest.raises(ValueError, match=r"index -1 is out of range"):
        _C.max_unpool2d(np.zeros((1, 1, 2, 2)), np.full((1, 1, 2, 2), -1), (4, 4))
    # The backward drops indices outside the input: windows that covered only padding.
    dx = _C.max_pool2d_backward(np.ones((1, 1, 2, 2)), np.array([[[[16, -1], [5, 5]]]]), (4, 4))
    np.testing.assert_array_equal(dx.ravel(), np.eye(16)[5] * 2)


def test_max_pool_window_of_padding_only_gets_no_gradient():
    """dilation 2 over one pixel padded by 1: the window holds only padding (-inf, as
    PyTorch, which also gives the input a zero gradient)."""
    x = gf.ones(1, 1, 1, 1, requires_grad=True)
    y = F.max_pool2d(x, 2, stride=1, padding=1, dilation=2)
    y.sum().backward()
    assert y.shape == (1, 1, 1, 1) and y.item() == -np.inf
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((1, 1, 1, 1)))
