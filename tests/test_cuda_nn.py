"""The CUDA nn kernels (pooling, batch norm, softmax family, NLL) against the CPU on identical
inputs, float64 gradchecks on the GPU, models trained a few steps on both devices, and the
asynchrony and memory promises of a training step. Skipped without a GPU."""

from __future__ import annotations

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow import optim
from gradflow.autograd import gradcheck, gradgradcheck

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not gf.cuda.is_available(), reason="no CUDA GPU"),
]

DEVICES = ("cpu", "cuda")


def _np(t):
    return t.detach().cpu().numpy()


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-12)


def _on_both(fn, arrays, dtype=np.float64, grad=True):
    """fn's outputs and input gradients (of sum(out * fixed weights)) on each device."""
    results = []
    for device in DEVICES:
        xs = [gf.tensor(a.astype(dtype) if a.dtype.kind == "f" else a, device=device,
                        requires_grad=grad and a.dtype.kind == "f") for a in arrays]
        out = fn(*xs)
        outs = out if isinstance(out, tuple) else (out,)
        if grad:
            rng = np.random.default_rng(5)
            total = sum((o * gf.tensor(rng.standard_normal(o.shape).astype(dtype),
                                       device=device)).sum()
                        for o in outs if o.is_floating_point())
            total.backward()
        results.append(([_np(o) for o in outs],
                        [_np(x.grad) for x in xs if x.requires_grad] if grad else []))
    return results


def _compare(fn, arrays, dtype=np.float64, grad=True):
    (cpu_out, cpu_grad), (gpu_out, gpu_grad) = _on_both(fn, arrays, dtype, grad)
    for a, b in zip(gpu_out + gpu_grad, cpu_out + cpu_grad):
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, **_tol(dtype))
        else:
            np.testing.assert_array_equal(a, b)


def _images(shape, seed=0, specials=False):
    a = np.random.default_rng(seed).standard_normal(shape)
    if specials:
        a.flat[::7] = 1.0  # ties
        a.flat[3] = np.nan
    return a


# ---------------------------------------------------------------- pooling
POOLS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), ceil_mode=True),
    dict(kernel_size=3, stride=1, padding=1, dilation=2),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kw", POOLS)
def test_max_pool2d_matches_cpu(kw, dtype):
    _compare(lambda x: F.max_pool2d(x, return_indices=True, **kw), [_images((2, 3, 9, 8))], dtype)


def test_max_pool2d_propagates_nan_like_cpu():
    _compare(lambda x: F.max_pool2d(x, 3, 2, 1, return_indices=True),
             [_images((1, 2, 7, 7), specials=True)], grad=False)


@pytest.mark.parametrize("kw", [dict(kernel_size=3, stride=2, padding=1),
                                dict(kernel_size=3, padding=1, count_include_pad=False),
                                dict(kernel_size=2, ceil_mode=True, divisor_override=3),
                                dict(kernel_size=(3, 1), stride=(2, 3), ceil_mode=True,
                                     count_include_pad=False)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool2d_matches_cpu(kw, dtype):
    _compare(lambda x: F.avg_pool2d(x, **kw), [_images((2, 3, 9, 7))], dtype)


@pytest.mark.parametrize("out", [1, (3, 5), (7, 2), (9, 8)])
def test_adaptive_pools_match_cpu(out):
    _compare(lambda x: F.adaptive_avg_pool2d(x, out), [_images((2, 3, 7, 6))])
    _compare(lambda x: F.adaptive_max_pool2d(x, out, return_indices=True), [_images((2, 3, 7, 6))])


def test_max_unpool2d_matches_cpu_and_rejects_bad_indices():
    x = _images((2, 3, 8, 8))
    for device in DEVICES:
        t = gf.tensor(x, device=device)
        y, idx = F.max_pool2d(t, 2, return_indices=True)
        _compare(lambda v: F.max_unpool2d(v, idx.to(v.device), 2), [_np(y)])
    y, idx = F.max_pool2d(gf.tensor(x, device="cuda"), 2, return_indices=True)
    with pytest.raises(ValueError, match="max_unpool2d"):
        gf._cuda.max_unpool2d(y._data, (idx + 1000)._data, (8, 8))


def test_pool_zero_batch_and_bad_arguments_on_cuda():
    x = gf.zeros(0, 3, 8, 8, device="cuda")
    assert F.max_pool2d(x, 2).shape == (0, 3, 4, 4)
    assert F.avg_pool2d(x, 2).shape == (0, 3, 4, 4)
    good = gf.zeros(1, 1, 4, 4, device="cuda")._data
    with pytest.raises(ValueError, match="padding"):
        gf._cuda.max_pool2d(good, (2, 2), (1, 1), (2, 2), (1, 1), False)
    with pytest.raises(ValueError, match="too small"):
        gf._cuda.avg_pool2d(good, (5, 5), (1, 1), (0, 0), False, True, 0)
    with pytest.raises(TypeError, match="indices"):
        gf._cuda.max_pool2d_backward(good, good, (4, 4))


@pytest.mark.parametrize("fn", [
    lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True),
    lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
    lambda x: F.adaptive_avg_pool2d(x, (2, 3)),
    lambda x: F.adaptive_max_pool2d(x, (3, 2)),
])
def test_pool_gradcheck_on_cuda(fn):
    x = gf.tensor(_images((1, 2, 5, 6), seed=3), device="cuda", requires_grad=True)
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


def test_large_plane_count_uses_64_bit_indices():
    # 2^31 + a few outputs would need a 16 GiB input; check the grid-stride path at a size
    # that still needs several sweeps of the capped grid.
    x = np.random.default_rng(0).standard_normal((64, 64, 64, 64)).astype(np.float32)
    _compare(lambda t: F.max_pool2d(t, 2), [x], np.float32, grad=False)


# ---------------------------------------------------------------- batch norm
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 6), (2, 5, 1, 1), (64, 2, 33, 31)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_train_and_eval_match_cpu(shape, dtype):
    c = shape[1]
    rng = np.random.default_rng(1)
    weight, bias = rng.standard_normal(c), rng.standard_normal(c)
    for training in (True, False):
        def fn(x, w, b):
            mean = gf.zeros(c, dtype=x.dtype, device=x.device)
            var = gf.ones(c, dtype=x.dtype, device=x.device)
            y = F.batch_norm(x, mean, var, w, b, training=training, momentum=0.3)
            return y, mean, var
        _compare(fn, [_images(shape) * 3 + 2, weight, bias], dtype)


