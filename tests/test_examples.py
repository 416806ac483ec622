"""The example scripts: each one's --smoke run in-process (checkpoints and figures written
and readable) and each one's --help in a subprocess."""

from __future__ import annotations

import importlib
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, List

import pytest

import gradflow as gf

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
SCRIPTS = ["mnist_mlp", "mnist_lenet", "cifar_resnet", "conv_autoencoder", "optimizers",
           "architectures", "ddp_resnet"]
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


@pytest.mark.parametrize("variant", ["transpose", "unpool"])
def test_conv_autoencoder_smoke(variant: str, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = _example("conv_autoencoder")
    plot, ckpt = tmp_path / "ae.png", tmp_path / "ae.gf"
    metrics = module.main(["--smoke", "--variant", variant, "--plot", str(plot),
                           "--checkpoint", str(ckpt)])
    assert math.isfinite(metrics["test_loss"]) and "test_accuracy" not in metrics
    assert plot.read_bytes().startswith(PNG_MAGIC)
    model = module.ConvAutoencoder() if variant == "transpose" else module.UnpoolAutoencoder()
    _check_checkpoint(ckpt, model)


def test_optimizers_smoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    module = _example("optimizers")
    curves, lr_plot = tmp_path / "curves.png", tmp_path / "lr.png"
    results = module.main(["--smoke", "--plot", str(curves), "--lr-plot", str(lr_plot)])
    assert set(results) == set(module.OPTIMIZERS) | {"suggested_lr"}
    assert 1e-5 / 10 <= results["suggested_lr"] <= 10.0 / 10
    assert curves.read_bytes().startswith(PNG_MAGIC)
    assert lr_plot.read_bytes().startswith(PNG_MAGIC)


def test_architectures_smoke(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                             capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    results = _example("architectures").main(["--smoke"])
    assert results["alexnet"]["params"] == 61_100_840
    assert results["vgg16"]["params"] == 138_357_544
    out = capsys.readouterr().out
    assert "138,357,544" in out and "features.0 (Conv2d)" in out


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
