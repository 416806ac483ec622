"""gradflow.autograd.functional against torch.autograd.functional (when installed) on the same
functions: values, result structure (Tensor or tuples), create_graph (the results are
differentiable again, with the same second derivatives), strict and the error messages;
against hand-derived derivatives always."""

import numpy as np
import pytest
from hypothesis import given, settings
from strategies import array_pairs, to_gf

import gradflow as gf
from gradflow.autograd import functional as F

RNG = np.random.default_rng(0)
X, Y, V3, V23 = (RNG.standard_normal(s) for s in [(3,), (2, 3), (3,), (2, 3)])


def _lib(name):
    if name == "torch":
        return pytest.importorskip("torch")
    return gf


def _t(lib, a, requires_grad=False):
    return lib.tensor(a, dtype=lib.float64, requires_grad=requires_grad)


def _np(x):
    """Nested tuples of tensors as nested tuples of arrays (the structure is kept; PyTorch's
    forward-mode jacobian gives lists where its reverse mode gives tuples: gradflow gives
    tuples in both)."""
    if isinstance(x, (tuple, list)):
        return tuple(_np(e) for e in x)
    return x.detach().numpy()


def _assert_same(ours, theirs, rtol=1e-12):
    assert isinstance(ours, tuple) == isinstance(theirs, tuple)
    if isinstance(theirs, tuple):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            _assert_same(a, b, rtol)
        return
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=1e-13)


# the functions, written once for both libraries
def single(x):
    return x.exp() * x.sin()


def pair(x, y):
    """Two inputs (3,) and (2, 3) to two outputs (2, 3) and (3,)."""
    return (x * y).tanh(), (y ** 2).sum(0) * x


def scalar(x, y):
    return (x.exp() * y).sum() + (y.tanh() ** 2).sum() * x.sin().sum()


def scalar_of_x(x):
    return (x ** 3).sum() * x.cos().sum()


def _args(lib, which, requires_grad=False):
    if which == "single":
        return single, _t(lib, X, requires_grad)
    if which == "scalar_of_x":
        return scalar_of_x, _t(lib, X, requires_grad)
    return {"pair": pair, "scalar": scalar}[which], (_t(lib, X, requires_grad),
                                                     _t(lib, Y, requires_grad))


def _v(lib, which, side):
    """v shaped like the outputs (side="out") or the inputs (side="in") of function `which`."""
    shapes = {("single", "out"): V3, ("single", "in"): V3, ("scalar_of_x", "in"): V3,
              ("pair", "out"): (V23, V3), ("pair", "in"): (V3, V23),
              ("scalar", "in"): (V3, V23), ("scalar", "out"): np.array(1.5)}
    v = shapes[(which, side)]
    return tuple(_t(lib, a) for a in v) if isinstance(v, tuple) else _t(lib, v)


CALLS = [
    ("vjp", "single", "out"), ("vjp", "pair", "out"), ("vjp", "scalar", "out"),
    ("vjp", "scalar", None), ("jvp", "single", "in"), ("jvp", "pair", "in"),
    ("jvp", "scalar", "in"), ("vhp", "scalar", "in"), ("vhp", "scalar_of_x", "in"),
    ("hvp", "scalar", "in"), ("hvp", "scalar_of_x", "in"),
]


def _call(lib, name, which, side, create_graph=False, requires_grad=False, strict=False):
    fn = getattr(lib.autograd.functional, name)
    func, inputs = _args(lib, which, requires_grad)
    v = None if side is None else _v(lib, which, side)
    return fn(func, inputs, v, create_graph=create_graph, strict=strict), inputs


@pytest.mark.parametrize("name,which,side", CALLS, ids=["-".join(map(str, c)) for c in CALLS])
@pytest.mark.parametrize("strict", [False, True])
def test_products_match_torch(name, which, side, strict):
    torch = pytest.importorskip("torch")
    (out, res), _ = _call(gf, name, which, side, strict=strict)
    (t_out, t_res), _ = _call(torch, name, which, side, strict=strict)
    _assert_same(_np(out), _np(t_out))
    _assert_same(_np(res), _np(t_res))
    for r in res if isinstance(res, tuple) else (res,):
        assert not r.requires_grad and r.grad_fn is None


