"""Tensor basics: creation, dtypes and promotion, attributes, conversions, printing, config."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import GF_DTYPES, arrays, dtypes, shapes

import gradflow as gf

try:
    import torch
except ImportError:  # the promotion table below stands in for torch.result_type
    torch = None

DTYPES = (gf.float32, gf.float64, gf.int64, gf.bool)


# ---------------------------------------------------------------- creation
def test_tensor_infers_dtype_like_pytorch():
    assert gf.tensor([1, 2]).dtype is gf.int64
    assert gf.tensor([1, 2.5]).dtype is gf.float32
    assert gf.tensor([True, False]).dtype is gf.bool
    assert gf.tensor(3.0).dtype is gf.float32
    assert gf.tensor(3).shape == ()
    assert gf.tensor([]).dtype is gf.float32 and gf.tensor([]).shape == (0,)
    assert gf.tensor([[]]).shape == (1, 0)
    assert gf.tensor(np.float64(1.0)).dtype is gf.float64
    assert gf.tensor(np.arange(3, dtype=np.int32)).dtype is gf.int32  # kept, as PyTorch
    assert gf.tensor(np.arange(3, dtype=np.uint16)).dtype is gf.int64
    assert gf.tensor([1, 2], dtype=gf.float64).dtype is gf.float64
    assert gf.tensor([gf.tensor(1.0), gf.tensor(2.0)]).tolist() == [1.0, 2.0]


def test_tensor_follows_default_dtype():
    gf.set_default_dtype(gf.float64)
    assert gf.tensor([1.5]).dtype is gf.float64
    assert gf.zeros(2).dtype is gf.float64
    assert gf.tensor([1]).dtype is gf.int64


def test_tensor_copies_but_as_tensor_and_from_numpy_share():
    a = np.arange(4.0)
    t, shared, shared2 = gf.tensor(a), gf.as_tensor(a), gf.from_numpy(a)
    a[0] = 9.0
    assert t[0].item() == 0.0
    assert shared[0].item() == 9.0 and shared2[0].item() == 9.0
    shared2[1] = 7.0
    assert a[1] == 7.0
    assert gf.as_tensor(a, dtype=gf.float32).dtype is gf.float32  # a converted copy
    assert gf.as_tensor(shared2) is shared2


def test_from_numpy_rejects_other_types():
    with pytest.raises(TypeError, match="from_numpy: can't convert np.ndarray of type uint16"):
        gf.from_numpy(np.arange(3, dtype=np.uint16))
    with pytest.raises(TypeError, match="from_numpy: expected np.ndarray, got list"):
        gf.from_numpy([1.0])


@pytest.mark.parametrize("fn,value", [(gf.zeros, 0), (gf.ones, 1)])
def test_zeros_ones(fn, value):
    for args in [(2, 3), ((2, 3),), ([2, 3],), (0,), ()]:
        t = fn(*args)
        expect_shape = args[0] if args and isinstance(args[0], (tuple, list)) else args
        assert t.shape == tuple(expect_shape) and t.dtype is gf.float32
        np.testing.assert_array_equal(t.numpy(), np.full(tuple(expect_shape), value, np.float32))
    assert fn(2, dtype=gf.int64).dtype is gf.int64
    assert fn(2, requires_grad=True).requires_grad


def test_full_empty_and_like():
    assert gf.full((2, 2), 3).dtype is gf.int64
    assert gf.full((2,), 2.5).dtype is gf.float32
    assert gf.full((2,), True).dtype is gf.bool
    np.testing.assert_array_equal(gf.full((2, 1), 7.0).numpy(), np.full((2, 1), 7.0))
    assert gf.empty(3, 0).shape == (3, 0)
    base = gf.ones(2, 3, dtype=gf.float64)
    for fn in (gf.zeros_like, gf.ones_like, gf.empty_like, gf.rand_like, gf.randn_like):
        out = fn(base)
        assert out.shape == (2, 3) and out.dtype is gf.float64 and not out.requires_grad
    assert gf.zeros_like(base, dtype=gf.int64).dtype is gf.int64
    assert gf.full_like(base, 4).tolist() == [[4.0] * 3] * 2
    r = gf.randint_like(gf.zeros(5, dtype=gf.int64), 3)
    assert r.dtype is gf.int64 and 0 <= r.min().item() and r.max().item() < 3


def test_arange_linspace_eye():
    assert gf.arange(5).tolist() == [0, 1, 2, 3, 4] and gf.arange(5).dtype is gf.int64
    assert gf.arange(1, 7, 2).tolist() == [1, 3, 5]
    a = gf.arange(0, 1, 0.25)
    assert a.dtype is gf.float32 and a.tolist() == [0.0, 0.25, 0.5, 0.75]
    assert gf.arange(5, 0, -2).tolist() == [5, 3, 1]
    assert gf.arange(0).shape == (0,)
    with pytest.raises(ValueError, match="arange: step must be nonzero"):
        gf.arange(0, 3, 0)
    np.testing.assert_allclose(gf.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5))
    assert gf.linspace(0, 1, 5).dtype is gf.float32 and gf.linspace(0, 1, 0).shape == (0,)
    with pytest.raises(ValueError, match="linspace: number of steps must be non-negative"):
        gf.linspace(0, 1, -1)
    np.testing.assert_array_equal(gf.eye(3).numpy(), np.eye(3))
    np.testing.assert_array_equal(gf.eye(2, 3, dtype=gf.int64).numpy(), np.eye(2, 3))


def test_random_creation_ranges_and_dtypes():
    u = gf.rand(1000)
    assert u.dtype is gf.float32 and 0 <= u.min().item() and u.max().item() < 1
    n = gf.randn(4000, dtype=gf.float64)
    assert n.dtype is gf.float64 and abs(n.mean().item()) < 0.1 and abs(n.std().item() - 1) < 0.1
    r = gf.randint(-2, 3, (500,))
    assert r.dtype is gf.int64 and set(r.tolist()) == {-2, -1, 0, 1, 2}
    assert gf.randint(4, size=(2, 2)).shape == (2, 2)
    assert sorted(gf.randperm(7).tolist()) == list(range(7))
    assert gf.randperm(0).shape == (0,) and gf.randperm(3).dtype is gf.int64
    with pytest.raises(ValueError, match="randint: expected low < high"):
        gf.randint(3, 3, (2,))
    with pytest.raises(TypeError, match="randint: missing the size argument"):
        gf.randint(3)


def test_random_in_place_fills():
    gf.manual_seed(0)
    for dtype in (gf.float32, gf.int64, gf.bool):  # integer and bool draws are not truncated
        b = gf.zeros(4000, dtype=dtype).bernoulli_(0.25)
        assert b.dtype is dtype and abs(b.to(gf.float64).mean().item() - 0.25) < 0.03
    p = gf.tensor([[0.0], [1.0]])
    assert gf.empty(2, 3).bernoulli_(p).tolist() == [[0.0] * 3, [1.0] * 3]
    u = gf.empty(1000, dtype=gf.float64).uniform_(-2, 3)
    assert -2 <= u.min().item() and u.max().item() < 3
    assert gf.empty(3).normal_(5.0, 0.0).tolist() == [5.0] * 3


@pytest.mark.parametrize("call, error, message", [
    (lambda t: t.bernoulli_(1.5), RuntimeError, r"bernoulli_: expects p to be in \[0, 1\], but "
                                                r"got p=1.5"),
    (lambda t: t.bernoulli_(-0.1), RuntimeError, r"bernoulli_: expects p to be in \[0, 1\]"),
    (lambda t: t.bernoulli_(float("nan")), RuntimeError, r"expects p to be in \[0, 1\], but got "
                                                         r"p=nan"),
    (lambda t: t.bernoulli_(gf.tensor([0.5, 1.5, 0.0])), RuntimeError,
     r"bernoulli_: expects all elements of p to be in \[0, 1\]"),
    (lambda t: t.bernoulli_(gf.tensor([1, 0, 1])), RuntimeError,
     "bernoulli_: p must be a floating point tensor"),
    (lambda t: t.bernoulli_(gf.tensor([[0.5]] * 2)), RuntimeError,
     r"bernoulli_: p of shape \(2, 1\) cannot be broadcast to the tensor's shape \(3,\)"),
    (lambda t: t.bernoulli_("a"), TypeError, "bernoulli_: p must be a number or a Tensor"),
    (lambda t: t.uniform_(1.0, 0.0), RuntimeError, r"uniform_: expects a \[from, to\) range"),
    (lambda t: t.normal_(0.0, -1.0), RuntimeError, "normal_: expects std >= 0.0, but got std=-1"),
    (lambda t: t.long().normal_(), RuntimeError, "normal_: expected a floating point tensor"),
    (lambda t: t.long().uniform_(), RuntimeError, "uniform_: expected a floating point tensor"),
])
def test_random_in_place_fills_reject_bad_parameters(call, error, message):
    with pytest.raises(error, match=message):
        call(gf.zeros(3))


def test_manual_seed_reproduces_every_generator():
    def draw():
        return [gf.rand(3).tolist(), gf.randn(2, 2).tolist(), gf.randint(0, 100, (4,)).tolist(),
                gf.randperm(6).tolist(), gf.empty(3).uniform_().tolist()]

    gf.manual_seed(123)
    first = draw()
    gf.manual_seed(123)
    assert draw() == first
    gf.manual_seed(124)
    assert draw() != first


@pytest.mark.parametrize("bad, exc, msg", [
    (-1, ValueError, r"zeros: invalid shape \(2, -1\): sizes must be non-negative integers"),
    (2.5, TypeError, "zeros: argument 'size' must be int, not float"),
    (True, TypeError, "zeros: argument 'size' must be int, not bool"),  # not a size of 1
    (2**63, ValueError, "zeros: argument 'size' = 9223372036854775808 does not fit in int64"),
    (2**62, RuntimeError, r"zeros: a tensor of shape \(2, 4611686018427387904\) is too large"),
])
def test_creation_rejects_bad_sizes(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        gf.zeros(2, bad)


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: gf.ones((2**31, 2**31)), RuntimeError, "ones: a tensor of shape"),
    (lambda: gf.empty(2**62), RuntimeError, "empty: a tensor of shape"),
    (lambda: gf.full((2**62,), 1.0), RuntimeError, "full: a tensor of shape"),
    (lambda: gf.full((True,), 1.0), TypeError, "full: argument 'size' must be int, not bool"),
    (lambda: gf.rand(2**62), RuntimeError, "rand: a tensor of shape"),
    (lambda: gf.randn(2, 2**62), RuntimeError, "randn: a tensor of shape"),
    (lambda: gf.randint(0, 3, (2**62,)), RuntimeError, "randint: a tensor of shape"),
    (lambda: gf.randperm(2**62), RuntimeError, "randperm: a tensor of shape"),
    (lambda: gf.randperm(-1), ValueError, "randperm: n must be non-negative, got -1"),
    (lambda: gf.randperm(True), TypeError, "randperm: argument 'n' must be int, not bool"),
    (lambda: gf.arange(2**62), RuntimeError, "arange: a tensor of shape"),
    (lambda: gf.arange(5, 0), ValueError, "arange: upper bound and lower bound inconsistent with "
                                          "step sign"),
    (lambda: gf.arange(0, 1.0, -0.5), ValueError, "arange: upper bound and lower bound"),
    (lambda: gf.linspace(0, 1, 2**62), RuntimeError, "linspace: a tensor of shape"),
    (lambda: gf.linspace(0, 1, True), TypeError, "linspace: argument 'steps' must be int"),
    (lambda: gf.eye(2**31), RuntimeError, "eye: a tensor of shape"),
    (lambda: gf.eye(2, -1), ValueError, "eye: n and m must be non-negative, got n=2, m=-1"),
    (lambda: gf.eye(True), TypeError, "eye: argument 'n' must be int, not bool"),
])
def test_creation_checks_sizes_before_allocating(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_a_failed_allocation_names_the_op(monkeypatch):
    def no_memory(*args):
        raise MemoryError("Unable to allocate")

    # (a real 4 TiB request could succeed on an overcommitting kernel and then be killed)
    monkeypatch.setattr(gf.backends.get_backend("cpu"), "full", no_memory)
    with pytest.raises(MemoryError, match=r"zeros: cannot allocate 4398046511104 bytes for a "
                                          r"tensor of shape \(1099511627776,\)"):
        gf.zeros(2**40)


def test_creation_takes_numpy_and_tensor_ints_as_sizes():
    assert gf.zeros(np.int64(2), gf.tensor(3)).shape == (2, 3)
    assert gf.full([2], 1.0).shape == (2,) and gf.arange(0, 0).shape == (0,)
    assert gf.arange(10, 0, -3).tolist() == [10, 7, 4, 1]
    assert gf.arange(0.0, 1.0, 0.25).shape == (4,)
    assert gf.eye(2, 0).shape == (2, 0) and gf.randperm(0).shape == (0,)


def test_tensor_rejects_bad_data():
    with pytest.raises(TypeError, match="cannot build a tensor from str"):
        gf.tensor("abc")
    with pytest.raises((TypeError, ValueError)):
        gf.tensor([[1, 2], [3]])
    with pytest.raises(TypeError, match="gradflow supports float32, float64, uint8, int8, "
                       "int16, int32, int64 and bool"):
        gf.tensor(np.array([1 + 2j]))


# ---------------------------------------------------------------- dtypes and promotion
_CAT = {gf.bool: 0, gf.int64: 1, gf.float32: 2, gf.float64: 2}


def _expected_promotion(da, a_dim, db, b_dim):
    """PyTorch's rule for tensors: a 0-d tensor only raises a dimensioned one's category."""
    if a_dim == b_dim:
        return gf.promote_types(da, db)
    dim_t, zero_t = (da, db) if a_dim else (db, da)
    return dim_t if _CAT[zero_t] <= _CAT[dim_t] else zero_t


def _torch_dtype(d):
    return {gf.float32: torch.float32, gf.float64: torch.float64, gf.int64: torch.int64,
            gf.bool: torch.bool}[d]


def _gf_of_torch(d):
    return {torch.float32: gf.float32, torch.float64: gf.float64, torch.int64: gf.int64,
            torch.bool: gf.bool}[d]


@pytest.mark.parametrize("da,db", list(itertools.product(DTYPES, DTYPES)))
@pytest.mark.parametrize("a_dim,b_dim", [(True, True), (True, False), (False, True),
                                         (False, False)])
def test_tensor_tensor_promotion(da, db, a_dim, b_dim):
    a = gf.ones((2,) if a_dim else (), dtype=da)
    b = gf.ones((2,) if b_dim else (), dtype=db)
    if torch is not None:
        ta = torch.ones((2,) if a_dim else (), dtype=_torch_dtype(da))
        tb = torch.ones((2,) if b_dim else (), dtype=_torch_dtype(db))
        expected = _gf_of_torch(torch.result_type(ta, tb))
    else:
        expected = _expected_promotion(da, a_dim, db, b_dim)
    assert (a + b).dtype is expected
    assert (a * b).dtype is expected
    assert gf.maximum(a, b).dtype is expected
    assert (b - a if expected is not gf.bool else b + a).dtype is expected


@pytest.mark.parametrize("d", DTYPES)
@pytest.mark.parametrize("scalar", [True, 2, 2.5])
def test_tensor_scalar_promotion(d, scalar):
    a = gf.ones(2, dtype=d)
    if torch is not None:
        expected = _gf_of_torch(torch.result_type(torch.ones(2, dtype=_torch_dtype(d)), scalar))
    else:
        sd = gf.bool if isinstance(scalar, bool) else gf.int64 if isinstance(scalar, int) else (
            gf.float32)
        expected = d if _CAT[sd] <= _CAT[d] else sd
    assert (a * scalar).dtype is expected and (scalar * a).dtype is expected
    assert (a + scalar).dtype is expected


def test_true_division_of_integers_is_float():
    assert (gf.tensor([1, 2]) / 2).dtype is gf.float32
    assert (gf.tensor([1, 2]) / gf.tensor([2, 4])).tolist() == [0.5, 0.5]
    assert (gf.tensor([7, -7]) // 2).tolist() == [3, -4]
    assert (gf.tensor([7, -7]) % 3).tolist() == [1, 2]


def test_dtype_objects():
    assert gf.float is gf.float32 and gf.double is gf.float64 and gf.long is gf.int64
    assert repr(gf.float32) == "gradflow.float32" and gf.bool.name == "bool"
    assert gf.float64.is_floating_point and not gf.int64.is_floating_point
    assert gf.promote_types(gf.int64, gf.float32) is gf.float32
    with pytest.raises(TypeError, match="only float32 and float64 can be the default"):
        gf.set_default_dtype(gf.int64)


# ---------------------------------------------------------------- attributes
def test_attributes():
    t = gf.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and isinstance(t.shape, gf.Size) and t.size() == t.shape
    assert repr(t.shape) == "gradflow.Size([2, 3, 4])" and t.shape.numel() == 24
    assert t.size(1) == 3 and t.size(-1) == 4
    assert t.ndim == 3 and t.dim() == 3 and t.numel() == 24 and len(t) == 2
    assert t.dtype is gf.float32 and t.device == gf.device("cpu") and t.device == "cpu"
    assert not t.is_cuda and t.is_cpu and t.is_leaf and t.grad is None and t.grad_fn is None
    assert t.T.shape == (4, 3, 2) and t.element_size() == 4
    assert gf.zeros(()).T.shape == ()
    assert gf.zeros(5).T.shape == (5,)
    with pytest.raises(IndexError, match=r"size: dimension out of range .*but got 3"):
        t.size(3)
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(gf.tensor(1.0))


def test_device_objects():
    assert str(gf.device("cpu")) == "cpu" and str(gf.device("cuda:1")) == "cuda:1"
    assert gf.device("cuda") == gf.device("cuda", 0)
    assert repr(gf.device("cuda", 0)) == "device(type='cuda', index=0)"
    with pytest.raises(ValueError, match="device type must be 'cpu' or 'cuda', got 'tpu'"):
        gf.device("tpu")
    with pytest.raises(ValueError, match="invalid device string"):
        gf.device("cuda:x")


@pytest.mark.skipif(gf.cuda.is_available(), reason="checks the no-GPU error")
def test_cuda_unavailable_is_a_clear_error():
    assert gf.cuda.device_count() == 0 and not gf.cuda.is_available()
    with pytest.raises(RuntimeError, match="cannot use device cuda:0"):
        gf.zeros(2).to("cuda")


# ---------------------------------------------------------------- conversions
@given(arrays((2, 3), np.float64) | arrays((0, 2), np.float64) | arrays((), np.float64))
def test_numpy_tolist_array_roundtrip(a):
    t = gf.tensor(a)
    np.testing.assert_array_equal(t.numpy(), a)
    np.testing.assert_array_equal(np.asarray(t), a)
    assert t.tolist() == a.tolist()
    assert np.asarray(t, dtype=np.float32).dtype == np.float32


def test_numpy_shares_memory_and_refuses_grad():
    t = gf.zeros(3)
    t.numpy()[0] = 5.0
    assert t[0].item() == 5.0
    w = gf.zeros(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Can't call numpy\(\) on Tensor that requires grad"):
        w.numpy()
    assert w.detach().numpy().tolist() == [0.0, 0.0]


def test_item():
    assert gf.tensor(3).item() == 3 and isinstance(gf.tensor(3).item(), int)
    assert isinstance(gf.tensor(2.5).item(), float) and gf.tensor([True]).item() is True
    assert gf.ones(1, 1).item() == 1.0
    with pytest.raises(RuntimeError, match="a Tensor with 2 elements cannot be converted"):
        gf.ones(2).item()
    assert float(gf.tensor(2.5)) == 2.5 and int(gf.tensor(7)) == 7
    with pytest.raises(RuntimeError, match="Boolean value of Tensor with 2 values is ambiguous"):
        bool(gf.ones(2))


@given(dtypes(), shapes(max_dims=3))
def test_dlpack_roundtrip_is_zero_copy(np_dtype, shape):
    a = np.zeros(shape, dtype=np_dtype)
    t = gf.from_dlpack(a)
    assert t.dtype is GF_DTYPES[np_dtype] and t.shape == shape
    back = np.from_dlpack(t)
    assert back.shape == shape and back.dtype == np_dtype
    if a.size:
        assert np.shares_memory(back, a)
        t.numpy()[(0,) * a.ndim] = 1
        assert back[(0,) * a.ndim] == 1 and a[(0,) * a.ndim] == 1


def test_dlpack_refuses_grad():
    with pytest.raises(RuntimeError, match="Can't export a Tensor that requires grad to DLPack"):
        np.from_dlpack(gf.zeros(2, requires_grad=True))


def test_dlpack_with_torch():
    torch = pytest.importorskip("torch")
    t = gf.arange(6.0).reshape(2, 3)
    tt = torch.from_dlpack(t)
    assert tt.tolist() == t.tolist()
    tt[0, 0] = 42.0
    assert t[0, 0].item() == 42.0
    back = gf.from_dlpack(torch.ones(3, dtype=torch.float64))
    assert back.dtype is gf.float64 and back.tolist() == [1.0] * 3


def test_to_and_dtype_shortcuts():
    t = gf.tensor([1.5, -2.5])
    assert t.to(gf.float64).dtype is gf.float64 and t.to("float64").dtype is gf.float64
    assert t.to(dtype=gf.int64).tolist() == [1, -2]
    assert t.to("cpu") is t and t.to(gf.float32) is t
    assert t.to(gf.zeros(1, dtype=gf.float64)).dtype is gf.float64
    assert t.double().dtype is gf.float64 and t.long().dtype is gf.int64
    assert t.bool().tolist() == [True, True] and t.long().float().dtype is gf.float32
    assert t.type_as(gf.zeros(1, dtype=gf.int64)).dtype is gf.int64
    w = gf.ones(2, requires_grad=True)
    w.double().sum().backward()
    assert w.grad.dtype is gf.float32 and w.grad.tolist() == [1.0, 1.0]


def test_clone_and_contiguous():
    a = gf.arange(6.0).reshape(2, 3)
    c = a.clone()
    c[0, 0] = 10.0
    assert a[0, 0].item() == 0.0
    assert a.is_contiguous() and a.contiguous() is a
    t = a.t()
    assert not t.is_contiguous()
    tc = t.contiguous()
    assert tc.is_contiguous() and tc.tolist() == t.tolist()
    w = gf.ones(2, 2, requires_grad=True)
    w.t().contiguous().clone().sum().backward()
    assert w.grad.tolist() == [[1.0, 1.0], [1.0, 1.0]]


# ---------------------------------------------------------------- printing
@pytest.mark.parametrize("make,expected", [
    (lambda m: m.tensor([[1.0, 2.0], [3.0, 4.0]]), "tensor([[1., 2.],\n        [3., 4.]])"),
    (lambda m: m.tensor([1, 2]), "tensor([1, 2])"),
    (lambda m: m.tensor(3.0), "tensor(3.)"),
    (lambda m: m.tensor([True, False]), "tensor([ True, False])"),
    (lambda m: m.tensor([0.0, 0.25, 0.5]), "tensor([0.0000, 0.2500, 0.5000])"),
    (lambda m: m.tensor([-1.5, 2.0]), "tensor([-1.5000,  2.0000])"),
    (lambda m: m.tensor([1e-5, 1e5]), "tensor([1.0000e-05, 1.0000e+05])"),
    (lambda m: m.tensor([1.0, 2.0], dtype=m.float64), "tensor([1., 2.], dtype={}.float64)"),
    (lambda m: m.zeros(0), "tensor([])"),
    (lambda m: m.zeros(2, 0), "tensor([], size=(2, 0))"),
    (lambda m: m.zeros(0, dtype=m.int64), "tensor([], dtype={}.int64)"),
    (lambda m: m.ones(2, requires_grad=True), "tensor([1., 1.], requires_grad=True)"),
    (lambda m: m.ones(2, requires_grad=True) * 2, "tensor([2., 2.], grad_fn=<MulBackward0>)"),
])
def test_repr_like_pytorch(make, expected):
    got = repr(make(gf))
    if "grad_fn" in expected:  # node names need not carry PyTorch's overload number
        got = re.sub(r"grad_fn=<(\w+?)0?>", r"grad_fn=<\g<1>0>", got)
    assert got == expected.format("gradflow")
    if torch is not None:
        assert repr(make(torch)) == expected.format("torch")


def test_repr_summarizes_large_tensors():
    text = repr(gf.arange(5000))
    assert "..." in text and text.startswith("tensor([   0,    1,    2,")


def test_show_config(capsys):
    gf.show_config()
    out = capsys.readouterr().out
    assert out.startswith(f"gradflow {gf.__version__}")
    for needle in ("Python", "NumPy", "C++ compiler", "OpenMP", "threads", "SIMD", "CUDA"):
        assert needle in out


def test_num_threads():
    before = gf.get_num_threads()
    try:
        gf.set_num_threads(1)
        assert gf.get_num_threads() == 1
        gf.set_num_threads(2)
        assert gf.get_num_threads() == 2
    finally:
        gf.set_num_threads(before)


@given(st.sampled_from(DTYPES), shapes(max_dims=3))
def test_creation_shapes_and_dtypes(d, shape):
    for t in (gf.zeros(shape, dtype=d), gf.ones(*shape, dtype=d), gf.full(shape, 1, dtype=d)):
        assert t.shape == shape and t.dtype is d and t.numel() == int(np.prod(shape))


def test_backend_lacks_names_the_unimplemented_contract_methods():
    from gradflow.backends.base import Backend
    from gradflow.backends.cpu import CPUBackend

    assert CPUBackend.lacks("conv2d", "max_pool2d", "batch_norm_train", "matmul") == []
    partial = type("Partial", (Backend,), {"conv2d": lambda self, *a: None})
    assert partial.lacks("conv2d", "max_pool2d", "matmul") == ["max_pool2d", "matmul"]
    with pytest.raises(NotImplementedError, match="max_pool2d: no kernel for device partial"):
        backend = partial()
        backend.name = "partial"
        backend.max_pool2d(None, (2, 2), (2, 2), (0, 0), (1, 1), False)
