"""Every op against PyTorch on the same float64 inputs: forward values and input gradients.

Table-driven: each row names the op, one function written for both libraries (`m` is the
module, gradflow or torch), the input shapes and the range the inputs are drawn from.
"""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _pad(m, t, p, value=0.0):
    return (gf.pad if m is gf else F.pad)(t, p, value=value)


def _elu(m, t):
    return gf.elu(t, 0.7) if m is gf else F.elu(t, 0.7)


def _leaky(m, t):
    return gf.leaky_relu(t, 0.1) if m is gf else F.leaky_relu(t, 0.1)


def _gelu(m, t, approximate="none"):
    return (gf.gelu if m is gf else F.gelu)(t, approximate=approximate)


def _softplus(m, t):
    return (gf.softplus if m is gf else F.softplus)(t, beta=1.5, threshold=2.0)


def _idx(m, values):
    return m.tensor(values)


# name: (fn(m, *tensors), input shapes, (low, high))
OPS = {
    "add": (lambda m, a, b: a + b, [(2, 3), (3,)], (-2, 2)),
    "sub": (lambda m, a, b: a - b, [(2, 1), (1, 3)], (-2, 2)),
    "mul": (lambda m, a, b: a * b, [(2, 3), (2, 3)], (-2, 2)),
    "div": (lambda m, a, b: a / b, [(2, 3), (3,)], (0.5, 2)),
    "pow": (lambda m, a, b: a ** b, [(2, 3), (2, 3)], (0.5, 2)),
    "scalar_ops": (lambda m, a: (2 - a) * 3 + 1 / (a + 4) + 2 ** a + a ** 3 - a / 2, [(2, 3)],
                   (-2, 2)),
    "matmul_2d": (lambda m, a, b: a @ b, [(2, 3), (3, 4)], (-2, 2)),
    "matmul_1d": (lambda m, a, b: a @ b, [(3,), (3, 2)], (-2, 2)),
    "matmul_vv": (lambda m, a, b: m.matmul(a, b), [(3,), (3,)], (-2, 2)),
    "matmul_batched": (lambda m, a, b: a @ b, [(2, 1, 2, 3), (3, 3, 2)], (-2, 2)),
    "neg": (lambda m, a: -a, [(2, 3)], (-2, 2)),
    "abs": (lambda m, a: a.abs(), [(2, 3)], (0.1, 2)),
    "exp": (lambda m, a: a.exp(), [(2, 3)], (-2, 2)),
    "log": (lambda m, a: a.log(), [(2, 3)], (0.1, 2)),
    "log1p": (lambda m, a: m.log1p(a), [(2, 3)], (-0.5, 2)),
    "sqrt": (lambda m, a: a.sqrt(), [(2, 3)], (0.1, 2)),
    "rsqrt": (lambda m, a: m.rsqrt(a), [(2, 3)], (0.1, 2)),
    "sin": (lambda m, a: a.sin(), [(2, 3)], (-2, 2)),
    "cos": (lambda m, a: a.cos(), [(2, 3)], (-2, 2)),
    "tanh": (lambda m, a: a.tanh(), [(2, 3)], (-2, 2)),
    "sigmoid": (lambda m, a: a.sigmoid(), [(2, 3)], (-2, 2)),
    "relu": (lambda m, a: a.relu(), [(2, 3)], (-2, 2)),
    "leaky_relu": (_leaky, [(2, 3)], (-2, 2)),
    "elu": (_elu, [(2, 3)], (-2, 2)),
    "gelu": (_gelu, [(2, 3)], (-2, 2)),
    "gelu_tanh": (lambda m, a: _gelu(m, a, "tanh"), [(2, 3)], (-2, 2)),
    "softplus": (_softplus, [(2, 3)], (-2, 2)),
    "clamp": (lambda m, a: a.clamp(-0.5, 0.7), [(2, 3)], (-2, 2)),
    "maximum": (lambda m, a, b: m.maximum(a, b), [(2, 3), (3,)], (-2, 2)),
    "minimum": (lambda m, a, b: m.minimum(a, b), [(2, 3), (2, 3)], (-2, 2)),
    "where": (lambda m, a, b: m.where(a > 0, a, b), [(2, 3), (3,)], (-2, 2)),
    "sum": (lambda m, a: a.sum((0, -1), keepdim=True), [(2, 3, 2)], (-2, 2)),
    "mean": (lambda m, a: a.mean(1), [(2, 3, 2)], (-2, 2)),
    "var": (lambda m, a: a.var(-1), [(2, 3)], (-2, 2)),
    "var_unbiased_false": (lambda m, a: a.var(0, unbiased=False, keepdim=True), [(3, 2)],
                           (-2, 2)),
    "std_correction": (lambda m, a: a.std((0, 1), correction=0), [(2, 3, 2)], (-2, 2)),
    "prod": (lambda m, a: a.prod(1), [(2, 3)], (0.5, 2)),
    "max_dim": (lambda m, a: a.max(1)[0] + a.max(0, keepdim=True).values.sum(), [(2, 3)], (-2, 2)),
    "min_dim": (lambda m, a: a.min(-1).values, [(2, 3)], (-2, 2)),
    "max_all": (lambda m, a: a.max(), [(2, 3)], (-2, 2)),
    "amax": (lambda m, a: a.amax((0, 1)), [(2, 3, 2)], (-2, 2)),
    "amin": (lambda m, a: a.amin(-1, keepdim=True), [(2, 3)], (-2, 2)),
    "logsumexp": (lambda m, a: a.logsumexp(1), [(2, 3)], (-2, 2)),
    "norm": (lambda m, a: a.norm(), [(2, 3)], (-2, 2)),
    "norm_dim_p1": (lambda m, a: a.norm(1, dim=1), [(2, 3)], (0.1, 2)),
    "norm_p3": (lambda m, a: a.norm(3, dim=(0, 1), keepdim=True), [(2, 3)], (0.1, 2)),
    "softmax": (lambda m, a: a.softmax(-1), [(2, 3)], (-2, 2)),
    "log_softmax": (lambda m, a: a.log_softmax(0), [(2, 3)], (-2, 2)),
    "reshape": (lambda m, a: a.reshape(3, -1) * 2, [(2, 3)], (-2, 2)),
    "view": (lambda m, a: a.view(6), [(2, 3)], (-2, 2)),
    "flatten": (lambda m, a: a.flatten(1), [(2, 3, 2)], (-2, 2)),
    "unflatten": (lambda m, a: a.unflatten(1, (2, 3)), [(2, 6)], (-2, 2)),
    "squeeze_unsqueeze": (lambda m, a: a.unsqueeze(0).squeeze(2), [(2, 1, 3)], (-2, 2)),
    "permute": (lambda m, a: a.permute(2, 0, 1), [(2, 3, 2)], (-2, 2)),
    "transpose_t": (lambda m, a: a.transpose(0, 1).t() * a, [(2, 3)], (-2, 2)),
    "expand": (lambda m, a: a.expand(2, 3, 4), [(3, 1)], (-2, 2)),
    "repeat": (lambda m, a: a.repeat(2, 1, 3), [(2, 2)], (-2, 2)),
    "cat": (lambda m, a, b: m.cat([a, b], 1), [(2, 3), (2, 1)], (-2, 2)),
    "stack": (lambda m, a, b: m.stack([a, b], -1), [(2, 3), (2, 3)], (-2, 2)),
    "split": (lambda m, a: a.split([1, 2], 1)[1], [(2, 3)], (-2, 2)),
    "chunk": (lambda m, a: a.chunk(2, 0)[1], [(3, 2)], (-2, 2)),
    "flip": (lambda m, a: a.flip((0, 1)), [(2, 3)], (-2, 2)),
    "pad": (lambda m, a: _pad(m, a, (1, 2, 0, 1), 0.5), [(2, 3)], (-2, 2)),
    "getitem_basic": (lambda m, a: a[1:, ::2, None], [(3, 4)], (-2, 2)),
    "getitem_negative": (lambda m, a: a[-1, ..., -2], [(3, 4)], (-2, 2)),
    "getitem_int_array": (lambda m, a: a[_idx(m, [2, 0, 2])], [(3, 2)], (-2, 2)),
    "getitem_bool_mask": (lambda m, a: a[a > 0], [(3, 2)], (-2, 2)),
    "gather": (lambda m, a: a.gather(1, _idx(m, [[0, 2], [1, 1]])), [(2, 3)], (-2, 2)),
    "scatter_add": (lambda m, a, b: a.scatter_add(1, _idx(m, [[0, 2], [1, 1]]), b),
                    [(2, 3), (2, 2)], (-2, 2)),
    "index_select": (lambda m, a: a.index_select(1, _idx(m, [2, 0, 2])), [(2, 3)], (-2, 2)),
    "index_add": (lambda m, a, b: a.index_add(0, _idx(m, [1, 1]), b, alpha=2),
                  [(2, 3), (2, 3)], (-2, 2)),
    "masked_fill": (lambda m, a: a.masked_fill(a > 0, 2.0), [(2, 3)], (-2, 2)),
}


