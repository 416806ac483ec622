"""Autograd: the graph, the engine, grad modes, hooks, custom Functions, higher order, checks."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
from gradflow.autograd import Function, GradcheckError, gradcheck, gradgradcheck


def leaf(values, dtype=gf.float64):
    return gf.tensor(values, dtype=dtype, requires_grad=True)


# ---------------------------------------------------------------- requires_grad and .grad
def test_requires_grad_propagates():
    a, b = leaf([1.0, 2.0]), gf.tensor([3.0, 4.0], dtype=gf.float64)
    assert (a * b).requires_grad and not (b * b).requires_grad
    assert (a * b).grad_fn is not None and (b * b).grad_fn is None
    assert not (a > 1).requires_grad  # comparisons are not differentiable
    assert not a.argmax().requires_grad


def test_only_float_tensors_require_grad():
    with pytest.raises(RuntimeError, match="only Tensors of floating point dtype can require"):
        gf.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="only Tensors of floating point dtype"):
        gf.zeros(2, dtype=gf.bool).requires_grad_()


def test_grad_accumulates_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]
    (x * 3).sum().backward()
    assert x.grad.tolist() == [5.0, 7.0]
    x.grad = None
    x.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]


def test_grad_of_a_leaf_used_twice_is_summed():
    x = leaf([2.0])
    (x * x * x + x).backward()
    assert x.grad.tolist() == [13.0]


def test_leaf_grad_owns_its_memory():
    """The same gradient array may reach two leaves; accumulating into one must not touch
    the other."""
    a, b = leaf([1.0]), leaf([1.0])
    (a + b).backward()
    a.grad += 5  # in place on a plain tensor
    assert b.grad.tolist() == [1.0]


def test_backward_with_gradient_argument():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2
    y.backward(gf.tensor([1.0, 0.0, -1.0], dtype=gf.float64))
    assert x.grad.tolist() == [2.0, 0.0, -2.0]


def test_backward_errors():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match=r"Mismatch in shape: grad_output\[0\] has a shape of "
                                           r"\(3,\) and output\[0\] has a shape of \(2,\)"):
        (x * 2).backward(gf.ones(3, dtype=gf.float64))
    with pytest.raises(RuntimeError, match="does not require grad and does not have a grad_fn"):
        gf.ones(2).sum().backward()


def test_second_backward_raises_and_retain_graph_allows_it():
    x = leaf([1.0, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()
    x.grad = None
    z = (x.exp() * x).sum()
    z.backward(retain_graph=True)
    first = x.grad.clone()
    z.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first.numpy())


# ---------------------------------------------------------------- autograd.grad
def test_autograd_grad_does_not_touch_dot_grad():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    gx, gw = gf.autograd.grad((x * w).sum(), [x, w])
    assert gx.tolist() == [3.0, 4.0] and gw.tolist() == [1.0, 2.0]
    assert x.grad is None and w.grad is None


def test_autograd_grad_allow_unused():
    x, unused = leaf([1.0]), leaf([1.0])
    y = x * 2
    with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
        gf.autograd.grad(y, [x, unused], retain_graph=True)
    gx, gu = gf.autograd.grad(y, [x, unused], allow_unused=True)
    assert gx.tolist() == [2.0] and gu is None


def test_autograd_grad_wrt_intermediate():
    x = leaf([3.0])
    h = x * x
    (gh,) = gf.autograd.grad((h * 5).sum(), h)
    assert gh.tolist() == [5.0]


def test_autograd_grad_rejects_inputs_without_grad():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="input 1 of autograd.grad does not require grad"):
        gf.autograd.grad(x * 2, [x, gf.ones(1)])


def test_create_graph_gives_higher_derivatives():
    x = leaf([2.0])
    y = x ** 4
    (g1,) = gf.autograd.grad(y, x, create_graph=True)
    assert g1.requires_grad and g1.tolist() == [32.0]  # 4 x^3
    (g2,) = gf.autograd.grad(g1, x, create_graph=True)
    assert g2.tolist() == [48.0]  # 12 x^2
    (g3,) = gf.autograd.grad(g2, x)
    assert g3.tolist() == [48.0]  # 24 x
    assert not g3.requires_grad


def test_backward_create_graph_makes_grad_differentiable():
    x = leaf([1.5])
    (x.sin() * x).backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    (gg,) = gf.autograd.grad(g, x)
    expected = -np.sin(1.5) * 1.5 + 2 * np.cos(1.5)
    np.testing.assert_allclose(gg.numpy(), [expected])


# ---------------------------------------------------------------- grad modes
def test_no_grad_records_no_graph():
    x = leaf([1.0])
    with gf.no_grad():
        y = x * 2 + 1
        assert not gf.is_grad_enabled()
    assert gf.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf


def test_no_grad_as_decorator_and_enable_grad_inside():
    x = leaf([1.0])

    @gf.no_grad()
    def f(t):
        with gf.enable_grad():
            inner = t * 2
        return t * 2, inner

    out, inner = f(x)
    assert not out.requires_grad and inner.requires_grad
    assert gf.is_grad_enabled()

    @gf.enable_grad()
    def g(t):
        return t * 2

    with gf.no_grad():
        assert g(x).requires_grad


def test_no_grad_restores_mode_after_exception():
    with pytest.raises(ValueError):
        with gf.no_grad():
            raise ValueError("boom")
    assert gf.is_grad_enabled()


def test_set_grad_enabled_context_decorator_and_function():
    x = leaf([1.0])
    with gf.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert gf.is_grad_enabled()

    @gf.set_grad_enabled(False)
    def f(t):
        return t * 2

    assert gf.is_grad_enabled()  # decorating does not switch the mode
    assert not f(x).requires_grad and gf.is_grad_enabled()
    gf.set_grad_enabled(False)
    assert not gf.is_grad_enabled()
    gf.set_grad_enabled(True)
    assert (x * 2).requires_grad


# ---------------------------------------------------------------- detach, leaves, names
def test_detach_shares_storage_and_version():
    x = leaf([1.0, 2.0])
    d = x.detach()
    assert not d.requires_grad and d.is_leaf
    d[0] = 5.0  # d does not require grad, so assignment is allowed
    assert x.detach()[0].item() == 5.0
    assert x._version_counter == d._version_counter == 1


def test_detach_in_place_and_requires_grad_():
    x = leaf([1.0])
    y = x * 2
    assert not y.is_leaf
    y.detach_()
    assert y.is_leaf and not y.requires_grad and y.grad_fn is None
    z = gf.tensor([1.0])
    assert z.requires_grad_() is z and z.requires_grad
    with pytest.raises(RuntimeError, match="you can only change requires_grad flags of leaf"):
        (z * 2).requires_grad_(False)


def test_grad_fn_names_and_next_functions():
    x = leaf([1.0, 2.0])
    assert (x + 1).grad_fn.name() == "AddBackward"
    assert (x * x).grad_fn.name() == "MulBackward"
    assert x.exp().grad_fn.name() == "ExpBackward"
    assert x.sum().grad_fn.name() == "SumBackward"
    assert (x @ x).grad_fn is not None
    assert x.reshape(2, 1).grad_fn.name() == "ReshapeBackward"
    y = (x * 2).sum()
    (node, _), = y.grad_fn.next_functions[:1]
    assert node.name() == "MulBackward"
    assert node.next_functions[0][0] is x


# ---------------------------------------------------------------- hooks and retain_grad
def test_hooks_on_leaf_see_and_replace_the_gradient():
    x = leaf([1.0, 2.0])
    seen = []
    handle = x.register_hook(lambda g: seen.append(g.tolist()))
    x.register_hook(lambda g: g * 10)
    (x * 3).sum().backward()
    assert seen == [[3.0, 3.0]] and x.grad.tolist() == [30.0, 30.0]
    handle.remove()
    x.grad = None
    (x * 3).sum().backward()
    assert seen == [[3.0, 3.0]]


def test_hooks_on_non_leaf_change_what_flows_back():
    x = leaf([1.0, 2.0])
    h = x * 2
    seen = []
    h.register_hook(lambda g: seen.append(g.tolist()) or g * 0.5)
    (h * h).sum().backward()
    assert seen == [[4.0, 8.0]]
    assert x.grad.tolist() == [4.0, 8.0]  # 2 * (0.5 * 2h)
    with pytest.raises(RuntimeError, match="cannot register a hook on a tensor that doesn't"):
        gf.ones(1).register_hook(lambda g: g)


def test_retain_grad():
    x = leaf([1.0, 2.0])
    h = x * 3
    h.retain_grad()
    (h * h).sum().backward()
    assert h.grad.tolist() == [6.0, 12.0] and x.grad.tolist() == [18.0, 36.0]
    assert (x * 1).grad is None  # non-leaves keep no .grad by default


def test_leaf_hook_fires_once_with_the_summed_gradient():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: g * 10)
    x.register_hook(lambda g: seen.append(g.tolist()))
    (x * 2 + x * 3 + (x * 4).sum()).sum().backward()
    assert seen == [[130.0, 130.0]] and x.grad.tolist() == [130.0, 130.0]
    (x * 2).sum().backward()  # once per backward call
    assert seen == [[130.0, 130.0], [20.0, 20.0]] and x.grad.tolist() == [150.0, 150.0]


def test_post_accumulate_grad_hook_runs_once_after_grad_is_summed():
    x = leaf([1.0, 2.0])
    x.grad = gf.tensor([1.0, 1.0], dtype=gf.float64)
    seen = []
    handle = x.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.tolist()))
    x.register_hook(lambda g: g * 10)
    (x * 2 + x * 3).sum().backward()
    assert seen == [[51.0, 51.0]]  # the pre-hook's result, summed into the old .grad
    gf.autograd.backward((x * 2).sum(), inputs=[x])
    assert seen == [[51.0, 51.0], [71.0, 71.0]]
    gf.autograd.grad((x * 2).sum(), x)  # writes no .grad, so no post-accumulate hook
    handle.remove()
    (x * 2).sum().backward()
    assert len(seen) == 2
    with pytest.raises(RuntimeError, match="non-leaf"):
        (x * 2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        gf.ones(1).register_post_accumulate_grad_hook(lambda t: None)


def test_leaf_hook_fires_once_when_the_leaf_is_also_a_root():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()))
    gf.autograd.backward([x, x * 3], [gf.ones(2, dtype=gf.float64)] * 2)
    assert seen == [[4.0, 4.0]] and x.grad.tolist() == [4.0, 4.0]


def test_leaf_hook_result_is_what_autograd_grad_returns():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.tolist()) or g * 10)
    (gx,) = gf.autograd.grad((x * 2 + x * 3).sum(), x)
    assert seen == [[5.0, 5.0]] and gx.tolist() == [50.0, 50.0] and x.grad is None
    gx, gx_again = gf.autograd.grad((x * 2).sum(), [x, x])
    assert gx.tolist() == gx_again.tolist() == [20.0, 20.0]


def test_non_leaf_hook_fires_once_and_retain_grad_sees_its_result():
    x = leaf([1.0, 2.0])
    y = x * 1
    seen = []
    y.register_hook(lambda g: seen.append(g.tolist()))
    y.retain_grad()
    y.retain_grad()  # a second call changes nothing
    y.register_hook(lambda g: g * 10)
    z = (y * 2 + y * 3).sum()
    z.backward(retain_graph=True)
    assert seen == [[5.0, 5.0]]
    assert y.grad.tolist() == [50.0, 50.0] and x.grad.tolist() == [50.0, 50.0]
    z.backward()
    assert y.grad.tolist() == [100.0, 100.0]
    with pytest.raises(RuntimeError, match="can't retain_grad on Tensor that has requires_grad"):
        gf.ones(1).retain_grad()


def test_hooks_match_pytorch_on_a_shared_parameter():
    torch = pytest.importorskip("torch")
    w0 = np.array([[0.5, -1.0], [2.0, 0.25]])
    inp = np.array([[1.0, 2.0], [-3.0, 0.5], [0.0, 1.5]])
    grads = {}
    for lib in (gf, torch):
        w = lib.tensor(w0, requires_grad=True)
        seen = []
        w.register_hook(lambda g, seen=seen: seen.append(g.detach().numpy().copy()) or g * 2)
        x = lib.tensor(inp)
        h = (x @ w).tanh()
        h.register_hook(lambda g, seen=seen: seen.append(g.detach().numpy().copy()))
        ((h @ w).sum() + (h * h).sum()).backward()
        grads[lib] = seen, w.grad.numpy()
    (gf_seen, gf_grad), (t_seen, t_grad) = grads[gf], grads[torch]
    assert len(gf_seen) == len(t_seen) == 2
    for a, b in zip(gf_seen, t_seen):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    np.testing.assert_allclose(gf_grad, t_grad, rtol=1e-12)


class _DropSecondGrad(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a._backend.binary("add", a._data, b._data)

    @staticmethod
    def backward(ctx, g):
        return g, None


class _NoGrad(Function):
    @staticmethod
    def forward(ctx, a):
        return a._backend.copy(a._data)

    @staticmethod
    def backward(ctx, g):
        return None


def test_a_none_gradient_does_not_stall_the_nodes_behind_it():
    x = leaf([1.0, 2.0])
    y = x * 2
    _DropSecondGrad.apply(y, y * 5).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]  # PyTorch: the None path adds nothing, the other flows
    x = leaf([1.0, 2.0])
    _NoGrad.apply(x * 2).sum().backward()
    assert x.grad is None  # as PyTorch: no gradient reached x


# ---------------------------------------------------------------- custom Functions
class Cube(Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(x)
        ctx.scale = scale
        return x._backend.binary("mul", x._backend.binary("pow", x._data, 3), scale)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x * x * ctx.scale, None


class WrongCube(Cube):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2 * x * x * ctx.scale, None


def test_custom_function_forward_backward_and_double_backward():
    x = leaf([1.0, -2.0])
    y = Cube.apply(x, 2.0)
    assert y.tolist() == [2.0, -16.0] and y.grad_fn.name() == "CubeBackward"
    y.sum().backward(create_graph=True)
    assert x.grad.tolist() == [6.0, 24.0]
    assert gradcheck(lambda t: Cube.apply(t, 0.5), (leaf([0.3, -1.2]),))
    assert gradgradcheck(lambda t: Cube.apply(t, 0.5), (leaf([0.3, -1.2]),))


def test_needs_input_grad():
    record = {}

    class Mul2(Function):
        @staticmethod
        def forward(ctx, a, b):
            record["needs"] = ctx.needs_input_grad
            return a._backend.binary("mul", a._data, b._data)

        @staticmethod
        def backward(ctx, g):
            return None, None

    Mul2.apply(leaf([1.0]), gf.tensor([2.0], dtype=gf.float64))
    assert record["needs"] == (True, False)


def test_mark_non_differentiable():
    class SortWithIndex(Function):
        @staticmethod
        def forward(ctx, x):
            be = x._backend
            idx = gf.Tensor._make(be.from_numpy(np.argsort(x.detach().numpy())), be)
            values = gf.Tensor._make(be.getitem(x._data, (idx._data,)), be)
            mask = values > 0
            ctx.mark_non_differentiable(mask)
            ctx.save_for_backward(idx)
            return values, idx, mask

        @staticmethod
        def backward(ctx, gv, gi, gm):
            (idx,) = ctx.saved_tensors
            out = gf.zeros_like(gv)
            out[idx] = gv.detach()
            return out

    x = leaf([3.0, -1.0, 2.0])
    values, idx, mask = SortWithIndex.apply(x)
    assert values.requires_grad and not idx.requires_grad and not mask.requires_grad
    (values * gf.tensor([1.0, 2.0, 3.0], dtype=gf.float64)).sum().backward()
    assert x.grad.tolist() == [3.0, 1.0, 2.0]


def test_wrong_number_of_gradients_is_reported():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x, y):
            return x._data * 1

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(RuntimeError, match="BadBackward returned 1 gradients, expected 2"):
        Bad.apply(leaf([1.0]), leaf([1.0])).sum().backward()


def test_wrong_gradient_shape_is_reported():
    class BadShape(Function):
        @staticmethod
        def forward(ctx, x):
            return x._data * 1

        @staticmethod
        def backward(ctx, g):
            return g.sum()

    with pytest.raises(RuntimeError, match=r"BadShapeBackward returned an invalid gradient: "
                                           r"got shape \(\) but expected shape \(2,\)"):
        BadShape.apply(leaf([1.0, 2.0])).sum().backward()


# ---------------------------------------------------------------- deep graphs
class Identity(Function):
    """The cheapest node: the chain test measures the engine, not the ops."""

    @staticmethod
    def forward(ctx, x):
        return x._data

    @staticmethod
    def backward(ctx, g):
        return g


def test_backward_through_a_100k_op_chain_is_iterative():
    x = gf.tensor([1.0], requires_grad=True)
    y = x * 2.0
    for _ in range(100_000):
        y = Identity.apply(y)
    (y * 3.0).sum().backward()
    assert x.grad.tolist() == [6.0]
    del y  # freeing the chain must not overflow the stack either


# ---------------------------------------------------------------- in place and versions
def test_in_place_on_a_leaf_that_requires_grad_raises():
    x = leaf([1.0])
    for op in (lambda t: t.add_(1), lambda t: t.mul_(2), lambda t: t.zero_(),
               lambda t: t.fill_(3.0), lambda t: t.clamp_(0, 1)):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used "
                                               "in an in-place operation"):
            op(x)
    with gf.no_grad():
        x.add_(1)  # allowed: that is how optimizers update parameters
    assert x.tolist() == [2.0] and x.requires_grad


def test_modifying_a_saved_tensor_is_detected_at_backward():
    x = leaf([1.0, 2.0])
    y = x.exp()  # saves its output
    z = y * 1
    y.add_(1)
    assert y._version_counter == 1
    with pytest.raises(RuntimeError, match=r"one of the variables needed for gradient computation "
                                           r"has been modified by an inplace operation: "
                                           r"\[float64 tensor of shape \(2,\)\].*is at version 1; "
                                           r"expected version 0"):
        (z.sum() + y.sum()).backward()


def test_modifying_a_view_of_a_saved_tensor_is_detected():
    base = gf.tensor([1.0, 2.0, 3.0], dtype=gf.float64)
    w = leaf([1.0, 1.0, 1.0])
    y = w * base  # saves base
    view = base[1:]
    view.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_in_place_on_a_non_leaf_is_differentiated():
    x = leaf([1.0, 2.0])
    y = x * 2
    y.mul_(3)
    y.add_(x)
    assert y.grad_fn is not None
    y.sum().backward()
    assert x.grad.tolist() == [7.0, 7.0]


def _inplace_case(op):
    x = leaf([-1.0, 2.0])
    other = leaf([3.0, 0.5])
    y = x * 2
    op(y, x, other)
    (y * gf.tensor([1.0, 10.0], dtype=gf.float64)).sum().backward()
    return x.grad.tolist(), None if other.grad is None else other.grad.tolist()


@pytest.mark.parametrize("op,gx,gother", [
    # expected values from PyTorch 2 on the same program
    (lambda y, x, o: y.relu_(), [0.0, 20.0], None),
    (lambda y, x, o: y.exp_(), [2 * np.exp(-2.0), 20 * np.exp(4.0)], None),
    (lambda y, x, o: y.tanh_(), [2 * (1 - np.tanh(-2.0) ** 2), 20 * (1 - np.tanh(4.0) ** 2)],
     None),
    (lambda y, x, o: y.sigmoid_().sqrt_().neg_(), None, None),
    (lambda y, x, o: y.mul_(o), [6.0, 10.0], [-2.0, 40.0]),
    (lambda y, x, o: y.div_(o), [2 / 3, 40.0], [2 / 9, -160.0]),
    (lambda y, x, o: y.sub_(o, alpha=2), [2.0, 20.0], [-2.0, -20.0]),
    (lambda y, x, o: y.pow_(2), [-8.0, 160.0], None),
    (lambda y, x, o: y.fill_(3.0), [0.0, 0.0], None),
    (lambda y, x, o: y.zero_().add_(o), [0.0, 0.0], [1.0, 10.0]),
    (lambda y, x, o: y.clamp_(-1.0, 1.0), [0.0, 0.0], None),
    (lambda y, x, o: y.masked_fill_(y < 0, 7.0), [0.0, 20.0], None),
    (lambda y, x, o: y.addcmul_(x, o, value=2), [8.0, 30.0], [-2.0, 40.0]),
    (lambda y, x, o: y.copy_(o), [0.0, 0.0], [1.0, 10.0]),
])
def test_in_place_ops_on_graph_tensors_match_pytorch(op, gx, gother):
    got_x, got_other = _inplace_case(op)
    if gx is None:  # compare with the out-of-place program instead
        x = leaf([-1.0, 2.0])
        (-(x * 2).sigmoid().sqrt() * gf.tensor([1.0, 10.0], dtype=gf.float64)).sum().backward()
        gx = x.grad.tolist()
    np.testing.assert_allclose(got_x, gx, rtol=1e-12)
    assert (got_other is None) == (gother is None)
    if gother is not None:
        np.testing.assert_allclose(got_other, gother, rtol=1e-12)


def test_in_place_on_a_plain_tensor_with_a_grad_operand():
    z = leaf([1.0, 2.0])
    a = gf.tensor([3.0, 4.0], dtype=gf.float64)
    a.mul_(z)
    assert a.requires_grad and a.grad_fn is not None
    a.sum().backward()
    assert z.grad.tolist() == [3.0, 4.0]


def test_in_place_on_an_output_saved_by_its_node_raises():
    x = leaf([1.0, 2.0])
    y = x.exp()  # ExpBackward saves y itself
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


@pytest.mark.parametrize("op", ["add_", "sub_", "__iadd__", "__isub__"])
@pytest.mark.parametrize("other", ["same", "row", "scalar", "int", "plain"])
def test_recorded_add_and_sub_in_place_write_the_storage_and_match_out_of_place(op, other):
    """add_/sub_ on a graph tensor write its storage without a copy (their derivatives read no
    values) and give the out-of-place program's gradients, broadcast operands included."""
    rng = np.random.default_rng(7)
    x0, o0 = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    grads = []
    for in_place in (True, False):
        x = leaf(x0)
        o = {"same": leaf(o0), "row": leaf(o0[:1]), "scalar": 1.5, "int": 2,
             "plain": gf.tensor(o0, dtype=gf.float64)}[other]
        y = x * 2
        storage = y._data
        z = getattr(y, op)(o) if in_place else (y + o if "add" in op else y - o)
        if in_place:
            assert z is y and y._data is storage and y.grad_fn.name() in ("AddBackward",
                                                                          "SubBackward")
        (z * z).sum().backward()
        grads.append((z.detach().numpy().copy(), x.grad.numpy(),
                      o.grad.numpy() if isinstance(o, gf.Tensor) and o.requires_grad
                      else None))
    for got, want in zip(*grads):
        assert (got is None) == (want is None)
        if got is not None:
            np.testing.assert_allclose(got, want, rtol=1e-12)


