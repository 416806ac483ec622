"""The native elementwise kernels (csrc/cpu/elementwise.cpp) and where the CPU backend uses
them: values equal to NumPy's (the same IEEE operations), float32 and float64, one and two
threads, just below, at and above the size thresholds, broadcasts on either side, in place,
non-contiguous inputs (NumPy runs them), the binding's checks, the fused relu backward and
axpy_, and the engine's in-place gradient sums."""

import re
import sys

import numpy as np
import pytest

import gradflow as gf
from gradflow import _C, op_table
from gradflow.autograd import gradcheck, gradgradcheck
from gradflow.backends.base import FUSED_KERNELS
from gradflow.ops import update

cpu = sys.modules["gradflow.backends.cpu"]  # the module (gradflow.backends.cpu is the backend)
BE = cpu.CPUBackend()
MIN, SAME_MIN = cpu.NATIVE_MIN, cpu.NATIVE_SAME_SHAPE_MIN


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    before = _C.get_num_threads()
    _C.set_num_threads(request.param)
    yield request.param
    _C.set_num_threads(before)


@pytest.fixture
def calls(monkeypatch):
    """The names of the native functions the CPU backend calls during the test."""
    seen = []

    class Spy:
        def __getattr__(self, name):
            fn = getattr(_C, name)
            if not callable(fn):
                return fn
            return lambda *args, **kw: (seen.append(name), fn(*args, **kw))[1]

    monkeypatch.setattr(cpu, "_C", Spy())
    return seen


def test_native_names_are_table_rows():
    assert set(_C.binary_ops) <= set(op_table.names(op_table.BINARY))
    assert set(_C.unary_ops) <= set(op_table.names(op_table.UNARY))
    assert cpu._NATIVE_BINARY == set(_C.binary_ops)
    for row in op_table.UNARY:
        if row.fused_grad is not None:
            assert row.fused_grad in FUSED_KERNELS and hasattr(BE, row.fused_grad)


def _arrays(rng, dtype, *shapes):
    return [(rng.uniform(0.5, 2, s) * rng.choice([-1, 1], s)).astype(dtype) for s in shapes]


# (full shape, other shape): a bias row, a per-channel scale, a scalar-like, a middle block
BROADCASTS = [((MIN // 64, 64), (64,)), ((4, 16, 8, 8), (1, 16, 1, 1)), ((2, 64, 32), (1,)),
              ((4, 16, 8, 8), (16, 1, 1)), ((2, 64, 32), (64, 1)), ((8, 4, 128), (4, 128))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
@pytest.mark.parametrize("full, small", BROADCASTS)
def test_broadcast_binary_matches_numpy_on_either_side(threads, calls, dtype, op, full, small):
    a, b = _arrays(np.random.default_rng(0), dtype, full, small)
    ufunc = getattr(np, op_table.BINARY_BY_NAME[op].numpy)
    for x, y in ((a, b), (b, a)):
        out = BE.binary(op, x, y)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, ufunc(x, y))
    assert calls == ["binary", "binary"]
    expect = ufunc(a, b)
    BE.binary_(op, a, b)
    np.testing.assert_array_equal(a, expect)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [SAME_MIN - 1, SAME_MIN, SAME_MIN + 1])
def test_same_shape_and_scalar_go_native_from_the_threshold_with_two_threads(threads, calls,
                                                                           dtype, n):
    a, b = _arrays(np.random.default_rng(1), dtype, (n,), (n,))
    for op in ("add", "sub", "mul", "div"):
        ufunc = getattr(np, op_table.BINARY_BY_NAME[op].numpy)
        np.testing.assert_array_equal(BE.binary(op, a, b), ufunc(a, b))
        np.testing.assert_array_equal(BE.binary(op, a, 1.5), ufunc(a, 1.5))
        np.testing.assert_array_equal(BE.binary(op, 3, a), ufunc(3, a))
    native = n >= SAME_MIN and threads > 1
    assert calls == ["get_num_threads", "binary"] * 12 if native else calls.count("binary") == 0


@pytest.mark.parametrize("n", [MIN - 1, MIN, MIN + 1])
def test_relu_and_broadcast_go_native_from_native_min(calls, n):
    x = np.linspace(-1, 1, n, dtype=np.float32)
    np.testing.assert_array_equal(BE.unary("relu", x), np.maximum(x, 0))
    bias = np.ones(1, np.float32) * 0.25
    x2 = x.reshape(n, 1) if n % 16 else x.reshape(-1, 16)
    np.testing.assert_array_equal(BE.binary("add", x2, bias.reshape(1, 1)), x2 + 0.25)
    g = np.ones(n, np.float32)
    np.testing.assert_array_equal(BE.relu_backward(g, x), (x > 0).astype(np.float32))
    assert (calls == ["relu", "binary", "relu_backward"]) == (n >= MIN)
    assert calls == [] or n >= MIN


def test_non_contiguous_mixed_dtype_and_short_runs_stay_in_numpy(calls):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((96, 96)).astype(np.float32)
    pairs = rng.standard_normal((MIN, 2)).astype(np.float32)
    cases = [(a.T, a.T), (a, a.T), (a, a.astype(np.float64)), (pairs, np.ones(2, np.float32)),
             (a[:, :1], a[:1, :]), (a, np.float64(2.0))]
    for x, y in cases:
        np.testing.assert_array_equal(BE.binary("mul", x, y), np.multiply(x, y))
    np.testing.assert_array_equal(BE.unary("relu", a.T), np.maximum(a.T, 0))
    b = a.copy()
    BE.binary_("add", b, b)  # the operand is the output itself
    np.testing.assert_array_equal(b, a + a)
    assert BE.binary("mul", a, np.float64(2.0)).dtype == np.float64
    assert calls == []


def test_relu_keeps_nan_and_its_backward_is_zero_at_and_below_zero(threads):
    x = np.zeros(MIN, np.float64)
    x[:4] = [np.nan, -1.0, 0.0, 2.0]
    y = BE.unary("relu", x)
    assert np.isnan(y[0]) and list(y[1:4]) == [0.0, 0.0, 2.0]
    g = np.full(MIN, 3.0)
    g[1] = np.inf
    assert list(BE.relu_backward(g, y)[:4]) == [0.0, 0.0, 0.0, 3.0]


@pytest.mark.parametrize("dtype", [gf.float32, gf.float64])
@pytest.mark.parametrize("n", [MIN - 1, MIN + 1])
def test_relu_gradient_fused_and_composed_agree(threads, dtype, n):
    x = gf.randn(n, dtype=dtype, requires_grad=True)
    g = gf.randn(n, dtype=dtype)
    (gx,) = gf.autograd.grad(x.relu(), x, g)
    (gx_graph,) = gf.autograd.grad(x.relu(), x, g, create_graph=True)  # the Tensor-op rule
    np.testing.assert_array_equal(gx.numpy(), np.where(x.detach().numpy() > 0, g.numpy(), 0))
    np.testing.assert_array_equal(gx.numpy(), gx_graph.detach().numpy())


def test_relu_gradcheck_and_gradgradcheck():
    x = gf.tensor(np.random.default_rng(3).uniform(0.1, 1, 50) * np.tile([1, -1], 25),
                  dtype=gf.float64, requires_grad=True)
    assert gradcheck(gf.relu, (x,))
    assert gradgradcheck(gf.relu, (x,))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [MIN - 1, MIN, MIN + 1])