def _grad_sum(res, inputs):
    """d(sum of every result) / d(inputs), as arrays."""
    flat = [r for r in (res if isinstance(res, tuple) else (res,))]
    total = sum(r.sum() for r in flat)
    ins = inputs if isinstance(inputs, tuple) else (inputs,)
    total.backward()
    return tuple(i.grad.numpy() for i in ins)


@pytest.mark.parametrize("name,which,side", CALLS, ids=["-".join(map(str, c)) for c in CALLS])
def test_create_graph_gives_torchs_next_derivative(name, which, side):
    torch = pytest.importorskip("torch")
    (_, res), inputs = _call(gf, name, which, side, create_graph=True, requires_grad=True)
    (_, t_res), t_inputs = _call(torch, name, which, side, create_graph=True,
                                 requires_grad=True)
    _assert_same(_np(res), _np(t_res))
    _assert_same(_grad_sum(res, inputs), _grad_sum(t_res, t_inputs), rtol=1e-11)


JACOBIANS = [("single", False), ("pair", False), ("scalar", False), ("single", True),
             ("scalar", True)]  # tuple_out: func's output wrapped in a one-tuple


@pytest.mark.parametrize("which,tuple_out", JACOBIANS, ids=[str(j) for j in JACOBIANS])
@pytest.mark.parametrize("mode", ["reverse", "reverse-vectorize", "forward-vectorize",
                                  "create_graph", "strict"])
def test_jacobian_matches_torch(which, tuple_out, mode):
    torch = pytest.importorskip("torch")
    kw = {"reverse": {}, "reverse-vectorize": {"vectorize": True},
          "forward-vectorize": {"vectorize": True, "strategy": "forward-mode"},
          "create_graph": {"create_graph": True}, "strict": {"strict": True}}[mode]
    results = []
    for lib in (gf, torch):
        func, inputs = _args(lib, which, requires_grad=mode == "create_graph")
        f = (lambda *a: (func(*a),)) if tuple_out else func
        results.append((lib.autograd.functional.jacobian(f, inputs, **kw), inputs))
    (ours, inputs), (theirs, t_inputs) = results
    _assert_same(_np(ours), _np(theirs))
    if mode == "create_graph":
        _assert_same(_grad_sum(_flatten(ours), inputs), _grad_sum(_flatten(theirs), t_inputs),
                     rtol=1e-11)


def _flatten(x):
    if isinstance(x, tuple):
        return tuple(e for item in x for e in _flatten(item))
    return (x,)


@pytest.mark.parametrize("which", ["scalar", "scalar_of_x"])
@pytest.mark.parametrize("mode", ["reverse", "vectorize", "forward-vectorize", "create_graph",
                                  "strict"])
def test_hessian_matches_torch(which, mode):
    torch = pytest.importorskip("torch")
    kw = {"reverse": {}, "vectorize": {"vectorize": True},
          "forward-vectorize": {"vectorize": True, "outer_jacobian_strategy": "forward-mode"},
          "create_graph": {"create_graph": True}, "strict": {"strict": True}}[mode]
    results = []
    for lib in (gf, torch):
        func, inputs = _args(lib, which, requires_grad=mode == "create_graph")
        results.append((lib.autograd.functional.hessian(func, inputs, **kw), inputs))
    (ours, inputs), (theirs, t_inputs) = results
    _assert_same(_np(ours), _np(theirs))
    if mode == "create_graph":
        _assert_same(_grad_sum(_flatten(ours), inputs), _grad_sum(_flatten(theirs), t_inputs),
                     rtol=1e-11)


def test_hand_derived_values():
    """No torch needed: f(x) = sum(x^3) has gradient 3x^2 and Hessian diag(6x)."""
    x = gf.tensor([1.0, -2.0, 0.5], dtype=gf.float64)
    v = gf.tensor([1.0, 2.0, 3.0], dtype=gf.float64)
    f = lambda t: (t ** 3).sum()  # noqa: E731
    out, g = F.vjp(f, x)
    assert out.item() == -6.875 and g.tolist() == [3.0, 12.0, 0.75]
    np.testing.assert_allclose(F.hessian(f, x).numpy(), np.diag([6.0, -12.0, 3.0]))
    for fn in (F.hvp, F.vhp):
        assert fn(f, x, v)[1].tolist() == [6.0, -24.0, 9.0]
    # J of the elementwise square is diag(2x); J v = 2 x v
    assert F.jvp(lambda t: t * t, x, v)[1].tolist() == [2.0, -8.0, 3.0]
    np.testing.assert_allclose(F.jacobian(lambda t: t * t, x).numpy(), np.diag([2.0, -4.0, 1.0]))
    np.testing.assert_allclose(F.jacobian(lambda t: t * t, x, strategy="forward-mode").numpy(),
                               np.diag([2.0, -4.0, 1.0]))
    # a one-element input: v may be None
    s = gf.tensor(2.0, dtype=gf.float64)
    assert F.jvp(lambda t: t ** 3, s)[1].item() == 12.0
    assert F.hvp(lambda t: t ** 3, s)[1].item() == 12.0
    assert x.grad is None and not x.requires_grad  # the caller's tensor is left alone


