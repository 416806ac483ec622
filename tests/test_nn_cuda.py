"""nn and optim on a CUDA device against the same code on the CPU (skipped without a GPU)."""

import numpy as np
import pytest

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow import optim

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not gf.cuda.is_available(), reason="no CUDA GPU"),
]


def _np(t):
    return t.detach().cpu().numpy()


def test_module_to_cuda_keeps_parameter_identity():
    m = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    w = m[0].weight
    m(gf.randn(2, 3)).sum().backward()
    m.to("cuda")
    assert m[0].weight is w and w.is_cuda and w.grad.is_cuda
    assert isinstance(w, nn.Parameter)
    m.cpu()
    assert not w.is_cuda


def _mlp_run(device, opt_name, **kw):
    gf.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.GELU(), nn.Linear(16, 16), nn.Tanh(),
                          nn.Linear(16, 3))
    model.double().to(device)
    emb = nn.Embedding(10, 6, padding_idx=0).double().to(device)
    rng = np.random.default_rng(0)
    idx = gf.tensor(rng.integers(0, 10, 20), device=device)
    y = gf.tensor(rng.integers(0, 3, 20), device=device)
    params = list(model.parameters()) + list(emb.parameters())
    opt = getattr(optim, opt_name)(params, **kw)
    sched = optim.lr_scheduler.ExponentialLR(opt, 0.9)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = F.cross_entropy(model(emb(idx)), y, label_smoothing=0.1)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses, [_np(p) for p in params]


@pytest.mark.parametrize("opt_name,kw", [
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.5)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01)),
    ("Adadelta", dict(lr=1.0, weight_decay=0.01)),
])
def test_training_on_cuda_matches_cpu(opt_name, kw):
    cpu_losses, cpu_params = _mlp_run("cpu", opt_name, **kw)
    gpu_losses, gpu_params = _mlp_run("cuda", opt_name, **kw)
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-10)
    for a, b in zip(gpu_params, cpu_params):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
                                  "binary_cross_entropy_with_logits", "kl_div"])
def test_losses_on_cuda_match_cpu(name):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 5)), rng.random((4, 5))
    outs = []
    for device in ("cpu", "cuda"):
        x = gf.tensor(a, device=device, requires_grad=True)
        loss = getattr(F, name)(x, gf.tensor(b, device=device))
        loss.backward()
        outs.append((loss.item(), _np(x.grad)))
    np.testing.assert_allclose(outs[1][0], outs[0][0], rtol=1e-12)
    np.testing.assert_allclose(outs[1][1], outs[0][1], rtol=1e-12, atol=1e-15)


def test_optimizer_state_dict_moves_to_parameter_device():
    w = nn.Parameter(gf.randn(3, dtype=gf.float64))
    w.grad = gf.ones(3, dtype=gf.float64)
    opt = optim.Adam([w])
    opt.step()
    sd = opt.state_dict()
    w2 = nn.Parameter(w.detach().to("cuda"))
    opt2 = optim.Adam([w2])
    opt2.load_state_dict(sd)
    assert opt2.state[w2]["exp_avg"].is_cuda and not opt2.state[w2]["step"].is_cuda


def _conv_net(transposed: bool):
    if transposed:
        return nn.Sequential(nn.ConvTranspose2d(3, 4, 3, stride=2, padding=1, output_padding=1),
                             nn.Tanh(), nn.ConvTranspose2d(4, 2, 2, groups=2, dilation=2))
    return nn.Sequential(nn.Conv2d(3, 6, 3, stride=2, padding=1), nn.Tanh(),
                         nn.Conv2d(6, 6, 3, padding=2, dilation=2, groups=6), nn.Tanh(),
                         nn.Conv2d(6, 2, 1))


def _conv_run(device, transposed):
    gf.manual_seed(0)
    model = _conv_net(transposed).double().to(device)
    x = gf.tensor(np.random.default_rng(0).standard_normal((4, 3, 9, 9)), device=device)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(4):
        opt.zero_grad()
        loss = (model(x) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, [_np(p) for p in model.parameters()]


@pytest.mark.parametrize("transposed", [False, True], ids=["Conv2d", "ConvTranspose2d"])
def test_conv_modules_train_on_cuda_like_cpu(transposed):
    cpu_losses, cpu_params = _conv_run("cpu", transposed)
    gpu_losses, gpu_params = _conv_run("cuda", transposed)
    np.testing.assert_allclose(gpu_losses, cpu_losses, rtol=1e-10)
    for a, b in zip(gpu_params, cpu_params):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