def test_batch_norm_float32_statistics_are_float64_accurate_far_from_zero():
    a = 1e4 + np.random.default_rng(2).standard_normal((128, 4, 16, 16))
    x = gf.tensor(a.astype(np.float32), device="cuda")
    _, mean, var, _ = x._backend.batch_norm_train(x.reshape(128, 4, 256)._data, None, None, 1e-5)
    ref = a.astype(np.float32).astype(np.float64).transpose(1, 0, 2, 3).reshape(4, -1)
    np.testing.assert_allclose(x._backend.to_numpy(mean), ref.mean(1), rtol=1e-7)
    np.testing.assert_allclose(x._backend.to_numpy(var), ref.var(1), rtol=1e-3)


@pytest.mark.parametrize("module", [nn.LayerNorm(6), nn.GroupNorm(2, 4), nn.InstanceNorm2d(4)],
                         ids=lambda m: type(m).__name__)
def test_other_norms_match_cpu(module):
    shape = (3, 5, 6) if isinstance(module, nn.LayerNorm) else (3, 4, 5, 6)
    module = module.double()
    _compare(lambda x: module.to(x.device)(x), [_images(shape)])


def test_batch_norm_gradcheck_on_cuda():
    x = gf.tensor(_images((3, 2, 3, 2)), device="cuda", requires_grad=True)
    w = gf.tensor([1.5, -0.5], device="cuda", requires_grad=True)
    b = gf.tensor([0.1, 0.2], device="cuda", requires_grad=True)
    fn = lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True)  # noqa: E731
    assert gradcheck(fn, (x, w, b))
    assert gradgradcheck(fn, (x, w, b))


# ---------------------------------------------------------------- softmax family, losses
@pytest.mark.parametrize("shape,dim", [((7, 10), 1), ((3, 2000), -1), ((5, 33), 0),
                                       ((2, 4, 3, 5), 1), ((1, 1), 1), ((4, 1025), 1)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_family_matches_cpu(shape, dim, name, dtype):
    # Row lengths 1 .. 2000 run the warp-per-row and block-per-row kernels, so this is also the
    # GPU test of block_reduce / warp_allreduce.
    _compare(lambda x: getattr(F, name)(x, dim), [_images(shape) * 4], dtype)


def test_softmax_special_values_match_cpu():
    a = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf], [np.nan, 0.0, 1.0]])
    _compare(lambda x: F.softmax(x, 1), [a], grad=False)
    _compare(lambda x: F.log_softmax(x, 1), [a], grad=False)


CE_CASES = [
    ((6, 5), {}),
    ((6, 5), {"reduction": "sum", "ignore_index": 2, "weight": True}),
    ((6, 5), {"reduction": "none", "label_smoothing": 0.1, "weight": True}),
    ((3, 4, 2, 3), {"label_smoothing": 0.2, "ignore_index": 0}),
    ((5,), {"label_smoothing": 0.3}),
]


@pytest.mark.parametrize("shape,kw", CE_CASES)
def test_cross_entropy_and_nll_match_cpu(shape, kw):
    kw = dict(kw)
    rng = np.random.default_rng(4)
    c = shape[1] if len(shape) > 1 else shape[0]
    target = rng.integers(0, c, (shape[0],) + shape[2:] if len(shape) > 1 else ())
    weight = rng.random(c) + 0.5 if kw.pop("weight", False) else None

    def ce(x, t, *w):
        return F.cross_entropy(x, t, weight=w[0] if w else None, **kw)

    arrays = [_images(shape), target] + ([weight] if weight is not None else [])
    _compare(ce, arrays)
    if "label_smoothing" not in kw:
        _compare(lambda x, t, *w: F.nll_loss(F.log_softmax(x, 0 if x.ndim == 1 else 1), t,
                                             weight=w[0] if w else None, **kw), arrays)