def _inputs(name, seed=0):
    _, shapes, (lo, hi) = OPS[name]
    rng = np.random.default_rng(seed)
    return [rng.uniform(lo, hi, s) for s in shapes]


@pytest.mark.parametrize("name", sorted(OPS))
def test_forward_and_backward_match_pytorch(name):
    fn = OPS[name][0]
    arrays = _inputs(name)
    g_in = [gf.tensor(a, requires_grad=True) for a in arrays]
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    g_out, t_out = fn(gf, *g_in), fn(torch, *t_in)
    assert tuple(g_out.shape) == tuple(t_out.shape)
    np.testing.assert_allclose(g_out.detach().numpy(), t_out.detach().numpy(), rtol=1e-12,
                               atol=1e-12)
    weights = np.random.default_rng(1).normal(size=tuple(t_out.shape))
    (g_out * gf.tensor(weights)).sum().backward()
    (t_out * torch.tensor(weights)).sum().backward()
    for i, (g, t) in enumerate(zip(g_in, t_in)):
        expected = t.grad.numpy() if t.grad is not None else np.zeros_like(arrays[i])
        got = g.grad.numpy() if g.grad is not None else np.zeros_like(arrays[i])
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12,
                                   err_msg=f"{name}: gradient of input {i}")


@pytest.mark.parametrize("name", ["mul", "div", "tanh", "sigmoid", "softmax", "log_softmax",
                                  "matmul_2d", "logsumexp", "var", "norm", "gelu", "prod"])