def test_recorded_add_in_place_of_itself():
    x = leaf([1.0, -2.0])
    y = x * 3
    y += y  # both operands are the old y
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (6 * x.detach().numpy()) * 6)


def test_recorded_add_in_place_on_an_output_its_node_saved_raises():
    x = leaf([1.0, 2.0])
    y = x.exp()  # ExpBackward saves y itself
    y += x
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_recorded_add_in_place_that_would_grow_the_tensor_raises():
    y = leaf([1.0, 2.0]) * 1
    with pytest.raises(RuntimeError, match="doesn't match the broadcast shape"):
        y.add_(leaf([[1.0, 2.0], [3.0, 4.0]]))
    y.add_(gf.tensor([1, 2]))  # another dtype: the copying path, which promotes
    y.sum().backward()


# ---------------------------------------------------------------- Hessians
def _mlp_loss(w1, w2, x):
    return ((x @ w1).tanh() @ w2).pow(2).sum()


def test_hessian_and_hvp_of_small_mlp_match_finite_differences():
    gf.manual_seed(0)
    x = gf.randn(3, 2, dtype=gf.float64)
    w1 = gf.randn(2, 3, dtype=gf.float64, requires_grad=True)
    w2 = gf.randn(3, 1, dtype=gf.float64)
    n = w1.numel()

    def grad_at(values: np.ndarray) -> np.ndarray:
        w = gf.tensor(values.reshape(2, 3), dtype=gf.float64, requires_grad=True)
        (g,) = gf.autograd.grad(_mlp_loss(w, w2, x), w)
        return g.numpy().ravel()

    (g,) = gf.autograd.grad(_mlp_loss(w1, w2, x), w1, create_graph=True)
    hessian = np.stack([gf.autograd.grad(g.reshape(-1)[i], w1, retain_graph=True)[0].numpy()
                        .ravel() for i in range(n)])
    base, eps = w1.detach().numpy().ravel(), 1e-6
    numeric = np.stack([(grad_at(base + eps * e) - grad_at(base - eps * e)) / (2 * eps)
                        for e in np.eye(n)])
    np.testing.assert_allclose(hessian, numeric, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(hessian, hessian.T, rtol=1e-10, atol=1e-12)

    v = gf.randn(2, 3, dtype=gf.float64)
    (hv,) = gf.autograd.grad((g * v).sum(), w1)
    fd = (grad_at(base + eps * v.numpy().ravel()) - grad_at(base - eps * v.numpy().ravel())) / (
        2 * eps)
    np.testing.assert_allclose(hv.numpy().ravel(), fd, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(hv.numpy().ravel(), hessian @ v.numpy().ravel(), rtol=1e-8)


# ---------------------------------------------------------------- gradcheck semantics
def test_gradcheck_passes_on_correct_ops():
    a, b = leaf([[0.5, -1.0], [2.0, 0.3]]), leaf([[1.5, 0.2], [-0.7, 1.1]])
    assert gradcheck(lambda p, q: (p @ q).tanh() * p, (a, b))
    assert gradgradcheck(lambda p, q: (p @ q).tanh() * p, (a, b))


def test_gradcheck_reports_a_wrong_function():
    x = leaf([0.5, -1.5, 2.0])
    assert gradcheck(lambda t: WrongCube.apply(t, 1.0), (x,), raise_exception=False) is False
    with pytest.raises(GradcheckError, match=r"worst element: output index 2, input index 2: "
                                             r"numerical 12\.0\d*, analytical 8\.0"):
        gradcheck(lambda t: WrongCube.apply(t, 1.0), (x,))


def test_gradgradcheck_reports_a_wrong_second_derivative():
    class FirstOrderOnly(Function):
        """Right first derivative (2x) but written as a constant: wrong second derivative."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x._backend.binary("mul", x._data, x._data)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * (x.detach() * 2)

    x = leaf([0.5, -1.5])
    assert gradcheck(FirstOrderOnly.apply, (x,))
    assert gradgradcheck(FirstOrderOnly.apply, (x,), raise_exception=False) is False


def test_gradcheck_requires_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="at least one input tensor to require gradient"):
        gradcheck(lambda t: t * 2, (gf.ones(2, dtype=gf.float64),))


def test_gradcheck_warns_for_float32():
    with pytest.warns(UserWarning, match="not a double precision"):
        gradcheck(lambda t: t * 2, (gf.ones(2, requires_grad=True),), eps=1e-2, atol=1e-2,
                  rtol=1e-2)
