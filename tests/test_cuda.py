"""The CUDA backend against the CPU backend: every Backend method on identical inputs
(contiguous, transposed, sliced and broadcast layouts), float64 tight and float32 loose."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow.cuda
from gradflow.backends.base import BINARY_OPS, REDUCE_OPS, UNARY_OPS
from gradflow.backends.cpu import CPUBackend

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not gradflow.cuda.is_available(), reason="no CUDA GPU"),
]

cpu = CPUBackend()
LAYOUTS = ("contiguous", "transposed", "sliced", "broadcast")
FLOATS = (np.float32, np.float64)


@pytest.fixture(scope="module")
def gpu():
    from gradflow.backends.cuda import CUDABackend

    return CUDABackend(0)


def tol(dtype):
    if np.dtype(dtype) == np.float32:
        return dict(rtol=1e-5, atol=1e-6)
    return dict(rtol=1e-12, atol=1e-12)


def same(gpu, g, ref, dtype=None, **kw):
    out = gpu.to_numpy(g)
    ref = np.asarray(ref)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    assert out.dtype == ref.dtype, (out.dtype, ref.dtype)
    if out.dtype.kind == "f":
        np.testing.assert_allclose(out, ref, **(kw or tol(dtype or out.dtype)))
    else:
        np.testing.assert_array_equal(out, ref)


def values(rng, shape, dtype, low=-2.0, high=2.0):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype == np.int64:
        return rng.integers(-5, 6, shape).astype(np.int64)
    return rng.uniform(low, high, shape).astype(dtype)


def make(gpu, rng, shape, dtype, layout="contiguous", **kw):
    """The same values as a NumPy array and a CUDA array, both laid out as `layout`."""
    shape = tuple(shape)
    if layout == "transposed" and len(shape) >= 2:
        base = values(rng, shape[::-1], dtype, **kw)
        axes = tuple(range(len(shape)))[::-1]
        return base.transpose(axes), gpu.permute(gpu.from_numpy(base), axes)
    if layout == "sliced" and len(shape) >= 1:
        base = values(rng, (shape[0] + 1,) + tuple(2 * n for n in shape[1:]), dtype, **kw)
        key = (slice(1, None),) + (slice(None, None, 2),) * (len(shape) - 1)
        return base[key], gpu.getitem(gpu.from_numpy(base), key)
    if layout == "broadcast" and len(shape) >= 1:
        base = values(rng, (1,) + shape[1:], dtype, **kw)
        return np.broadcast_to(base, shape), gpu.broadcast_to(gpu.from_numpy(base), shape)
    a = values(rng, shape, dtype, **kw)
    return a, gpu.from_numpy(a)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# ------------------------------------------------------------------------- device, memory
def test_device_queries():
    assert gradflow.cuda.device_count() >= 1
    assert isinstance(gradflow.cuda.get_device_name(0), str)
    assert gradflow.cuda.unavailable_reason() == ""
    gradflow.cuda.synchronize()


def test_memory_stats_and_cache(gpu):
    gradflow.cuda.synchronize()
    base = gradflow.cuda.memory_allocated()
    gradflow.cuda.reset_peak_memory_stats()
    x = gpu.empty((1 << 20,), np.float32)
    assert gradflow.cuda.memory_allocated() >= base + 4 * (1 << 20)
    assert gradflow.cuda.max_memory_allocated() >= base + 4 * (1 << 20)
    del x
    assert gradflow.cuda.memory_allocated() == base
    reserved = gradflow.cuda.memory_reserved()
    y = gpu.empty((1 << 20,), np.float32)  # served from the cache: nothing new reserved
    assert gradflow.cuda.memory_reserved() == reserved
    del y
    gradflow.cuda.empty_cache()
    assert gradflow.cuda.memory_reserved() < reserved
    assert gradflow.cuda.max_memory_allocated() >= base + 4 * (1 << 20)


def test_views_keep_storage_alive(gpu, rng):
    a = rng.standard_normal((4, 5))
    v = gpu.getitem(gpu.from_numpy(a), (slice(1, 3),))
    np.testing.assert_array_equal(gpu.to_numpy(v), a[1:3])


# ------------------------------------------------------------------------- creation / copies
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 0, 2), (2, 3, 4)])
def test_roundtrip(gpu, rng, dtype, shape):
    a = values(rng, shape, dtype)
    g = gpu.from_numpy(a)
    assert g.shape == a.shape and g.ndim == a.ndim and g.size == a.size and g.dtype == a.dtype
    same(gpu, g, a)


def test_from_numpy_noncontiguous_and_bad_dtype(gpu, rng):
    a = rng.standard_normal((4, 6))[:, ::2]
    same(gpu, gpu.from_numpy(a), a)
    with pytest.raises(TypeError, match="float32, float64, int64 or bool"):
        gpu.from_numpy(np.zeros(3, np.int8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_full_empty_arange(gpu, dtype):
    same(gpu, gpu.full((2, 3), 1, dtype), cpu.full((2, 3), 1, dtype))
    assert gpu.empty((4, 0), dtype).shape == (4, 0)
    if dtype != np.bool_:
        same(gpu, gpu.arange(2, 11, 3, dtype), cpu.arange(2, 11, 3, dtype))
    same(gpu, gpu.full((3,), 2**40 + 1, np.int64), cpu.full((3,), 2**40 + 1, np.int64))
    same(gpu, gpu.arange(0.0, 1.0, 0.1, np.float64), cpu.arange(0.0, 1.0, 0.1, np.float64))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("src", [np.float32, np.float64, np.int64, np.bool_])
@pytest.mark.parametrize("dst", [np.float32, np.float64, np.int64, np.bool_])
def test_astype(gpu, rng, layout, src, dst):
    a, g = make(gpu, rng, (3, 4), src, layout)
    same(gpu, gpu.astype(g, dst), cpu.astype(a, dst))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_copy_and_copy_(gpu, rng, layout):
    a, g = make(gpu, rng, (3, 4), np.float64, layout)
    c = gpu.copy(g)
    assert gpu.is_contiguous(c) and not gpu.shares_memory(c, g)
    same(gpu, c, a)
    dst = np.zeros((5, 3, 4), np.float32)
    gdst = gpu.from_numpy(dst)
    cpu.copy_(dst, a)
    gpu.copy_(gdst, g)
    same(gpu, gdst, dst)
    # strided destination, int source broadcast along rows, scalar source
    d2, g2 = np.zeros((4, 6)), gpu.from_numpy(np.zeros((4, 6)))
    row = np.arange(3, dtype=np.int64)
    cpu.copy_(d2[:, ::2], row)
    gpu.copy_(gpu.getitem(g2, (slice(None), slice(None, None, 2))), gpu.from_numpy(row))
    cpu.copy_(d2[1:, 1::2], 7.5)
    gpu.copy_(gpu.getitem(g2, (slice(1, None), slice(1, None, 2))), 7.5)
    same(gpu, g2, d2)


# ------------------------------------------------------------------------- random numbers
def test_random_reproducible_and_distributed(gpu):
    gpu.manual_seed(123)
    a = gpu.to_numpy(gpu.rand((1000, 37), np.float32))
    n = gpu.to_numpy(gpu.randn((100001,), np.float64))
    gpu.manual_seed(123)
    np.testing.assert_array_equal(gpu.to_numpy(gpu.rand((1000, 37), np.float32)), a)
    np.testing.assert_array_equal(gpu.to_numpy(gpu.randn((100001,), np.float64)), n)
    gradflow.cuda.manual_seed(123)  # the module-level seed drives the same generator
    np.testing.assert_array_equal(gpu.to_numpy(gpu.rand((1000, 37), np.float32)), a)
    assert a.dtype == np.float32 and 0.0 <= a.min() and a.max() < 1.0
    assert abs(a.mean() - 0.5) < 0.01 and abs(n.mean()) < 0.02 and abs(n.std() - 1) < 0.02
    f32 = gpu.to_numpy(gpu.randn((4001,), np.float32))
    assert f32.dtype == np.float32 and abs(f32.std() - 1) < 0.05
    r = gpu.to_numpy(gpu.randint(-3, 5, (10000,)))
    assert r.dtype == np.int64 and r.min() == -3 and r.max() == 4
    p = gpu.to_numpy(gpu.randperm(1000))
    np.testing.assert_array_equal(np.sort(p), np.arange(1000))
    assert not np.array_equal(p, np.arange(1000))
    assert not np.array_equal(gpu.to_numpy(gpu.rand((100,), np.float64)),
                              gpu.to_numpy(gpu.rand((100,), np.float64)))


# ------------------------------------------------------------------------- elementwise
POSITIVE = {"log", "sqrt", "rsqrt", "log1p", "reciprocal"}


@pytest.mark.parametrize("op", UNARY_OPS)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_unary(gpu, rng, op, dtype, layout):
    kw = dict(low=0.1, high=3.0) if op in POSITIVE else {}
    a, g = make(gpu, rng, (5, 6), dtype, layout, **kw)
    if op == "round":
        a = np.ascontiguousarray(a)
        a[0, :4] = [0.5, 1.5, -2.5, 2.5]
        g = gpu.from_numpy(a)
    same(gpu, gpu.unary(op, g), cpu.unary(op, a))


def test_unary_special_values(gpu):
    a = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -50.0, 50.0])
    g = gpu.from_numpy(a)
    for op in ("isnan", "isinf", "sign", "relu", "sigmoid", "tanh", "abs", "exp", "erf"):
        same(gpu, gpu.unary(op, g), cpu.unary(op, a))


@pytest.mark.parametrize("op", ["neg", "abs", "sign", "relu", "logical_not"])
def test_unary_int(gpu, rng, op):
    a, g = make(gpu, rng, (4, 5), np.int64)
    same(gpu, gpu.unary(op, g), cpu.unary(op, a))


@pytest.mark.parametrize("op", BINARY_OPS)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_binary(gpu, rng, op, dtype, layout):
    kw = dict(low=0.5, high=2.0) if op == "pow" else {}
    a, ga = make(gpu, rng, (4, 5), dtype, layout, **kw)
    b, gb = make(gpu, rng, (5,), dtype, **kw)  # broadcast against a's rows
    if op in ("eq", "ne", "le", "ge"):
        b = np.ascontiguousarray(b)
        b[0] = a[0, 0]
        gb = gpu.from_numpy(b)
    same(gpu, gpu.binary(op, ga, gb), cpu.binary(op, a, b))
    same(gpu, gpu.binary(op, gb, ga), cpu.binary(op, b, a))
    for s in (1.5, 2, True):
        same(gpu, gpu.binary(op, ga, s), cpu.binary(op, a, s))
        same(gpu, gpu.binary(op, s, ga), cpu.binary(op, s, a))


@pytest.mark.parametrize("op", [o for o in BINARY_OPS if o not in ("div", "pow")])
def test_binary_int_and_mixed(gpu, rng, op):
    a, ga = make(gpu, rng, (3, 1, 4), np.int64)
    b, gb = make(gpu, rng, (2, 1), np.int64)
    b[b == 0] = 3
    gb = gpu.from_numpy(b)
    same(gpu, gpu.binary(op, ga, gb), cpu.binary(op, a, b))
    f, gf = make(gpu, rng, (2, 4), np.float32)
    same(gpu, gpu.binary(op, ga, gf), cpu.binary(op, a, f), rtol=1e-6, atol=1e-6)
    same(gpu, gpu.binary(op, ga, 2.5), cpu.binary(op, a, 2.5))


def test_binary_nan_and_div(gpu):
    a = np.array([np.nan, 1.0, 2.0, -3.0])
    b = np.array([1.0, np.nan, -1.5, 0.0])
    for op in ("maximum", "minimum", "remainder", "div", "eq", "lt"):
        with np.errstate(all="ignore"):
            ref = cpu.binary(op, a, b)
        same(gpu, gpu.binary(op, gpu.from_numpy(a), gpu.from_numpy(b)), ref)
    i = np.arange(6, dtype=np.int64)
    same(gpu, gpu.binary("div", gpu.from_numpy(i), 4), cpu.binary("div", i, 4))


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "maximum", "pow"])
@pytest.mark.parametrize("layout", LAYOUTS[:3])
def test_binary_inplace(gpu, rng, op, layout):
    a, ga = make(gpu, rng, (4, 6), np.float64, layout, low=0.5, high=2.0)
    a = a.copy()
    if layout == "contiguous":
        # in place on a strided view of a larger array
        base = values(rng, (4, 12), np.float64, low=0.5, high=2.0)
        gbase = gpu.from_numpy(base)
        a, ga = base[:, ::2], gpu.getitem(gbase, (slice(None), slice(None, None, 2)))
    b, gb = make(gpu, rng, (6,), np.float64, low=0.5, high=2.0)
    cpu.binary_(op, a, b)
    gpu.binary_(op, ga, gb)
    same(gpu, ga, a)
    cpu.binary_(op, a, 1.25)
    gpu.binary_(op, ga, 1.25)
    same(gpu, ga, a)


def test_binary_inplace_casts_and_aliases(gpu, rng):
    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    ga = gpu.from_numpy(a)
    cpu.binary_("mul", a, 1.5)
    gpu.binary_("mul", ga, 1.5)
    same(gpu, ga, a)
    s = rng.standard_normal((3, 3))
    gs = gpu.from_numpy(s)
    cpu.binary_("add", s, s.T.copy())
    gpu.binary_("add", gs, gpu.permute(gs, (1, 0)))
    same(gpu, gs, s)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_where_and_clip(gpu, rng, dtype):
    c, gc = make(gpu, rng, (3, 4), np.bool_)
    a, ga = make(gpu, rng, (3, 4), dtype, "transposed")
    b, gb = make(gpu, rng, (4,), dtype)
    same(gpu, gpu.where(gc, ga, gb), cpu.where(c, a, b))
    same(gpu, gpu.where(gc, ga, 0), cpu.where(c, a, 0))
    same(gpu, gpu.where(gc, 1.5, gb), cpu.where(c, 1.5, b))
    if dtype != np.bool_:
        for lo, hi in ((-1, 1), (None, 0.5), (0, None), (None, None)):
            same(gpu, gpu.clip(ga, lo, hi), cpu.clip(a, lo, hi))


# ------------------------------------------------------------------------- reductions
AXES = [(), (0,), (1,), (2,), (0, 2), (0, 1, 2)]


@pytest.mark.parametrize("op", REDUCE_OPS)
@pytest.mark.parametrize("axes", AXES)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduce_float(gpu, rng, op, axes, layout, keepdims):
    for dtype in FLOATS:
        a, g = make(gpu, rng, (3, 4, 5), dtype, layout, low=0.5, high=1.5)
        ref = cpu.reduce(op, a, axes, keepdims)
        rtol = 1e-5 if dtype == np.float32 else 1e-12
        same(gpu, gpu.reduce(op, g, axes, keepdims), ref, rtol=rtol)


@pytest.mark.parametrize("op", REDUCE_OPS)
@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_reduce_int_bool(gpu, rng, op, dtype):
    a, g = make(gpu, rng, (6, 7), dtype, "transposed")
    for axes in ((0,), (1,), (0, 1)):
        same(gpu, gpu.reduce(op, g, axes, False), cpu.reduce(op, a, axes, False))


@pytest.mark.parametrize("shape,axes", [((1000003,), (0,)), ((3000, 700), (1,)),
                                        ((700, 3000), (0,)), ((64, 5000), (0, 1)),
                                        ((100000, 3), (1,)), ((4, 300, 50), (0, 2))])
def test_reduce_large(gpu, rng, shape, axes):
    a, g = make(gpu, rng, shape, np.float64)
    for op in ("sum", "max", "mean"):
        same(gpu, gpu.reduce(op, g, axes, False), cpu.reduce(op, a, axes, False),
             rtol=1e-10, atol=1e-9)
    a32, g32 = make(gpu, rng, shape, np.float32)
    same(gpu, gpu.reduce("sum", g32, axes, True), cpu.reduce("sum", a32, axes, True),
         rtol=1e-4, atol=1e-3)


def test_reduce_nan_and_empty(gpu):
    a = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]])
    g = gpu.from_numpy(a)
    for op in ("max", "min", "sum"):
        same(gpu, gpu.reduce(op, g, (1,), False), cpu.reduce(op, a, (1,), False))
    e = np.zeros((0, 3))
    ge = gpu.from_numpy(e)
    same(gpu, gpu.reduce("sum", ge, (0,), False), cpu.reduce("sum", e, (0,), False))
    same(gpu, gpu.reduce("prod", ge, (0,), False), cpu.reduce("prod", e, (0,), False))
    with pytest.raises(ValueError, match="zero-size array"):
        gpu.reduce("max", ge, (0,), False)


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_argreduce(gpu, rng, op, layout):
    a, g = make(gpu, rng, (4, 5, 6), np.float32, layout)
    for axis in range(3):
        for keep in (False, True):
            same(gpu, gpu.argreduce(op, g, axis, keep), cpu.argreduce(op, a, axis, keep))
    ties = np.array([[1.0, 3.0, 3.0, 0.0, 0.0], [np.nan, 2.0, np.nan, 9.0, -9.0]])
    same(gpu, gpu.argreduce(op, gpu.from_numpy(ties), 1, False), cpu.argreduce(op, ties, 1, False))
    big = rng.standard_normal((3, 5000))
    same(gpu, gpu.argreduce(op, gpu.from_numpy(big), 1, False), cpu.argreduce(op, big, 1, False))
    i = rng.integers(0, 4, (7, 9))
    same(gpu, gpu.argreduce(op, gpu.from_numpy(i), 0, False), cpu.argreduce(op, i, 0, False))


# ------------------------------------------------------------------------- views
@pytest.mark.parametrize("layout", LAYOUTS)
def test_reshape_permute_broadcast_flip(gpu, rng, layout):
    a, g = make(gpu, rng, (4, 6), np.float64, layout)
    for shape in ((24,), (2, 12), (2, 2, 6), (4, 1, 6, 1), (-1, 3)):
        same(gpu, gpu.reshape(g, shape), cpu.reshape(a, shape))
    same(gpu, gpu.permute(g, (1, 0)), cpu.permute(a, (1, 0)))
    same(gpu, gpu.broadcast_to(gpu.reshape(g, (4, 1, 6)), (2, 4, 3, 6)),
         cpu.broadcast_to(a.reshape(4, 1, 6), (2, 4, 3, 6)))
    for axes in ((0,), (1,), (0, 1)):
        same(gpu, gpu.flip(g, axes), cpu.flip(a, axes))
    assert gpu.is_contiguous(g) == cpu.is_contiguous(a)
    c = gpu.contiguous(g)
    assert gpu.is_contiguous(c)
    same(gpu, c, a)


def test_views_share_memory(gpu, rng):
    g = gpu.from_numpy(rng.standard_normal((4, 6)))
    v = gpu.reshape(g, (24,))
    assert gpu.shares_memory(g, v) and gpu.contiguous(g) is g
    assert gpu.shares_memory(g, gpu.permute(g, (1, 0)))
    assert not gpu.shares_memory(gpu.getitem(g, (0,)), gpu.getitem(g, (1,)))
    assert not gpu.shares_memory(g, gpu.copy(g))
    # a transposed view reshaped where the strides allow stays a view
    t = gpu.permute(gpu.from_numpy(rng.standard_normal((2, 3, 4))), (1, 0, 2))
    assert gpu.shares_memory(t, gpu.reshape(t, (3, 2, 2, 2)))
    with pytest.raises(ValueError, match="cannot reshape"):
        gpu.reshape(g, (5, 5))
    with pytest.raises(ValueError, match="leaves its storage"):
        g.as_strided((4, 7), (6, 1), 0)


BASIC_KEYS = [
    (1,), (-1,), (slice(1, 3),), (slice(None, None, -1),), (Ellipsis, 2), (None, 0),
    (slice(None), None, slice(1, None, 2)), (1, slice(None), 3), (slice(4, 1, -2), Ellipsis, None),
    (slice(10, 20),), (0, 0, 0),
]


@pytest.mark.parametrize("key", BASIC_KEYS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_getitem_basic(gpu, rng, key, layout):
    a, g = make(gpu, rng, (5, 4, 6), np.float32, layout)
    v = gpu.getitem(g, key)
    same(gpu, v, cpu.getitem(a, key))
    if v.size:
        assert gpu.shares_memory(v, g)


def adv_keys(gpu, rng):
    i = rng.integers(-5, 5, (3,))
    j = rng.integers(0, 4, (2, 1))
    m = rng.random((5, 4)) < 0.5
    return [
        ((i,), (gpu.from_numpy(i),)),
        ((slice(None), j), (slice(None), gpu.from_numpy(j))),
        ((i[:2], slice(1, 3), j), (gpu.from_numpy(i[:2]), slice(1, 3), gpu.from_numpy(j))),
        ((slice(None), j, i[:2] % 6), (slice(None), gpu.from_numpy(j), gpu.from_numpy(i[:2] % 6))),
        ((m,), (gpu.from_numpy(m),)),
        ((Ellipsis, m[0, :4] | True, slice(None, 2)),
         (Ellipsis, gpu.from_numpy(m[0, :4] | True), slice(None, 2))),
        ((1, j), (1, gpu.from_numpy(j))),
    ]


@pytest.mark.parametrize("case", range(7))
@pytest.mark.parametrize("layout", LAYOUTS)
def test_getitem_setitem_advanced(gpu, rng, case, layout):
    a, g = make(gpu, rng, (5, 4, 6), np.float64, layout)
    ckey, gkey = adv_keys(gpu, rng)[case]
    ref = cpu.getitem(a, ckey)
    same(gpu, gpu.getitem(g, gkey), ref)
    a, g = np.array(a), gpu.copy(g)
    val = rng.standard_normal(ref.shape[-1:])
    cpu.setitem(a, ckey, val)
    gpu.setitem(g, gkey, gpu.from_numpy(val))
    same(gpu, g, a)
    cpu.setitem(a, ckey, 2.5)
    gpu.setitem(g, gkey, 2.5)
    same(gpu, g, a)


def test_setitem_basic(gpu, rng):
    a = rng.standard_normal((4, 6))
    g = gpu.from_numpy(a)
    row = rng.standard_normal(3)
    cpu.setitem(a, (slice(None), slice(None, None, 2)), row)
    gpu.setitem(g, (slice(None), slice(None, None, 2)), gpu.from_numpy(row))
    cpu.setitem(a, (1,), 0)
    gpu.setitem(g, (1,), 0)
    cpu.setitem(a, (slice(None), 0), a[0, :4].copy())
    gpu.setitem(g, (slice(None), 0), gpu.getitem(g, (0, slice(None, 4))))
    same(gpu, g, a)


def test_index_errors(gpu):
    g = gpu.from_numpy(np.zeros((3, 4)))
    with pytest.raises(IndexError, match="out of bounds"):
        gpu.getitem(g, (3,))
    with pytest.raises(IndexError, match="out of range"):
        gpu.getitem(g, (gpu.from_numpy(np.array([0, 3])),))
    with pytest.raises(IndexError, match="too many indices"):
        gpu.getitem(g, (0, 0, 0))
    with pytest.raises(IndexError, match="out of range"):
        gpu.take_along_axis(g, gpu.from_numpy(np.full((3, 1), 4)), 1)
    # the flag was cleared: a valid gather afterwards works
    same(gpu, gpu.getitem(g, (gpu.from_numpy(np.array([-1])),)), np.zeros((1, 4)))


# ------------------------------------------------------------------------- join, gather, scatter
@pytest.mark.parametrize("axis", [0, 1, 2])
def test_concatenate_and_pad(gpu, rng, axis):
    parts = [make(gpu, rng, [2 + i if d == axis else (3, 4, 5)[d] for d in range(3)], np.float32,
                  layout) for i, layout in enumerate(LAYOUTS[:3])]
    same(gpu, gpu.concatenate([g for _, g in parts], axis),
         cpu.concatenate([a for a, _ in parts], axis))
    a, g = parts[1]
    widths = [(0, 0)] * 3
    widths[axis] = (1, 2)
    same(gpu, gpu.pad(g, widths, -1.5), cpu.pad(a, widths, -1.5))
    ints = [gpu.from_numpy(np.arange(3)), gpu.from_numpy(np.ones(2))]
    same(gpu, gpu.concatenate(ints, 0), cpu.concatenate([np.arange(3), np.ones(2)], 0))


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_take_along_axis(gpu, rng, axis, layout):
    a, g = make(gpu, rng, (4, 5, 6), np.float64, layout)
    ishape = [4, 5, 6]
    ishape[axis] = 3
    idx = rng.integers(-a.shape[axis], a.shape[axis], ishape)
    same(gpu, gpu.take_along_axis(g, gpu.from_numpy(idx), axis), cpu.take_along_axis(a, idx, axis))
    ishape = [1, 5, 6]  # broadcast index
    ishape[axis] = 2
    idx = rng.integers(0, a.shape[axis], ishape)
    same(gpu, gpu.take_along_axis(g, gpu.from_numpy(idx), axis), cpu.take_along_axis(a, idx, axis))


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_scatter_add(gpu, rng, axis, dtype):
    out = values(rng, (5, 6), dtype)
    gout = gpu.from_numpy(out)
    idx = rng.integers(0, out.shape[axis], (3, 4))  # repeats: accumulation must add up
    src, gsrc = make(gpu, rng, (4, 5), dtype, "transposed")
    cpu.scatter_add_(out, axis, idx, src)
    gpu.scatter_add_(gout, axis, gpu.from_numpy(idx), gsrc)
    same(gpu, gout, out, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_index_add(gpu, rng, dtype):
    out = values(rng, (6, 3), dtype)
    gout = gpu.from_numpy(out)
    idx = np.array([0, 2, 2, 5, 0, 0])
    v = values(rng, (6, 3), dtype)
    cpu.index_add_(out, (idx,), v)
    gpu.index_add_(gout, (gpu.from_numpy(idx),), gpu.from_numpy(v))
    same(gpu, gout, out, rtol=1e-5, atol=1e-5)
    cpu.index_add_(out, (slice(1, 3), idx[:3] % 3), v[0, :3])
    gpu.index_add_(gout, (slice(1, 3), gpu.from_numpy(idx[:3] % 3)), gpu.from_numpy(v[0, :3]))
    same(gpu, gout, out, rtol=1e-5, atol=1e-5)
    cpu.index_add_(out, (slice(None), 1), 1)
    gpu.index_add_(gout, (slice(None), 1), 1)
    same(gpu, gout, out, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------- matmul
MATMUL_SHAPES = [
    ((1, 1), (1, 1)), ((3, 5), (5, 2)), ((128, 128), (128, 128)), ((129, 67), (67, 131)),
    ((257, 512), (512, 200)), ((2, 3, 17, 9), (9, 33)), ((4, 1, 8, 8), (3, 8, 5)),
    ((7, 0), (0, 3)), ((0, 4), (4, 5)), ((5, 64, 48), (5, 48, 80)), ((3, 2, 0), (0, 4)),
]


@pytest.mark.parametrize("shapes", MATMUL_SHAPES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_matmul(gpu, rng, shapes, dtype):
    (sa, sb) = shapes
    a, ga = make(gpu, rng, sa, dtype)
    b, gb = make(gpu, rng, sb, dtype)
    k = max(sa[-1], 1)
    ref = a @ b if a.size == 0 or b.size == 0 else cpu.matmul(a, b)  # CPU backend: no 0-size
    same(gpu, gpu.matmul(ga, gb), ref,
         rtol=1e-4 if dtype == np.float32 else 1e-11, atol=1e-5 * k)


@pytest.mark.parametrize("layout", LAYOUTS[1:])
def test_matmul_strided_inputs(gpu, rng, layout):
    a, ga = make(gpu, rng, (6, 33, 20), np.float64, layout)
    b, gb = make(gpu, rng, (20, 7), np.float64, "transposed")
    same(gpu, gpu.matmul(ga, gb), cpu.matmul(a, b))


def test_matmul_large_float32(gpu, rng):
    a = rng.standard_normal((1024, 768)).astype(np.float32)
    b = rng.standard_normal((768, 1000)).astype(np.float32)
    out = gpu.to_numpy(gpu.matmul(gpu.from_numpy(a), gpu.from_numpy(b)))
    ref = a.astype(np.float64) @ b.astype(np.float64)
    assert np.linalg.norm(out - ref) / np.linalg.norm(ref) < 1e-6


def test_matmul_errors(gpu):
    g = gpu.from_numpy(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="cannot be multiplied"):
        gpu.matmul(g, g)
    with pytest.raises(TypeError, match="float"):
        i = gpu.from_numpy(np.zeros((2, 2), np.int64))
        gpu.matmul(i, i)


def test_binding_validates(gpu):
    from gradflow import _cuda

    g = gpu.from_numpy(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="expected"):
        _cuda.copy_(g, gpu.from_numpy(np.zeros((4, 3))))
    with pytest.raises(TypeError, match="dtype"):
        _cuda.unary("exp", gpu.empty((3, 4), np.float32), g)
    with pytest.raises(ValueError, match="unknown op"):
        _cuda.unary("nope", g, g)
    with pytest.raises(ValueError, match="negative dimension"):
        gpu.empty((-1, 2), np.float32)
    with pytest.raises(ValueError, match="at most 8 dims"):
        gpu.empty((1,) * 9, np.float32)


# ------------------------------------------------------------------------- Tensor level
def test_tensor_to_cuda_and_back(rng):
    import gradflow as gf

    a = rng.standard_normal((3, 4)).astype(np.float32)
    t = gf.tensor(a).to("cuda")
    assert t.is_cuda and str(t.device) == "cuda:0"
    np.testing.assert_array_equal(t.cpu().numpy(), a)
    np.testing.assert_allclose((t * 2 + 1).sum(1).cpu().numpy(), (a * 2 + 1).sum(1), rtol=1e-5)


GRAD_FUNCS = {
    "elementwise": lambda x, w: (x.tanh() * w.sigmoid() + x.exp() / (1 + w * w)).sum(),
    "matmul": lambda x, w: (x @ w.t()).relu().pow(2).mean(),
    "reduce": lambda x, w: x.max(1)[0].sum() + (w.log_softmax(1) * x).sum(),
    "index": lambda x, w: x[[0, 2, 2]].sum() + x[:, ::2].prod() + w.flip(0)[1:].abs().sum(),
}


@pytest.mark.parametrize("name", list(GRAD_FUNCS))
def test_gradcheck_on_cuda(rng, name):
    import gradflow as gf
    from gradflow.autograd import gradcheck

    x = gf.tensor(rng.uniform(0.5, 1.5, (3, 4)), dtype=gf.float64, device="cuda",
                  requires_grad=True)
    w = gf.tensor(rng.uniform(0.5, 1.5, (3, 4)), dtype=gf.float64, device="cuda",
                  requires_grad=True)
    assert gradcheck(GRAD_FUNCS[name], (x, w))


def test_mlp_training_matches_cpu(rng):
    import gradflow as gf

    x = rng.standard_normal((64, 10)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    params0 = [rng.standard_normal((10, 32)) * 0.3, np.zeros(32),
               rng.standard_normal((32, 3)) * 0.3, np.zeros(3)]

    def train(device):
        params = [gf.tensor(p, dtype=gf.float32, device=device, requires_grad=True)
                  for p in params0]
        xt, yt = gf.tensor(x, device=device), gf.tensor(y, device=device)
        losses = []
        for _ in range(5):
            w1, b1, w2, b2 = params
            logits = (xt @ w1 + b1).relu() @ w2 + b2
            loss = -logits.log_softmax(1).gather(1, yt.reshape(-1, 1)).mean()
            loss.backward()
            losses.append(loss.item())
            with gf.no_grad():
                params = [(p - 0.5 * p.grad).detach().requires_grad_() for p in params]
        return losses, [p.detach().cpu().numpy() for p in params]

    cpu_losses, cpu_params = train("cpu")
    gpu_losses, gpu_params = train("cuda")
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-4)
    assert gpu_losses[-1] < gpu_losses[0]
    for g, c in zip(gpu_params, cpu_params):
        np.testing.assert_allclose(g, c, rtol=1e-4, atol=1e-5)


def test_events_time_the_queued_work(gpu, rng):
    start, end = gradflow.cuda.Event(enable_timing=True), gradflow.cuda.Event()
    a = gpu.from_numpy(values(rng, (256, 256), np.float32))
    start.record()
    for _ in range(4):
        gpu.matmul(a, a)
    end.record()
    end.synchronize()
    assert start.elapsed_time(end) > 0

