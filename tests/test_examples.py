"""The example scripts: each one's --smoke run in-process (checkpoints and figures written
and readable) and each one's --help in a subprocess."""

from __future__ import annotations

import importlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, List

import numpy as np
import pytest

import gradflow as gf

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SCRIPTS = ["mnist_mlp", "mnist_lenet", "cifar_resnet", "conv_autoencoder", "optimizers",
           "architectures", "ddp_resnet", "initialization", "regularization", "second_order"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

sys.path.insert(0, str(EXAMPLES))  # the scripts import their neighbour `common`


def _example(name: str):
    return importlib.import_module(name)


def _check_checkpoint(path: Path, model) -> None:
    state = gf.load(str(path))
    assert set(state) >= {"model", "optimizer", "epoch", "metrics", "args"}
    model.load_state_dict(state["model"])  # strict: every key and shape matches a fresh model
    assert state["optimizer"]["param_groups"]


CLASSIFIERS = [
    pytest.param("mnist_mlp", [], lambda m: m.MLP(), id="mlp"),
    pytest.param("mnist_mlp", ["--activation", "sigmoid"],
                 lambda m: m.MLP(activation="sigmoid"), id="mlp-sigmoid"),
    pytest.param("mnist_lenet", [], lambda m: m.LeNet5(), id="lenet"),
    pytest.param("mnist_lenet", ["--variant", "relu"], lambda m: m.LeNet5("relu"),
                 id="lenet-relu"),
    pytest.param("cifar_resnet", [], lambda m: m.CifarResNet(m.BasicBlock), id="resnet20"),
    pytest.param("cifar_resnet", ["--block", "bottleneck"],
                 lambda m: m.CifarResNet(m.Bottleneck), id="resnet-bottleneck"),
]


@pytest.mark.parametrize("name, extra, build", CLASSIFIERS)
def test_classifier_smoke(name: str, extra: List[str], build: Callable, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = _example(name)
    ckpt = tmp_path / "ckpt" / f"{name}.gf"
    metrics = module.main(["--smoke", "--checkpoint", str(ckpt), *extra])
    assert set(metrics) == {"train_loss", "test_loss", "test_accuracy"}
    assert all(math.isfinite(v) for v in metrics.values())
    assert 0.0 <= metrics["test_accuracy"] <= 100.0
    _check_checkpoint(ckpt, build(module))
    written = json.loads((tmp_path / "runs" / name / "metrics.json").read_text())
    assert written["final"] == pytest.approx(metrics) and len(written["epochs"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "runs"]


@pytest.mark.parametrize("variant", ["transpose", "unpool"])
def test_conv_autoencoder_smoke(variant: str, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = _example("conv_autoencoder")
    out, ckpt = tmp_path / "ae", tmp_path / "ae.gf"
    metrics = module.main(["--smoke", "--variant", variant, "--out", str(out),
                           "--checkpoint", str(ckpt)])
    assert math.isfinite(metrics["test_loss"]) and "test_accuracy" not in metrics
    assert (out / "reconstructions.png").read_bytes().startswith(PNG_MAGIC)
    assert (out / "metrics.json").is_file()
    model = module.ConvAutoencoder() if variant == "transpose" else module.UnpoolAutoencoder()
    _check_checkpoint(ckpt, model)


def test_optimizers_smoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = _example("optimizers")
    results = module.main(["--smoke"])
    assert set(results) == set(module.OPTIMIZERS) | {"suggested_lr"}
    assert 1e-5 / 10 <= results["suggested_lr"] <= 10.0 / 10
    out = tmp_path / "runs" / "optimizers"
    assert (out / "losses.png").read_bytes().startswith(PNG_MAGIC)
    assert (out / "lr_range_test.png").read_bytes().startswith(PNG_MAGIC)
    assert json.loads((out / "results.json").read_text())["suggested_lr"] == results[
        "suggested_lr"]


def test_architectures_smoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                             capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    results = _example("architectures").main(["--smoke"])
    assert results["alexnet"]["params"] == 61_100_840
    assert results["vgg16"]["params"] == 138_357_544
    out = capsys.readouterr().out
    assert "138,357,544" in out and "features.0 (Conv2d)" in out
    written = json.loads((tmp_path / "runs" / "architectures" / "results.json").read_text())
    assert written["vgg16"]["params"] == 138_357_544


def test_initialization_shows_vanishing_gradients_and_both_cures(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    monkeypatch.chdir(tmp_path)
    module = _example("initialization")
    results = module.main(["--smoke"])
    ratios = {name: r["first_step_grad_ratio"] for name, r in results.items()}
    naive, kaiming, batch_norm = (ratios[v[0]] for v in module.VARIANTS.values())
    assert naive < 1e-10 < 1e-2 < min(kaiming, batch_norm)  # layer 1's gradient vanishes
    out = tmp_path / "runs" / "initialization"
    assert (out / "monitor.png").read_bytes().startswith(PNG_MAGIC)
    assert set(json.loads((out / "results.json").read_text())) == set(results)


def test_regularization_smoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = _example("regularization")
    results = module.main(["--smoke", "--flip"])
    assert set(results) == {"no regularization", *module.CURES, "all five"}
    assert all(set(r) == {"train", "val", "test", "epochs"} for r in results.values())
    out = tmp_path / "runs" / "regularization"
    assert (out / "curves.png").read_bytes().startswith(PNG_MAGIC)
    assert (out / "results.json").is_file()


def test_augment_shifts_and_flips_each_image_with_gradflow_ops() -> None:
    module = _example("regularization")
    gf.manual_seed(0)
    images = gf.arange(2 * 16, dtype=gf.float32).reshape(2, 1, 4, 4) + 1
    out = module.augment(images, shift=1, flip=True)
    assert out.shape == images.shape
    padded = np.pad(images.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)))
    for i in range(2):  # every output image is one of the 9 shifts, mirrored or not
        crops = [padded[i, :, dy:dy + 4, dx:dx + 4] for dy in range(3) for dx in range(3)]
        candidates = crops + [c[..., ::-1] for c in crops]
        assert any(np.array_equal(out[i].numpy(), c) for c in candidates)


def test_second_order_smoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    results = _example("second_order").main(["--smoke"])
    assert results["newton_iterations"] <= 10 and results["lambda_max"] > 0
    out = tmp_path / "runs" / "second_order"
    assert (out / "second_order.png").read_bytes().startswith(PNG_MAGIC)


def test_second_order_hessians_match_torch() -> None:
    torch = pytest.importorskip("torch")
    module = _example("second_order")
    x, y = module.logistic_data(200)
    xt, yt = torch.from_numpy(x.numpy()), torch.from_numpy(y.numpy())
    l2 = 1e-3

    def torch_loss(w):
        bce = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w, yt)
        return bce + 0.5 * l2 * (w * w).sum()

    gf.manual_seed(1)
    for w in (gf.zeros(x.shape[1], dtype=gf.float64), 0.1 * gf.randn(x.shape[1]).double()):
        ours = module.hessian(lambda v: module.logistic_loss(v, x, y, l2), w.requires_grad_())
        theirs = torch.autograd.functional.hessian(torch_loss, torch.from_numpy(w.detach()
                                                                                .numpy()))
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-10, atol=1e-12)

    # Newton needs a handful of iterations where gradient descent at lr = 1/L needs many more.
    f = lambda v: module.logistic_loss(v, x, y, l2)
    w0 = gf.zeros(x.shape[1], dtype=gf.float64, requires_grad=True)
    newton = module.newton(f, w0, tol=1e-8)
    big_l = float(np.linalg.eigvalsh(module.hessian(f, w0).numpy())[-1])
    gd = module.gradient_descent(f, w0, 1.0 / big_l, tol=1e-8, max_iters=300)
    assert len(newton) - 1 <= 12 and len(gd) - 1 == 300
    assert gd[-1] > newton[-1]

    # The power iteration's eigenvalue against PyTorch's full Hessian of the same network.
    images, labels = module.network_data(64)
    net = module.small_net()
    params = list(net.parameters())
    lam, _ = module.top_eigenvalue(lambda: gf.nn.functional.cross_entropy(net(images), labels),
                                   params, iters=300)
    shapes = [p.shape for p in params]
    flat = torch.cat([torch.from_numpy(p.detach().numpy()).reshape(-1) for p in params])
    xs, ys = torch.from_numpy(images.numpy()).flatten(1), torch.from_numpy(labels.numpy())

    def net_loss(theta):
        w1, b1, w2, b2 = (t.reshape(tuple(s)) for t, s in
                          zip(theta.split([int(np.prod(s)) for s in shapes]), shapes))
        hidden = torch.tanh(xs @ w1.T + b1)
        return torch.nn.functional.cross_entropy(hidden @ w2.T + b2, ys)

    eigenvalues = torch.linalg.eigvalsh(torch.autograd.functional.hessian(net_loss, flat,
                                                                          vectorize=True))
    largest = eigenvalues[eigenvalues.abs().argmax()].item()
    assert lam == pytest.approx(largest, rel=1e-3)


def test_architectures_rejects_too_small_alexnet(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        _example("architectures").main(["--model", "alexnet", "--size", "32"])
    assert "--size >= 63" in capsys.readouterr().err


def test_unknown_device_kernel_falls_back_to_cpu(capsys: pytest.CaptureFixture) -> None:
    common = _example("common")
    assert common.choose_device("cpu", ("conv2d", "max_pool2d")).type == "cpu"
    assert "device: cpu" in capsys.readouterr().out


@pytest.mark.parametrize("name", SCRIPTS)
def test_help(name: str) -> None:
    # The child imports the gradflow this test imported (installed or in-place build).
    env = dict(os.environ, PYTHONPATH=str(Path(gf.__file__).resolve().parent.parent))
    done = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--help"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:") and "--smoke" in done.stdout
    assert f"(default: runs/{name})" in " ".join(done.stdout.split())
