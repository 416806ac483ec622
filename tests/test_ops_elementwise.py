"""Elementwise ops: forward against NumPy on drawn shapes (size-1, zero-size, broadcast,
non-contiguous), backward by gradcheck in float64, bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import array_pairs, arrays, broadcastable_pairs, shaped_arrays, shapes, to_gf

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _gelu(x):
    return x * 0.5 * (1 + _erf(x / math.sqrt(2)))


# name: (gradflow function, NumPy reference, (low, high) of the drawn inputs)
UNARY = {
    "neg": (gf.neg, np.negative, (-3, 3)),
    "abs": (gf.abs, np.abs, (-3, 3)),
    "exp": (gf.exp, np.exp, (-3, 3)),
    "log": (gf.log, np.log, (0.1, 3)),
    "log1p": (gf.log1p, np.log1p, (-0.9, 3)),
    "sqrt": (gf.sqrt, np.sqrt, (0.1, 3)),
    "rsqrt": (gf.rsqrt, lambda x: 1 / np.sqrt(x), (0.1, 3)),
    "sin": (gf.sin, np.sin, (-3, 3)),
    "cos": (gf.cos, np.cos, (-3, 3)),
    "tanh": (gf.tanh, np.tanh, (-3, 3)),
    "sigmoid": (gf.sigmoid, _sigmoid, (-3, 3)),
    "relu": (gf.relu, lambda x: np.maximum(x, 0), (-3, 3)),
    "leaky_relu": (gf.leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x), (-3, 3)),
    "leaky_relu_0.2": (lambda t: gf.leaky_relu(t, 0.2), lambda x: np.where(x > 0, x, 0.2 * x),
                       (-3, 3)),
    "elu": (gf.elu, lambda x: np.where(x > 0, x, np.expm1(x)), (-3, 3)),
    "elu_0.5": (lambda t: gf.elu(t, 0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x)),
                (-3, 3)),
    "gelu": (gf.gelu, _gelu, (-3, 3)),
    "gelu_tanh": (lambda t: gf.gelu(t, approximate="tanh"),
                  lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi)
                                                   * (x + 0.044715 * x ** 3))), (-3, 3)),
    "softplus": (gf.softplus, lambda x: np.logaddexp(0, x), (-3, 3)),
    "softplus_beta2": (lambda t: gf.softplus(t, beta=2.0),
                       lambda x: np.logaddexp(0, 2 * x) / 2, (-3, 3)),
    "clamp": (lambda t: gf.clamp(t, -1.0, 0.5), lambda x: np.clip(x, -1.0, 0.5), (-3, 3)),
    "clamp_min": (lambda t: t.clamp(min=0.2), lambda x: np.maximum(x, 0.2), (-3, 3)),
    "clamp_max": (lambda t: t.clamp(max=0.2), lambda x: np.minimum(x, 0.2), (-3, 3)),
    "square": (lambda t: t ** 2, np.square, (-3, 3)),
    "pow_half": (lambda t: t ** 0.5, np.sqrt, (0.1, 3)),
    "rpow": (lambda t: 2.0 ** t, lambda x: 2.0 ** x, (-3, 3)),
    "rsub": (lambda t: 1.5 - t, lambda x: 1.5 - x, (-3, 3)),
    "rdiv": (lambda t: 1.5 / t, lambda x: 1.5 / x, (0.2, 3)),
    "radd": (lambda t: 2 + t, lambda x: 2 + x, (-3, 3)),
    "rmul": (lambda t: 2.5 * t, lambda x: 2.5 * x, (-3, 3)),
    "sub_scalar": (lambda t: t - 1, lambda x: x - 1, (-3, 3)),
    "div_scalar": (lambda t: t / 4, lambda x: x / 4, (-3, 3)),
}

# Points where the function is not differentiable; gradcheck inputs keep away from them.
KINKS = {"abs": [0.0], "relu": [0.0], "leaky_relu": [0.0], "leaky_relu_0.2": [0.0],
         "elu": [0.0], "elu_0.5": [0.0], "clamp": [-1.0, 0.5], "clamp_min": [0.2],
         "clamp_max": [0.2]}


def _grad_input(name: str, shape=(2, 3), seed: int = 0) -> np.ndarray:
    lo, hi = UNARY[name][2]
    x = np.random.default_rng(seed).uniform(lo, hi, size=shape)
    for k in KINKS.get(name, []):
        x = np.where(np.abs(x - k) < 0.05, k + 0.1, x)
    return x


@pytest.mark.parametrize("name", sorted(UNARY))
@given(data=st.data())
def test_unary_forward_matches_numpy(name, data):
    fn, ref, (lo, hi) = UNARY[name]
    dtype = data.draw(st.sampled_from((np.float64, np.float32)))
    a = data.draw(shaped_arrays(shapes(max_dims=3), dtype, lo, hi))
    out = fn(to_gf(a))
    expected = ref(a.astype(np.float64))
    assert out.shape == a.shape and out.dtype is gf.tensor(a).dtype
    tol = 1e-12 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(out.numpy(), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_backward_gradcheck(name):
    fn = UNARY[name][0]
    x = to_gf(_grad_input(name), requires_grad=True)
    assert gradcheck(fn, (x,))
    xt = to_gf(_grad_input(name, (3, 2), seed=1).T, requires_grad=True)  # non-contiguous
    assert gradcheck(fn, (xt,))


@pytest.mark.parametrize("name", ["exp", "log", "sin", "tanh", "sigmoid", "gelu", "softplus",
                                  "rsqrt", "rdiv", "pow_half", "elu"])
def test_unary_second_derivatives(name):
    x = to_gf(_grad_input(name, (3,)), requires_grad=True)
    assert gradgradcheck(UNARY[name][0], (x,))


def test_activations_at_extreme_inputs_stay_finite():
    x = gf.tensor([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=gf.float64)
    np.testing.assert_allclose(x.sigmoid().numpy(), [0.0, _sigmoid(-50.0), 0.5, 1.0, 1.0])
    np.testing.assert_allclose(gf.softplus(x).numpy(), [0.0, np.logaddexp(0, -50.0),
                                                        math.log(2), 50.0, 1000.0])
    assert np.isfinite(gf.elu(x).numpy()).all() and np.isfinite(x.tanh().numpy()).all()
    w = gf.tensor([-1000.0, 1000.0], dtype=gf.float64, requires_grad=True)
    (w.sigmoid().sum() + gf.softplus(w).sum()).backward()
    assert np.isfinite(w.grad.numpy()).all()


def test_unary_ops_on_integer_tensors():
    i = gf.tensor([-2, 0, 3])
    assert gf.exp(i).dtype is gf.float32  # float-only ops compute in the default float dtype
    assert gf.abs(i).tolist() == [2, 0, 3] and gf.abs(i).dtype is gf.int64
    assert gf.neg(i).tolist() == [2, 0, -3] and gf.relu(i).tolist() == [0, 0, 3]
    assert i.clamp(-1, 1).tolist() == [-1, 0, 1] and i.clamp(-1, 1).dtype is gf.int64
    assert i.clamp(0.5).dtype is gf.float32


@given(a=shaped_arrays(shapes(max_dims=3), np.float64, -5, 5))
def test_trunc_rounds_towards_zero(a):
    x = to_gf(a, requires_grad=True)
    y = gf.trunc(x)
    np.testing.assert_array_equal(y.detach().numpy(), np.trunc(a))
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros_like(a))  # piecewise constant


def test_trunc_keeps_integers_and_works_in_place():
    assert gf.tensor([-2, 3]).trunc().tolist() == [-2, 3]
    assert gf.trunc(gf.tensor([-2, 3])).dtype is gf.int64
    assert gf.trunc(gf.tensor([True, False])).dtype is gf.bool
    x = gf.tensor([-1.7, -0.5, 0.5, 2.9, float("inf"), float("nan")])
    x.trunc_()
    np.testing.assert_array_equal(x.numpy(), np.float32([-1, -0.0, 0, 2, np.inf, np.nan]))
    torch = pytest.importorskip("torch")
    v = [-1.7, -0.5, 0.5, 2.9]
    np.testing.assert_array_equal(gf.tensor(v).trunc().numpy(), torch.tensor(v).trunc().numpy())


# ---------------------------------------------------------------- binary
BINARY = {
    "add": (lambda a, b: a + b, np.add, (-3, 3), (-3, 3)),
    "sub": (lambda a, b: a - b, np.subtract, (-3, 3), (-3, 3)),
    "mul": (lambda a, b: a * b, np.multiply, (-3, 3), (-3, 3)),
    "div": (lambda a, b: a / b, np.divide, (-3, 3), (0.5, 3)),
    "pow": (lambda a, b: a ** b, np.power, (0.5, 3), (-2, 2)),
    "maximum": (gf.maximum, np.maximum, (-3, 3), (-3, 3)),
    "minimum": (gf.minimum, np.minimum, (-3, 3), (-3, 3)),
    "add_fn_alpha": (lambda a, b: gf.add(a, b, alpha=2), lambda a, b: a + 2 * b, (-3, 3),
                     (-3, 3)),
    "sub_fn_alpha": (lambda a, b: gf.sub(a, b, alpha=0.5), lambda a, b: a - 0.5 * b, (-3, 3),
                     (-3, 3)),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@given(data=st.data())
def test_binary_forward_matches_numpy_with_broadcasting(name, data):
    fn, ref, (la, ha), (lb, hb) = BINARY[name]
    sa, sb = data.draw(broadcastable_pairs(max_dims=3))
    a = data.draw(arrays(sa, np.float64, la, ha))
    b = data.draw(arrays(sb, np.float64, lb, hb))
    out = fn(to_gf(a), to_gf(b))
    expected = ref(a, b)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-12, atol=1e-12)


@given(sa=shapes(max_dims=3, max_side=3), sb=shapes(max_dims=3, max_side=3))
def test_binary_accepts_exactly_numpys_broadcastable_shapes(sa, sb):
    """Any two shapes (most do not broadcast): a + b has NumPy's broadcast shape, or raises
    the ValueError that names the op and both shapes exactly when NumPy refuses them."""
    try:
        expected = np.broadcast_shapes(sa, sb)
    except ValueError:
        with pytest.raises(ValueError, match=r"add: shapes .* cannot be broadcast together"):
            gf.zeros(*sa) + gf.zeros(*sb)
        return
    assert (gf.zeros(*sa) + gf.zeros(*sb)).shape == expected


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("sa,sb", [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1), (1, 3)),
                                   ((), (2,)), ((3, 1, 2), (2,))])
def test_binary_backward_gradcheck(name, sa, sb):
    fn, _, (la, ha), (lb, hb) = BINARY[name]
    rng = np.random.default_rng(0)
    a = rng.uniform(la, ha, sa)
    b = rng.uniform(lb, hb, sb)
    if name in ("maximum", "minimum"):
        b = np.where(np.abs(a - b) < 0.1, b + 0.3, b) if sa == sb else b + 0.05
    assert gradcheck(fn, (to_gf(a, True), to_gf(b, True)))


@pytest.mark.parametrize("name", ["mul", "div", "pow", "sub"])
def test_binary_second_derivatives(name):
    fn, _, (la, ha), (lb, hb) = BINARY[name]
    rng = np.random.default_rng(1)
    a, b = to_gf(rng.uniform(la, ha, (2, 2)), True), to_gf(rng.uniform(lb, hb, (2,)), True)
    assert gradgradcheck(fn, (a, b))


def test_maximum_splits_the_gradient_at_ties():
    a = gf.tensor([1.0, 2.0, 3.0], dtype=gf.float64, requires_grad=True)
    b = gf.tensor([1.0, 5.0, 0.0], dtype=gf.float64, requires_grad=True)
    gf.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [0.5, 0.0, 1.0] and b.grad.tolist() == [0.5, 1.0, 0.0]


def test_pow_gradient_at_zero_base():
    x = gf.tensor([0.0, 2.0], dtype=gf.float64, requires_grad=True)
    e = gf.tensor([2.0, 3.0], dtype=gf.float64, requires_grad=True)
    (x ** e).sum().backward()
    assert x.grad.tolist() == [0.0, 12.0]
    np.testing.assert_allclose(e.grad.numpy(), [0.0, 8 * math.log(2.0)])
    z = gf.tensor([0.0], dtype=gf.float64, requires_grad=True)
    (z ** 0).sum().backward()
    assert z.grad.tolist() == [0.0]


@given(array_pairs(np.float64, max_dims=3))
def test_scalar_operands_match_numpy(pair):
    a, _ = pair
    t = to_gf(a)
    for got, expected in [(t + 2, a + 2), (2 - t, 2 - a), (t * -1.5, a * -1.5),
                          (3 / (t * t + 1), 3 / (a * a + 1)), (t ** 2, a ** 2),
                          (2 ** t, 2.0 ** a), (t - True, a - 1)]:
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_integer_arithmetic_and_division():
    i, j = gf.tensor([7, -7, 4]), gf.tensor([2, 2, -3])
    assert (i + j).tolist() == [9, -5, 1] and (i * j).dtype is gf.int64
    np.testing.assert_allclose((i / j).numpy(), [3.5, -3.5, -4 / 3], rtol=1e-6)
    assert (i // j).tolist() == [3, -4, -2] and (i % j).tolist() == [1, 1, -2]
    assert (i ** 2).tolist() == [49, 49, 16]


def test_remainder_gradient_is_one():
    x = gf.tensor([5.5, -1.5], dtype=gf.float64, requires_grad=True)
    (x % 2).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


# ---------------------------------------------------------------- where, comparisons, logic
@given(data=st.data())
def test_where_broadcasts_three_ways(data):
    sc, sa, sb = data.draw(st.sampled_from([((2, 3), (2, 3), (2, 3)), ((2, 1), (3,), (2, 3)),
                                            ((3,), (2, 1), ()), ((0, 3), (3,), (1,))]))
    c = data.draw(arrays(sc, np.bool_))
    a, b = data.draw(arrays(sa, np.float64)), data.draw(arrays(sb, np.float64))
    out = gf.where(to_gf(c), to_gf(a), to_gf(b))
    np.testing.assert_array_equal(out.numpy(), np.where(c, a, b))
    np.testing.assert_array_equal(gf.where(to_gf(c), to_gf(a), 0.5).numpy(), np.where(c, a, 0.5))


def test_where_backward():
    c = gf.tensor([[True, False, True]])
    a = gf.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=gf.float64, requires_grad=True)
    b = gf.tensor([7.0, 8.0, 9.0], dtype=gf.float64, requires_grad=True)
    assert gradcheck(lambda x, y: gf.where(c, x, y) * x, (a, b))
    gf.where(c, a, b).sum().backward()
    assert a.grad.tolist() == [[1, 0, 1], [1, 0, 1]] and b.grad.tolist() == [0.0, 2.0, 0.0]


def test_where_and_masked_fill_need_a_bool_condition():
    a, b = gf.ones(2), gf.zeros(2)
    with pytest.raises(RuntimeError, match="where: expected condition to be a bool tensor, but "
                                           "got a tensor with dtype gradflow.float32"):
        gf.where(gf.tensor([1.0, 0.0]), a, b)
    with pytest.raises(RuntimeError, match="where: expected condition to be a bool tensor"):
        gf.where(gf.tensor([1, 0]), a, b)
    with pytest.raises(TypeError, match="where: condition must be a bool Tensor, got list"):
        gf.where([True, False], a, b)
    with pytest.raises(RuntimeError, match="masked_fill: only supports bool masks, but got "
                                           "gradflow.float32"):
        a.masked_fill(gf.tensor([1.0, 0.0]), 0.0)
    with pytest.raises(RuntimeError, match="masked_fill: only supports bool masks"):
        a.masked_fill_(gf.tensor([1, 0]), 0.0)


COMPARE = {"eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
           "gt": np.greater, "ge": np.greater_equal}
LOGICAL = {"logical_and": np.logical_and, "logical_or": np.logical_or,
           "logical_xor": np.logical_xor}


@pytest.mark.parametrize("name", sorted(COMPARE))
@given(pair=array_pairs(np.int64, low=-2, high=2, max_dims=3))
def test_comparisons_match_numpy(name, pair):
    a, b = pair
    ref = COMPARE[name]
    out = getattr(gf, name)(to_gf(a), to_gf(b))
    assert out.dtype is gf.bool and not out.requires_grad
    np.testing.assert_array_equal(out.numpy(), ref(a, b))
    np.testing.assert_array_equal(getattr(gf, name)(to_gf(a), 1).numpy(), ref(a, 1))
    np.testing.assert_array_equal(getattr(gf, name)(1, to_gf(b)).numpy(), ref(1, b))


def test_comparison_operators():
    t = gf.tensor([1.0, 2.0, 3.0], requires_grad=True)
    assert (t == 2).tolist() == [False, True, False] and (t != 2).tolist() == [True, False, True]
    assert (t < 2).tolist() == [True, False, False] and (2 < t).tolist() == [False, False, True]
    assert (t >= 2).tolist() == [False, True, True] and (t <= gf.tensor([3, 1, 3])).tolist() == [
        True, False, True]
    assert gf.equal(t.detach(), gf.tensor([1.0, 2.0, 3.0]))
    assert gf.allclose(t.detach(), t.detach() + 1e-9)


@pytest.mark.parametrize("name", sorted(LOGICAL))
@given(pair=array_pairs(np.bool_, max_dims=3))
def test_logical_ops_match_numpy(name, pair):
    a, b = pair
    np.testing.assert_array_equal(getattr(gf, name)(to_gf(a), to_gf(b)).numpy(),
                                  LOGICAL[name](a, b))
    np.testing.assert_array_equal(gf.logical_not(to_gf(a)).numpy(), np.logical_not(a))


def test_logical_operators_on_bool_tensors():
    a, b = gf.tensor([True, True, False]), gf.tensor([True, False, False])
    assert (a & b).tolist() == [True, False, False] and (a | b).tolist() == [True, True, False]
    assert (a ^ b).tolist() == [False, True, False] and (~a).tolist() == [False, False, True]


def test_isnan_isinf_and_nan_propagation():
    t = gf.tensor([1.0, float("nan"), float("inf")])
    assert gf.isnan(t).tolist() == [False, True, False]
    assert gf.isinf(t).tolist() == [False, False, True]
    assert math.isnan(gf.maximum(t, gf.zeros(3))[1].item())
    assert math.isnan(t.relu()[1].item())


# ---------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("name,fn", [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b), ("pow", lambda a, b: a ** b), ("maximum", gf.maximum),
    ("minimum", gf.minimum), ("eq", lambda a, b: a == b), ("lt", lambda a, b: a < b),
    ("logical_and", gf.logical_and),
])
def test_binary_shape_mismatch_names_op_and_shapes(name, fn):
    with pytest.raises(ValueError, match=rf"{name}: shapes \(2, 3\) and \(4,\) cannot be "
                                         "broadcast together"):
        fn(gf.ones(2, 3), gf.ones(4))


def test_where_and_masked_fill_bad_shapes():
    with pytest.raises(ValueError, match=r"where: shapes \(5,\) and \(2, 3\) and \(2, 3\)"):
        gf.where(gf.ones(5, dtype=gf.bool), gf.ones(2, 3), gf.ones(2, 3))
    with pytest.raises(ValueError, match=r"masked_fill: shapes \(2, 3\) and \(4,\)"):
        gf.ones(2, 3).masked_fill(gf.ones(4, dtype=gf.bool), 0.0)
    with pytest.raises(ValueError, match=r"masked_fill: mask of shape \(2, 3\) cannot be "
                                         r"broadcast to the input's shape \(3,\)"):
        gf.ones(3).masked_fill(gf.ones(2, 3, dtype=gf.bool), 0.0)


def test_bad_operand_types():
    with pytest.raises(TypeError, match="add: unsupported operand type str"):
        gf.ones(2) + "x"
    with pytest.raises(TypeError, match="mul: unsupported operand type list"):
        gf.mul(gf.ones(2), [1, 2])
    with pytest.raises(TypeError, match="exp: argument .input. must be a Tensor, not float"):
        gf.exp(1.0)
    with pytest.raises(ValueError, match="clamp: at least one of 'min' or 'max'"):
        gf.ones(2).clamp()
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh'"):
        gf.gelu(gf.ones(2), approximate="erf")


# ---------------------------------------------------------------- in place
INPLACE = [
    ("add_", lambda t, o: t.add_(o), np.add), ("sub_", lambda t, o: t.sub_(o), np.subtract),
    ("mul_", lambda t, o: t.mul_(o), np.multiply), ("div_", lambda t, o: t.div_(o), np.divide),
    ("add_alpha", lambda t, o: t.add_(o, alpha=2), lambda a, b: a + 2 * b),
    ("copy_", lambda t, o: t.copy_(o), lambda a, b: np.broadcast_to(b, a.shape)),
]


@pytest.mark.parametrize("name,fn,ref", INPLACE)
@given(data=st.data())
def test_in_place_binary_matches_numpy(name, fn, ref, data):
    shape = data.draw(shapes(max_dims=3))
    a = data.draw(arrays(shape, np.float64, layout="contiguous"))
    sb = data.draw(st.sampled_from([shape, shape[1:], (1,) * len(shape)]))
    b = data.draw(arrays(sb, np.float64, 0.5, 3))
    t = gf.tensor(a)
    version = t._version_counter
    out = fn(t, to_gf(b))
    assert out is t and t._version_counter == version + 1
    np.testing.assert_allclose(t.numpy(), ref(a, b), rtol=1e-12)


def test_in_place_scalar_and_unary_ops():
    t = gf.tensor([-2.0, 0.5, 3.0])
    t.add_(1).mul_(2).sub_(0.5).div_(2)
    np.testing.assert_allclose(t.numpy(), [-1.25, 1.25, 3.75])
    np.testing.assert_allclose(t.clone().clamp_(-1, 1).numpy(), [-1.0, 1.0, 1.0])
    np.testing.assert_allclose(t.clone().relu_().numpy(), [0.0, 1.25, 3.75])
    np.testing.assert_allclose(t.clone().neg_().numpy(), [1.25, -1.25, -3.75])
    np.testing.assert_allclose(t.clone().exp_().numpy(), np.exp([-1.25, 1.25, 3.75]), rtol=1e-6)
    np.testing.assert_allclose(t.clone().tanh_().numpy(), np.tanh([-1.25, 1.25, 3.75]), rtol=1e-6)
    np.testing.assert_allclose(t.clone().sigmoid_().numpy(), _sigmoid(np.array([-1.25, 1.25,
                                                                                3.75])),
                               rtol=1e-6)
    np.testing.assert_allclose(t.clone().pow_(2).numpy(), [1.5625, 1.5625, 14.0625])
    assert t.clone().zero_().tolist() == [0.0] * 3 and t.clone().fill_(7).tolist() == [7.0] * 3
    assert t.clone().masked_fill_(t > 0, 0.0).tolist() == [-1.25, 0.0, 0.0]
    np.testing.assert_allclose(gf.tensor([4.0]).sqrt_().numpy(), [2.0])


def test_in_place_writes_through_views():
    base = gf.zeros(2, 3)
    base[1].add_(5)
    base[:, 0].fill_(1)
    assert base.tolist() == [[1, 0, 0], [1, 5, 5]]
    assert base._version_counter == 2


def test_in_place_bad_inputs():
    with pytest.raises(RuntimeError, match=r"add_: output with shape \(2,\) doesn't match the "
                                           r"broadcast shape"):
        gf.ones(2).add_(gf.ones(3))
    with pytest.raises(RuntimeError, match="add_: result type Float can't be cast to "):
        gf.ones(2, dtype=gf.int64).add_(1.5)
    with pytest.raises(RuntimeError, match="div_: result type Float can't be cast"):
        gf.ones(2, dtype=gf.int64).div_(2)
    with pytest.raises(RuntimeError, match=r"copy_: source of shape \(3,\) cannot be broadcast "
                                           r"to \(2,\)"):
        gf.ones(2).copy_(gf.ones(3))
    with pytest.raises(TypeError, match="copy_: src must be a Tensor"):
        gf.ones(2).copy_([1.0, 2.0])