def test_independent_inputs_give_zeros_or_strict_errors():
    x, y = gf.ones(2, dtype=gf.float64), gf.ones(3, dtype=gf.float64)
    uses_x = lambda a, b: a * 2  # noqa: E731
    out, (gx, gy) = F.vjp(uses_x, (x, y), gf.ones(2, dtype=gf.float64))
    assert gx.tolist() == [2.0, 2.0] and gy.tolist() == [0.0, 0.0, 0.0]
    jx, jy = F.jacobian(uses_x, (x, y))
    assert jx.shape == (2, 2) and jy.shape == (2, 3) and not jy.numpy().any()
    with pytest.raises(RuntimeError, match="vjp: The output of the user-provided function is "
                                           "independent of input 1"):
        F.vjp(uses_x, (x, y), gf.ones(2, dtype=gf.float64), strict=True)
    with pytest.raises(RuntimeError, match="Output 0 of the user-provided function is "
                                           "independent of input 1"):
        F.jacobian(uses_x, (x, y), strict=True)
    constant = lambda a: gf.ones(2)  # noqa: E731
    assert not F.jacobian(constant, x).numpy().any()
    with pytest.raises(RuntimeError, match="does not require gradients"):
        F.jvp(constant, x, x, strict=True)
    linear = lambda a: (a * 3).sum()  # noqa: E731
    assert not F.hessian(linear, x).numpy().any()
    assert not F.hvp(linear, x, x)[1].numpy().any()
    with pytest.raises(RuntimeError, match="jacobian .* is independent"):
        F.hessian(linear, x, strict=True)
    with pytest.raises(RuntimeError, match="hvp: The jacobian .* is independent"):
        F.hvp(linear, x, x, strict=True)


def test_strict_errors_match_torch():
    torch = pytest.importorskip("torch")
    cases = [
        ("vjp", lambda lib: (lambda a, b: a * 2, (lib.ones(2), lib.ones(3)), lib.ones(2))),
        ("jvp", lambda lib: (lambda a: lib.ones(2), lib.ones(2), lib.ones(2))),
        ("hvp", lambda lib: (lambda a: (a * 3).sum(), lib.ones(2), lib.ones(2))),
        ("vhp", lambda lib: (lambda a: (a * 3).sum(), lib.ones(2), lib.ones(2))),
    ]
    for name, make in cases:
        for lib in (gf, torch):
            func, inputs, v = make(lib)
            with pytest.raises(RuntimeError, match="strict mode"):
                getattr(lib.autograd.functional, name)(func, inputs, v, strict=True)


