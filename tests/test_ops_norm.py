"""batch_norm / layer_norm / group_norm / instance_norm / dropout: references, gradcheck,
running statistics, PyTorch parity, bad inputs."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import DEVICES

import gradflow as gf
from gradflow.autograd import gradcheck, gradgradcheck
from gradflow.ops.dropout import dropout, dropout2d
from gradflow.ops.norm import batch_norm, group_norm, instance_norm, layer_norm

RNG = np.random.default_rng(2)


def t(a, requires_grad=False):
    return gf.tensor(a, requires_grad=requires_grad)


def on(device):
    """`t` for tensors on `device`."""
    return lambda a, requires_grad=False: gf.tensor(a, requires_grad=requires_grad, device=device)


def ref_normalize(x, axes, eps):
    mean = x.mean(axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def channel(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


# ---------------------------------------------------------------- forward vs reference
@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=40, deadline=None)
@given(st.sampled_from([(5, 3), (4, 3, 7), (2, 3, 4, 5), (3, 2, 1, 1), (64, 4)]),
       st.booleans(), st.booleans())
def test_batch_norm_matches_reference(device, shape, affine, training):
    t = on(device)
    x = RNG.standard_normal(shape) * 3 + 1
    c = shape[1]
    w, b = RNG.standard_normal(c), RNG.standard_normal(c)
    rm, rv = RNG.standard_normal(c), RNG.random(c) + 0.5
    axes = (0,) + tuple(range(2, len(shape)))
    y = batch_norm(t(x), t(rm.copy()), t(rv.copy()), t(w) if affine else None,
                   t(b) if affine else None, training, 0.1, 1e-5)
    if training:
        ref = ref_normalize(x, axes, 1e-5)
    else:
        ref = (x - channel(rm, x.ndim)) / np.sqrt(channel(rv, x.ndim) + 1e-5)
    if affine:
        ref = ref * channel(w, x.ndim) + channel(b, x.ndim)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("device", DEVICES)
def test_other_norms_match_reference(device):
    t = on(device)
    x = RNG.standard_normal((3, 6, 4, 5))
    w, b = RNG.standard_normal(6), RNG.standard_normal(6)
    wl, bl = RNG.standard_normal((4, 5)), RNG.standard_normal((4, 5))
    np.testing.assert_allclose(layer_norm(t(x), (4, 5), t(wl), t(bl)).numpy(),
                               ref_normalize(x, (2, 3), 1e-5) * wl + bl, atol=1e-9)
    xg = x.reshape(3, 2, 3, 4, 5)
    ref = ref_normalize(xg, (2, 3, 4), 1e-5).reshape(x.shape) * channel(w, 4) + channel(b, 4)
    np.testing.assert_allclose(group_norm(t(x), 2, t(w), t(b)).numpy(), ref, atol=1e-9)
    ref = ref_normalize(x, (2, 3), 1e-5) * channel(w, 4) + channel(b, 4)
    np.testing.assert_allclose(instance_norm(t(x), weight=t(w), bias=t(b)).numpy(), ref,
                               atol=1e-9)


@pytest.mark.parametrize("device", DEVICES)
def test_running_statistics_over_steps(device):
    t = on(device)
    c = 3
    rm, rv = t(np.zeros(c)), t(np.ones(c))
    erm, erv = np.zeros(c), np.ones(c)
    for step in range(4):
        x = RNG.standard_normal((6, c, 2, 3)) * (step + 1) + step
        batch_norm(t(x), rm, rv, training=True, momentum=0.2)
        m, v = x.mean((0, 2, 3)), x.var((0, 2, 3), ddof=1)
        erm, erv = 0.8 * erm + 0.2 * m, 0.8 * erv + 0.2 * v
        np.testing.assert_allclose(rm.numpy(), erm, rtol=1e-12)
        np.testing.assert_allclose(rv.numpy(), erv, rtol=1e-12)
    # momentum=None: the cumulative average, with the module's batch counter
    rm, rv = t(np.zeros(c)), t(np.ones(c))
    xs = [RNG.standard_normal((5, c)) for _ in range(3)]
    for k, x in enumerate(xs, start=1):
        batch_norm(t(x), rm, rv, training=True, momentum=None, num_batches_tracked=k)
    np.testing.assert_allclose(rm.numpy(), np.mean([x.mean(0) for x in xs], 0), rtol=1e-12)
    np.testing.assert_allclose(rv.numpy(), np.mean([x.var(0, ddof=1) for x in xs], 0),
                               rtol=1e-12)


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 5), (2, 3, 2, 3)])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(shape, training, device):
    t = on(device)
    c = shape[1]
    x = t(RNG.standard_normal(shape), True)
    w = t(RNG.standard_normal(c), True)
    b = t(RNG.standard_normal(c), True)
    rm, rv = t(RNG.standard_normal(c)), t(RNG.random(c) + 0.5)

    def f(x, w, b):
        return batch_norm(x, rm, rv, w, b, training, 0.0, 1e-3)

    assert gradcheck(f, (x, w, b))
    assert gradgradcheck(f, (x, w, b))
    assert gradcheck(lambda x: batch_norm(x, rm, rv, None, None, training, 0.0, 1e-3), (x,))


@pytest.mark.parametrize("device", DEVICES)
def test_other_norms_gradcheck(device):
    t = on(device)
    x = t(RNG.standard_normal((2, 4, 3)), True)
    w, b = t(RNG.standard_normal(4), True), t(RNG.standard_normal(4), True)
    wl, bl = t(RNG.standard_normal(3), True), t(RNG.standard_normal(3), True)
    assert gradcheck(lambda x, w, b: layer_norm(x, 3, w, b), (x, wl, bl))
    assert gradgradcheck(lambda x, w, b: layer_norm(x, 3, w, b), (x, wl, bl))
    assert gradcheck(lambda x, w, b: group_norm(x, 2, w, b), (x, w, b))
    assert gradcheck(lambda x, w, b: instance_norm(x, weight=w, bias=b), (x, w, b))


def test_dropout():
    gf.manual_seed(0)
    x = t(np.ones((200, 50)), True)
    y = dropout(x, 0.3)
    kept = y.detach().numpy() != 0
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_allclose(y.detach().numpy()[kept], 1 / 0.7)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), y.detach().numpy())
    assert dropout(x, 0.3, training=False) is x
    assert (dropout(x, 1.0).detach().numpy() == 0).all()
    y2 = dropout2d(t(np.ones((8, 30, 2, 3))), 0.5).numpy()
    per_channel = y2.reshape(8, 30, -1)
    assert ((per_channel == 0).all(-1) | (per_channel == 2).all(-1)).all()
    gf.manual_seed(5)
    a = dropout(t(np.ones(100)), 0.5).numpy()
    gf.manual_seed(5)
    np.testing.assert_array_equal(a, dropout(t(np.ones(100)), 0.5).numpy())


# ---------------------------------------------------------------- PyTorch parity
def test_norm_torch_parity():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = RNG.standard_normal((4, 6, 5, 3)).astype(np.float32)
    w, b = RNG.standard_normal(6).astype(np.float32), RNG.standard_normal(6).astype(np.float32)
    g = RNG.standard_normal(x.shape).astype(np.float32)
    cases = [
        (lambda a, w, b: batch_norm(a, None, None, w, b, True),
         lambda a, w, b: F.batch_norm(a, None, None, w, b, True)),
        (lambda a, w, b: group_norm(a, 3, w, b), lambda a, w, b: F.group_norm(a, 3, w, b)),
        (lambda a, w, b: instance_norm(a, weight=w, bias=b),
         lambda a, w, b: F.instance_norm(a, weight=w, bias=b)),
        (lambda a, w, b: layer_norm(a, (3,), w[:3], b[:3]),
         lambda a, w, b: F.layer_norm(a, (3,), w[:3], b[:3])),
    ]
    for ours, theirs in cases:
        gs = [t(a, True) for a in (x, w, b)]
        ts = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
        y, ty = ours(*gs), theirs(*ts)
        np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-4)
        y.backward(t(g))
        ty.backward(torch.tensor(g))
        for a, ta in zip(gs, ts):
            np.testing.assert_allclose(a.grad.numpy(), ta.grad.numpy(), rtol=1e-3, atol=1e-3)
    rm, rv = t(np.zeros(6, np.float32)), t(np.ones(6, np.float32))
    trm, trv = torch.zeros(6), torch.ones(6)
    for _ in range(3):
        xi = RNG.standard_normal((8, 6, 3, 3)).astype(np.float32)
        batch_norm(t(xi), rm, rv, training=True, momentum=0.3)
        F.batch_norm(torch.tensor(xi), trm, trv, training=True, momentum=0.3)
        rmi, rvi = t(np.zeros(6, np.float32)), t(np.ones(6, np.float32))
        instance_norm(t(xi), rmi, rvi)
        trmi, trvi = torch.zeros(6), torch.ones(6)
        F.instance_norm(torch.tensor(xi), trmi, trvi)
        np.testing.assert_allclose(rmi.numpy(), trmi.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rvi.numpy(), trvi.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rm.numpy(), trm.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv.numpy(), trv.numpy(), rtol=1e-5, atol=1e-6)
    y = batch_norm(t(x), rm, rv, t(w), t(b), training=False)
    ty = F.batch_norm(torch.tensor(x), trm, trv, torch.tensor(w), torch.tensor(b), False)
    np.testing.assert_allclose(y.numpy(), ty.numpy(), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- bad inputs
def _x(*shape):
    return t(np.zeros(shape))


@pytest.mark.parametrize("call,match", [
    (lambda: batch_norm(_x(4, 3), _x(2), _x(3)), r"running_mean must have shape \(3,\) .* \(2,\)"),
    (lambda: batch_norm(_x(4, 3), _x(3), _x(4)), r"running_var must have shape \(3,\)"),
    (lambda: batch_norm(_x(4, 3), None, None, _x(2), training=True), r"weight must have shape"),
    (lambda: batch_norm(_x(1, 3), None, None, training=True), r"more than 1 value per channel"),
    (lambda: batch_norm(_x(4, 3), None, None), r"running_mean and running_var are required"),
    (lambda: batch_norm(_x(4,), None, None), r"at least 2-D"),
    (lambda: batch_norm(_x(4, 3), _x(3), _x(3), training=True, momentum=None),
     r"num_batches_tracked"),
    (lambda: layer_norm(_x(2, 3), (4,)), r"normalized_shape \(4,\) does not match"),
    (lambda: layer_norm(_x(2, 3), 3, _x(4)), r"weight must have shape \(3,\)"),
    (lambda: group_norm(_x(2, 6, 3), 4), r"divisible by num_groups"),
    (lambda: instance_norm(_x(2, 3, 1)), r"more than 1 spatial element"),
    (lambda: dropout(_x(3), 1.5), r"between 0 and 1, but got 1.5"),
    (lambda: dropout2d(_x(3, 3), 0.5), r"3-D or 4-D"),
])
def test_norm_bad_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_output_takes_in_place_ops(training):
    # ResNet's `out = bn(conv(x)); out += identity`: the output is a new tensor, not a view.
    x = gf.randn(2, 3, 4, 5, dtype=gf.float64, requires_grad=True)
    rm, rv = gf.zeros(3, dtype=gf.float64), gf.ones(3, dtype=gf.float64)
    out = batch_norm(x, rm, rv, training=training)
    out += x
    out.sum().backward()
    ref = x.detach().clone().requires_grad_()
    (batch_norm(ref, rm, rv, training=training) + ref).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), ref.grad.numpy(), atol=1e-12)