def test_cross_entropy_gradcheck_on_cuda():
    x = gf.tensor(_images((4, 3)), device="cuda", requires_grad=True)
    t = gf.tensor([0, 2, 1, 1], device="cuda")
    w = gf.tensor([1.0, 2.0, 0.5], device="cuda")
    fn = lambda x: F.cross_entropy(x, t, weight=w, label_smoothing=0.1)  # noqa: E731
    assert gradcheck(fn, (x,))
    assert gradgradcheck(fn, (x,))


def test_out_of_range_target_is_reported_at_the_next_synchronisation():
    x = gf.randn(4, 3, device="cuda")
    loss = F.cross_entropy(x, gf.tensor([0, 3, 1, 1], device="cuda"))
    with pytest.raises(IndexError, match="out of bounds"):
        loss.item()
    assert np.isfinite(F.cross_entropy(x, gf.tensor([0, 2, 1, 1], device="cuda")).item())


# ---------------------------------------------------------------- dropout, embedding, pad, resize
def test_dropout_is_reproducible_on_cuda():
    x = gf.ones(64, 32, device="cuda")
    gf.manual_seed(3)
    a = _np(F.dropout(x, 0.3)), _np(F.dropout2d(gf.ones(4, 8, 3, 3, device="cuda"), 0.5))
    gf.manual_seed(3)
    b = _np(F.dropout(x, 0.3)), _np(F.dropout2d(gf.ones(4, 8, 3, 3, device="cuda"), 0.5))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert 0.6 < (a[0] != 0).mean() < 0.8


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_and_embedding_match_cpu(mode):
    _compare(lambda x: F.pad(x, (1, 2, 2, 1), mode=mode), [_images((2, 3, 4, 5))])
    _compare(lambda w, i: F.embedding(i, w), [_images((10, 4)), np.array([[1, 2], [9, 1]])])


@pytest.mark.parametrize("kw", [dict(scale_factor=2, mode="bilinear", align_corners=True),
                                dict(size=(7, 3), mode="bilinear"), dict(scale_factor=1.7),
                                dict(size=(2, 9)), dict(scale_factor=(0.6, 2.5), mode="bilinear")])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_interpolate_matches_cpu(kw, dtype):
    _compare(lambda x: F.interpolate(x, **kw), [_images((2, 3, 5, 4))], dtype)
    x = gf.tensor(_images((1, 2, 3, 4)), device="cuda", requires_grad=True)
    assert gradgradcheck(lambda t: F.interpolate(t, **kw), (x,))


# ---------------------------------------------------------------- models, asynchrony, memory
def _lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 10))


def _resnet():
    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
            self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

        def forward(self, x):
            out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
            out += x
            return F.relu(out)

    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                         Block(8), Block(8), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 10))


def _train(build, shape, device, steps=3):
    gf.manual_seed(0)
    model = build().double().to(device)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)
    x = gf.tensor(rng.standard_normal(shape), device=device)
    y = gf.tensor(rng.integers(0, 10, shape[0]), device=device)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, [_np(p) for p in model.parameters()]


@pytest.mark.parametrize("build,shape", [(_lenet, (8, 1, 32, 32)), (_resnet, (4, 3, 16, 16))],
                         ids=["lenet5", "resnet"])
def test_models_train_the_same_on_cuda_as_on_cpu(build, shape):
    cpu_losses, cpu_params = _train(build, shape, "cpu")
    gpu_losses, gpu_params = _train(build, shape, "cuda")
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-9)
    for a, b in zip(gpu_params, cpu_params):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


def test_resnet_step_never_waits_for_the_gpu_and_memory_stays_flat():
    model = _resnet().to("cuda")
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = gf.randn(8, 3, 16, 16, device="cuda")
    y = gf.tensor(np.arange(8) % 10, device="cuda")

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    step().item()  # warm-up: momentum buffers, allocator blocks
    gf.cuda.synchronize()
    allocated = gf.cuda.memory_allocated()
    for _ in range(3):
        waits, copies = gf._cuda.host_waits(), gf._cuda.device_to_host_copies()
        loss = step()
        assert gf._cuda.host_waits() == waits, "a training step waited for the GPU"
        assert gf._cuda.device_to_host_copies() == copies
        loss.item()
        assert gf._cuda.device_to_host_copies() == copies + 1
        del loss
        assert gf.cuda.memory_allocated() == allocated
    assert gf.cuda.max_memory_allocated() >= allocated
    gf.cuda.reset_peak_memory_stats()
    assert gf.cuda.max_memory_allocated() == gf.cuda.memory_allocated()
    gf.cuda.empty_cache()
    assert gf.cuda.memory_reserved() >= gf.cuda.memory_allocated()
