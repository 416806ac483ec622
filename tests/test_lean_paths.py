"""The per-op lean paths of small tensors (issue 15): each gives what the general path gives,
and the cases it must not take still take the general one.

- a leaf's first gradient is kept uncopied only when no one else can see its memory;
- backward without create_graph runs MatMul's and Linear's GEMMs, the reductions' broadcast
  and sum_to_shape on the arrays; with create_graph it records them;
- the CPU backend's full, ufunc reductions and a scalar's broadcast view.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
from gradflow.autograd import Function, gradcheck, gradgradcheck
from gradflow.backends.cpu import CPUBackend


@pytest.fixture
def copies(monkeypatch):
    """The shapes of the arrays the CPU backend copies while the test runs."""
    seen = []
    copy = CPUBackend.copy

    def counting(self, x):
        seen.append(tuple(x.shape))
        return copy(self, x)

    monkeypatch.setattr(CPUBackend, "copy", counting)
    return seen


def leaf(values):
    return gf.tensor(values, dtype=gf.float64, requires_grad=True)


def shares(a, b) -> bool:
    return np.shares_memory(a.detach().numpy(), b.detach().numpy())


# ---------------------------------------------------------------- a leaf's first gradient
def test_a_fresh_gradient_becomes_the_leafs_grad_uncopied(copies):
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (x * w + 1).sum().backward()
    assert copies == []
    assert x.grad.tolist() == [3.0, 4.0] and w.grad.tolist() == [1.0, 2.0]
    assert not shares(x.grad, w) and not shares(w.grad, x)
    assert x.grad.numpy().flags.writeable and x.grad.grad_fn is None


def test_an_mlp_steps_gradients_are_kept_uncopied(copies):
    gf.manual_seed(0)
    x, w1, w2 = gf.randn(4, 6), gf.randn(6, 5, requires_grad=True), gf.randn(5, 3)
    b1, b2 = gf.zeros(5, requires_grad=True), gf.zeros(3, requires_grad=True)
    w2.requires_grad_()
    loss = (((x @ w1 + b1).relu() @ w2 + b2) ** 2).mean()
    loss.backward()
    assert copies == []
    for p in (w1, b1, w2, b2):
        assert p.grad.shape == p.shape and p.grad.numpy().flags.owndata


def test_one_gradient_reaching_two_leaves_is_copied(copies):
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (x + w).backward(gf.tensor([1.0, 1.0], dtype=gf.float64) * 2)  # add sends g to both
    assert not shares(x.grad, w.grad)
    x.grad.add_(1)
    assert w.grad.tolist() == [2.0, 2.0] and x.grad.tolist() == [3.0, 3.0]


def test_a_gradient_that_is_a_view_is_copied(copies):
    x = leaf([1.0, 2.0, 3.0])
    x.sum().backward()  # the sum's gradient: a stride-0 view of one value
    assert copies == [(3,)]
    x.grad.mul_(2)  # writable, one value per element
    assert x.grad.tolist() == [2.0, 2.0, 2.0]
    y = leaf([[1.0, 2.0], [3.0, 4.0]])
    y.t().sum(0).backward(gf.tensor([1.0, 2.0], dtype=gf.float64) * 1)  # a transposed view
    assert y.grad.tolist() == [[1.0, 1.0], [2.0, 2.0]] and y.grad.numpy().flags.owndata


def test_a_user_supplied_gradient_is_never_the_leafs_grad():
    x = leaf([1.0, 2.0])
    g = gf.tensor([5.0, 6.0], dtype=gf.float64)
    x.backward(g)  # the root is the leaf itself
    assert x.grad.tolist() == [5.0, 6.0] and not shares(x.grad, g)
    x.grad = None
    (x + 0).backward(g)  # passed through add's backward unchanged
    assert not shares(x.grad, g)
    g.mul_(0)
    assert x.grad.tolist() == [5.0, 6.0]
    x.grad = None
    gf.autograd.backward([x * 1], [g + 1])  # a fresh gradient through mul: may be kept
    assert x.grad.tolist() == [1.0, 1.0]


def test_a_gradient_a_backward_also_keeps_is_copied():
    kept = gf.tensor([7.0, 8.0], dtype=gf.float64)

    class ReturnsKept(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return kept

    class ReturnsKeptsMemory(ReturnsKept):
        @staticmethod
        def backward(ctx, g):
            return kept.detach()  # a new tensor over the same array

    for fn in (ReturnsKept, ReturnsKeptsMemory):
        x = leaf([1.0, 2.0])
        fn.apply(x).sum().backward()
        assert x.grad.tolist() == [7.0, 8.0] and not shares(x.grad, kept)


def test_retain_graph_keeps_saved_gradients_apart():
    class ReturnsSaved(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x * 2)
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return ctx.saved_tensors[0]

    x = leaf([1.0, 2.0])
    y = ReturnsSaved.apply(x).sum()
    y.backward(retain_graph=True)
    x.grad.add_(100)  # must not reach the saved tensor: the first .grad was a copy
    y.backward()
    assert x.grad.tolist() == [104.0, 108.0]


def test_hooks_see_and_keep_gradients_apart_from_grad():
    x = leaf([1.0, 2.0])
    seen = []
    handle = x.register_hook(lambda g: seen.append(g))
    (x * 3).sum().backward()
    handle.remove()
    assert not shares(seen[0], x.grad)
    x.grad.add_(1)
    assert seen[0].tolist() == [3.0, 3.0]

    kept = gf.tensor([1.0, 1.0], dtype=gf.float64)
    z = leaf([1.0, 2.0])
    z.register_hook(lambda g: kept)  # a replacement the caller keeps
    (z * 3).sum().backward()
    assert not shares(z.grad, kept)
    w = leaf([1.0, 2.0])
    w.register_hook(lambda g: g * 10)  # a fresh replacement
    (w * 3).sum().backward()
    assert w.grad.tolist() == [30.0, 30.0]


def test_retain_grad_and_a_leafs_grad_stay_apart():
    x = leaf([1.0, 2.0])
    z = x + 0
    z.retain_grad()
    (z * 1).backward(gf.tensor([2.0, 3.0], dtype=gf.float64) * 1)
    assert not shares(z.grad, x.grad)
    x.grad.add_(1)
    assert z.grad.tolist() == [2.0, 3.0]


def test_create_graph_keeps_the_recorded_gradient():
    x = leaf([1.0, 2.0])
    (x ** 3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    (gx,) = gf.autograd.grad(x.grad.sum(), x)
    assert gx.tolist() == [6.0, 12.0]


def test_later_backwards_accumulate_into_a_kept_gradient():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    y = (x * w).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [6.0, 8.0] and w.grad.tolist() == [2.0, 4.0]


# ---------------------------------------------------------------- backward on the arrays
@pytest.mark.parametrize("shapes", [((3, 4), (4, 2)), ((1, 1), (1, 1)), ((0, 3), (3, 2)),
                                    ((2, 3), (3, 0))])
def test_matmul_gradients_with_and_without_create_graph(shapes):
    gf.manual_seed(1)
    a = gf.randn(*shapes[0], dtype=gf.float64, requires_grad=True)
    b = gf.randn(*shapes[1], dtype=gf.float64, requires_grad=True)
    assert gradcheck(lambda a, b: a @ b, (a, b))
    assert gradgradcheck(lambda a, b: a @ b, (a, b))
    bt = gf.randn(shapes[1][1], shapes[1][0], dtype=gf.float64).requires_grad_()
    assert gradcheck(lambda a, bt: a @ bt.t(), (a, bt))  # a transposed (non-contiguous) operand


def test_linear_gradients_with_and_without_create_graph():
    gf.manual_seed(2)
    x = gf.randn(5, 3, dtype=gf.float64, requires_grad=True)
    w = gf.randn(4, 3, dtype=gf.float64, requires_grad=True)
    b = gf.randn(4, dtype=gf.float64, requires_grad=True)
    f = gf.nn.functional.linear
    assert gradcheck(f, (x, w, b)) and gradgradcheck(f, (x, w, b))
    assert gradcheck(lambda x, w: f(x, w), (x, w))


def test_a_gradient_of_another_dtype_takes_the_general_path():
    a = gf.ones(2, 3, requires_grad=True)
    b = gf.ones(3, 2, requires_grad=True)
    (a @ b).backward(gf.ones(2, 2, dtype=gf.float64))
    assert a.grad.tolist() == [[2.0] * 3] * 2 and b.grad.tolist() == [[2.0] * 2] * 3
    x, w = gf.ones(2, 3, requires_grad=True), gf.ones(4, 3, requires_grad=True)
    gf.nn.functional.linear(x, w).backward(gf.ones(2, 4, dtype=gf.float64))
    assert x.grad.tolist() == [[4.0] * 3] * 2


@pytest.mark.parametrize("shape,dim,keepdim", [((2, 3), None, False), ((2, 3), 0, True),
                                               ((2, 1, 3), (0, 2), False), ((0, 3), 1, False),
                                               ((1,), None, False), ((), None, False)])
def test_reduction_gradients_broadcast_back(shape, dim, keepdim):
    gf.manual_seed(3)
    x = gf.randn(*shape, dtype=gf.float64, requires_grad=True)
    for f in (lambda x: x.sum(dim, keepdim=keepdim), lambda x: x.mean(dim, keepdim=keepdim)):
        assert gradcheck(f, (x,))
        assert gradgradcheck(f, (x,))


@pytest.mark.parametrize("a_shape,b_shape", [((2, 3), (3,)), ((2, 3), (1, 3)), ((4, 1, 3), (2, 1)),
                                             ((1,), (2, 2)), ((2, 0), (1, 0))])
def test_broadcast_gradients_sum_back(a_shape, b_shape):
    gf.manual_seed(4)
    a = gf.randn(*a_shape, dtype=gf.float64, requires_grad=True)
    b = gf.randn(*b_shape, dtype=gf.float64, requires_grad=True)
    assert gradcheck(lambda a, b: a * b + b, (a, b))
    assert gradgradcheck(lambda a, b: a * b, (a, b))


# ---------------------------------------------------------------- the CPU backend
def test_full_matches_numpy_for_every_kind_of_value():
    be = CPUBackend()
    with np.errstate(invalid="ignore"):
        for value, dtype in [(2.5, np.float32), (True, np.float64), (3, np.int64),
                             (float("nan"), np.int64), (1.7, np.int64), (1, np.bool_),
                             (np.float64(1e300), np.float32)]:
            with np.errstate(over="ignore"):
                got, want = be.full((2, 3), value, np.dtype(dtype)), np.full((2, 3), value, dtype)
            assert got.dtype == want.dtype and np.array_equal(got, want, equal_nan=True)
    assert be.full((), 4.0, np.dtype(np.float32)).shape == ()
    with pytest.raises(OverflowError):
        be.full((2,), 300, np.dtype(np.int8))


def test_a_scalars_broadcast_is_a_read_only_view():
    be = CPUBackend()
    s = np.asarray(np.float32(2.0))
    out = be.broadcast_to(s, (2, 3))
    assert out.shape == (2, 3) and out.dtype == np.float32 and out.strides == (0, 0)
    assert not out.flags.writeable and np.shares_memory(out, s)
    s[...] = 5.0
    assert out.tolist() == [[5.0] * 3] * 2
    assert be.broadcast_to(s, (0, 4)).shape == (0, 4) and be.broadcast_to(s, ()).shape == ()
    v = np.arange(3.0)
    assert be.broadcast_to(v, (2, 3)).tolist() == [[0.0, 1.0, 2.0]] * 2


@pytest.mark.parametrize("op", ["sum", "prod", "max", "min"])
def test_ufunc_reductions_match_numpy(op):
    be = CPUBackend()
    x = np.arange(1, 13, dtype=np.float32).reshape(3, 4)
    ref = getattr(np, op)
    for axes, keep in [(None, False), ((0,), True), ((0, 1), False), ((), False)]:
        assert np.array_equal(be.reduce(op, x, axes, keep), ref(x, axis=axes, keepdims=keep))
    b = np.array([True, False, True])
    assert be.reduce(op, b, None, False) == ref(b)
    empty = np.zeros((0,), np.float32)
    if op in ("max", "min"):
        with pytest.raises(ValueError, match="zero-size array"):
            be.reduce(op, empty, None, False)
    else:
        assert be.reduce(op, empty, None, False) == ref(empty)