def test_axpy_matches_numpy(threads, calls, dtype, n):
    y, x = _arrays(np.random.default_rng(4), dtype, (n,), (n,))
    expect = y + x * dtype(-0.1)
    BE.axpy_(y, -0.1, x)
    np.testing.assert_array_equal(y, expect)
    assert calls == (["axpy_"] if n >= MIN else [])
    z = np.ones((n // 8, 8), dtype)
    BE.axpy_(z, 2.0, np.arange(8, dtype=dtype))  # broadcast: NumPy
    np.testing.assert_array_equal(z, 1 + 2.0 * np.arange(8, dtype=dtype) + np.zeros_like(z))


def test_update_add_uses_axpy_and_bumps_the_version():
    p = gf.ones(MIN + 5)
    g = gf.full((MIN + 5,), 2.0)
    version = p._version_counter
    update.add_(p, g, alpha=-0.5)
    assert p._version_counter == version + 1
    np.testing.assert_array_equal(p.numpy(), np.zeros(MIN + 5, np.float32))


def test_sgd_momentum_and_adam_large_parameters_match_numpy(threads):
    rng = np.random.default_rng(5)
    w0, g0 = rng.standard_normal(MIN * 3), rng.standard_normal(MIN * 3)
    for opt_cls, kw in ((gf.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
                        (gf.optim.Adam, dict(lr=0.01))):
        p = gf.tensor(w0, dtype=gf.float64, requires_grad=True)
        opt = opt_cls([p], **kw)
        ref_p, buf, m, v = w0.copy(), None, np.zeros_like(w0), np.zeros_like(w0)
        for step in range(1, 4):
            p.grad = gf.tensor(g0 * step, dtype=gf.float64)
            opt.step()
            g = g0 * step
            if opt_cls is gf.optim.SGD:
                g = g + 0.01 * ref_p
                buf = g.copy() if buf is None else 0.9 * buf + g
                ref_p = ref_p - 0.1 * buf
            else:
                m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
                denom = np.sqrt(v) / np.sqrt(1 - 0.999**step) + 1e-8
                ref_p = ref_p - 0.01 / (1 - 0.9**step) * m / denom
        np.testing.assert_allclose(p.detach().numpy(), ref_p, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("args, error", [
    ((np.ones(4, np.float32), "pow", np.ones(4, np.float32)), "no native kernel named 'pow'"),
    ((np.ones(4, np.float32), "add", np.ones(4, np.float64)), "b must have dtype float32"),
    ((np.ones(4, np.int64), "add", np.ones(4, np.int64)), "a must have dtype float32"),
    ((np.ones(6, np.float32), "add", np.ones(4, np.float32)), "does not repeat evenly"),
    ((np.ones(4, np.float32), "add", np.ones(0, np.float32)), "does not repeat evenly"),
    ((np.ones(8, np.float32), "add", np.ones(2, np.float32), None, 0), "inner must be >= 1"),
    ((np.ones(8, np.float32), "add", np.ones(2, np.float32), None, 3), "does not repeat evenly"),
    ((np.ones(8, np.float32), "add", np.ones(2, np.float32), None, 2**62), "repeat evenly"),
    ((np.ones(8, np.float32), "add", np.ones(8, np.float32), np.ones(4, np.float32)),
     "out (4,) must have as many elements as (8,)"),
    ((np.ones((4, 4), np.float32).T, "add", np.ones(4, np.float32)), "a must be C-contiguous"),
])
def test_binding_refuses_bad_arguments(args, error):
    with pytest.raises((ValueError, TypeError), match=re.escape(error)):
        _C.binary(*args)


def test_binding_refuses_aliasing_and_read_only_outputs():
    buf = np.ones(16, np.float32)
    with pytest.raises(ValueError, match="out must be a itself or not overlap a and b"):
        _C.binary(buf[:8], "add", buf[8:], buf[4:12])
    with pytest.raises(ValueError, match="out must be a itself"):
        _C.binary(buf[:8], "add", buf[:8], buf[:8])  # out is b too
    ro = np.ones(8, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writable"):
        _C.binary(np.ones(8, np.float32), "add", np.ones(8, np.float32), ro)
    with pytest.raises(ValueError, match="y must be x itself or not overlap it"):
        _C.axpy_(buf[:8], 1.0, buf[4:12])
    with pytest.raises(ValueError, match="grad .* and y .* must have the same shape"):
        _C.relu_backward(np.ones(8, np.float32), np.ones(4, np.float32))
    same = np.ones(8, np.float32)
    _C.axpy_(same, 1.0, same)
    assert (same == 2).all()


@pytest.mark.parametrize("create_graph", [False, True])
def test_gradient_sums_of_shared_gradients_are_not_written_through(create_graph):
    """add's backward sends one tensor to both inputs; a node reached four times sums them
    in place into a buffer of its own, and a leaf reached by a shared tensor keeps it intact."""
    x = gf.tensor(np.arange(1.0, 5.0), dtype=gf.float64, requires_grad=True)
    u = x * 1.0
    s = u + u  # both edges receive the same gradient tensor
    loss = ((s + u) * 2 + u * 3).sum()
    (g,) = gf.autograd.grad(loss, x, create_graph=create_graph)
    np.testing.assert_array_equal(g.detach().numpy(), np.full(4, 2 * 2 + 2 + 3.0))
    if create_graph:
        (gg,) = gf.autograd.grad((g * x).sum(), x)
        np.testing.assert_array_equal(gg.numpy(), np.full(4, 9.0))
    big = gf.ones(MIN, requires_grad=True)
    parts = [big * k for k in range(1, 6)]
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    total.sum().backward(create_graph=create_graph)
    np.testing.assert_array_equal(big.grad.detach().numpy(), np.full(MIN, 15.0, np.float32))


# The kernels' own thresholds (csrc/cpu/elementwise.cpp): blocks of 8192 elements, shared among
# threads from 32768 elements. Each size just below, at and above, with broadcast runs that
# straddle block edges (rows of 7 against 5 values: 35 elements a period).
KERNEL_SIZES = [n for edge in (8192, 32768) for n in (edge - 1, edge, edge + 1)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", KERNEL_SIZES)
def test_kernels_at_their_block_and_thread_thresholds(threads, dtype, n):
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n).astype(dtype)
    b = rng.standard_normal(n).astype(dtype) + 3
    np.testing.assert_array_equal(_C.binary(a, "div", b), a / b)
    np.testing.assert_array_equal(_C.binary(a, "sub", b[:1], swap=True), b[0] - a)
    np.testing.assert_array_equal(_C.relu(a), np.maximum(a, 0))
    np.testing.assert_array_equal(_C.relu_backward(b, a), np.where(a > 0, b, 0))
    y = a.copy()
    _C.axpy_(y, 0.5, b)
    np.testing.assert_array_equal(y, a + dtype(0.5) * b)
    periods = n // 35 + 1  # the next whole number of (5, 7) periods, just above n
    full = rng.standard_normal((periods, 5, 7)).astype(dtype)
    small = rng.standard_normal((5, 1)).astype(dtype)
    out = _C.binary(full, "mul", small, inner=7)
    np.testing.assert_array_equal(out, full * small)