def test_bad_arguments():
    x = gf.ones(3, dtype=gf.float64)
    with pytest.raises(RuntimeError, match="vjp: The vector v can only be None if the "
                                           "user-provided function returns a single Tensor"):
        F.vjp(lambda t: t * 2, x)
    with pytest.raises(RuntimeError, match="jvp: The vector v can only be None if the input"):
        F.jvp(lambda t: t * 2, x)
    with pytest.raises(RuntimeError, match=r"vjp: v has invalid size: should be \(3,\) but "
                                           r"got \(2,\)"):
        F.vjp(lambda t: t * 2, x, gf.ones(2))
    with pytest.raises(RuntimeError, match="Entry 1 in v has invalid size"):
        F.jvp(lambda a, b: a * b, (x, x), (x, gf.ones(2)))
    with pytest.raises(RuntimeError, match="v is a tuple of invalid length: should be 2"):
        F.jvp(lambda a, b: a * b, (x, x), (x,))
    with pytest.raises(TypeError, match="inputs given to jacobian must be either a Tensor or "
                                        "a tuple of Tensors but the given inputs has type list"):
        F.jacobian(lambda t: t, [x])
    with pytest.raises(TypeError, match="outputs of the user-provided function given to vjp"):
        F.vjp(lambda t: [t], x, x)
    with pytest.raises(RuntimeError, match="hessian: The Tensor returned by the function "
                                           "given to hessian should contain a single element"):
        F.hessian(lambda t: t * 2, x)
    with pytest.raises(RuntimeError, match="hvp: The function given to hvp should return a "
                                           "single Tensor"):
        F.hvp(lambda t: (t.sum(), t.sum()), x, x)
    with pytest.raises(ValueError, match="Expected strategy to be either"):
        F.jacobian(lambda t: t, x, strategy="sideways")
    with pytest.raises(RuntimeError, match="`strict=True` and `vectorized=True`"):
        F.jacobian(lambda t: t, x, strict=True, vectorize=True)
    with pytest.raises(RuntimeError, match="not supported with strategy=\"forward-mode\""):
        F.jacobian(lambda t: t, x, create_graph=True, strategy="forward-mode")
    for fn in (F.jacobian, F.hessian):
        with pytest.raises(TypeError, match=f"{fn.__name__}: input 0 must be a floating-point "
                                            "Tensor"):
            fn(lambda t: t.sum(), gf.tensor([1, 2]))
    with pytest.raises(TypeError, match="func must be callable"):
        F.vjp(3, x, x)


def test_zero_size_and_grad_mode():
    empty = gf.zeros(0, dtype=gf.float64)
    x = gf.ones(2, dtype=gf.float64)
    assert F.jacobian(lambda t: t * 2, empty).shape == (0, 0)
    assert F.jacobian(lambda a, b: a.sum() * b, (empty, x))[0].shape == (2, 0)
    assert F.jacobian(lambda t: t * 2, empty, strategy="forward-mode").shape == (0, 0)
    with gf.no_grad():  # works under no_grad, as PyTorch's
        assert F.jacobian(lambda t: t * t, x).tolist() == [[2.0, 0.0], [0.0, 2.0]]
        assert F.vjp(lambda t: t * t, x, x)[1].tolist() == [2.0, 2.0]
    assert gf.is_grad_enabled()


def _all_products(lib, wrap, a, b):
    """jacobian (both strategies), vjp and jvp of a two-output function, hessian, hvp and vhp
    of a scalar one, at (a, b)."""
    fn = lib.autograd.functional
    f = lambda x, y: ((x * y).tanh() + x.exp(), (y * y).sum())  # noqa: E731
    s = lambda x, y: (x * y).sin().sum() + (x * x).sum() * y.sum()  # noqa: E731
    x, y = wrap(a), wrap(b)
    v_in = (wrap(np.full(a.shape, 0.5)), wrap(np.asarray(np.linspace(-1, 1, b.size)
                                                         .reshape(b.shape))))
    v_out = (wrap(np.full(np.broadcast_shapes(a.shape, b.shape), 0.25)), wrap(np.array(2.0)))
    return (fn.jacobian(f, (x, y)),
            fn.jacobian(f, (x, y), vectorize=True, strategy="forward-mode"),
            fn.vjp(f, (x, y), v_out)[1], fn.jvp(f, (x, y), v_in)[1],
            fn.hessian(s, (x, y)), fn.hvp(s, (x, y), v_in)[1], fn.vhp(s, (x, y), v_in)[1])


@settings(max_examples=25, deadline=None)
@given(pair=array_pairs(max_dims=3, max_side=3, low=-2.0, high=2.0))
def test_property_shapes_match_torch(pair):
    """Broadcast pairs of any shape (size-1 and zero-size dims, non-contiguous inputs)."""
    a, b = pair
    ours = _np(_all_products(gf, to_gf, a, b))
    out = np.broadcast_shapes(a.shape, b.shape)
    jac = ours[0]
    assert [j.shape for j in jac[0]] == [out + a.shape, out + b.shape]
    assert [h.shape for row in ours[4] for h in row] == [
        a.shape + a.shape, a.shape + b.shape, b.shape + a.shape, b.shape + b.shape]
    if a.size and b.size:  # PyTorch's reverse-mode jacobian fails on zero-size outputs
        torch = pytest.importorskip("torch")
        theirs = _np(_all_products(torch, lambda z: torch.tensor(z.copy()), a, b))
        _assert_same(ours, theirs, rtol=1e-11)