def test_second_derivatives_match_pytorch(name):
    fn = OPS[name][0]
    arrays = _inputs(name, seed=2)
    g_in = [gf.tensor(a, requires_grad=True) for a in arrays]
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    g_grads = gf.autograd.grad(fn(gf, *g_in).sum(), g_in, create_graph=True)
    t_grads = torch.autograd.grad(fn(torch, *t_in).sum(), t_in, create_graph=True)
    np.testing.assert_allclose(gf.autograd.grad(sum((g * g).sum() for g in g_grads), g_in)[0]
                               .numpy(),
                               torch.autograd.grad(sum((t * t).sum() for t in t_grads), t_in)[0]
                               .numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("values", [[1000.0, 1001.0, 1002.0], [-1e4, 0.0, 1e4],
                                    [float("-inf"), 0.0, 1.0]])
def test_softmax_extremes_match_pytorch(values):
    g, t = gf.tensor(values, dtype=gf.float64), torch.tensor(values, dtype=torch.float64)
    np.testing.assert_allclose(g.softmax(0).numpy(), t.softmax(0).numpy())
    np.testing.assert_allclose(g.log_softmax(0).numpy(), t.log_softmax(0).numpy())
    np.testing.assert_allclose(g.logsumexp(0).numpy(), t.logsumexp(0).numpy())


def test_in_place_ops_match_pytorch():
    def program(m, x, o):
        y = x * 2
        y.mul_(o).add_(1).sub_(o, alpha=0.5).div_(o + 3).clamp_(-2, 2)
        y.masked_fill_(y > 1.5, 1.5)
        return y.tanh_()

    arrays = _inputs("mul")
    g_in = [gf.tensor(a, requires_grad=True) for a in arrays]
    t_in = [torch.tensor(a, requires_grad=True) for a in arrays]
    g_out, t_out = program(gf, *g_in), program(torch, *t_in)
    np.testing.assert_allclose(g_out.detach().numpy(), t_out.detach().numpy(), rtol=1e-12)
    g_out.sum().backward()
    t_out.sum().backward()
    for g, t in zip(g_in, t_in):
        np.testing.assert_allclose(g.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_promotion_and_creation_match_pytorch():
    cases = [lambda m: m.tensor([1, 2]) + 1.5, lambda m: m.tensor([1, 2]) / 2,
             lambda m: m.tensor([True]) + m.tensor([2]), lambda m: m.tensor(2.0) * m.tensor([1, 2]),
             lambda m: m.ones(2, dtype=m.float64) * m.tensor(3.0),
             lambda m: m.arange(0, 1, 0.25), lambda m: m.linspace(-1, 1, 5),
             lambda m: m.tensor([7, -7]) // 2, lambda m: m.tensor([7.5, -7.5]) % 2]
    names = {torch.float32: "float32", torch.float64: "float64", torch.int64: "int64",
             torch.bool: "bool"}
    for case in cases:
        g, t = case(gf), case(torch)
        assert g.dtype.name == names[t.dtype]
        np.testing.assert_allclose(g.numpy(), t.numpy(), rtol=1e-6)
