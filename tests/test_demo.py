"""gradflow.demo: the LeNet-5 demo runs end to end (smoke runs), repeats itself given a seed,
chooses its device honestly and writes its plot."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import types

import pytest

import gradflow
from gradflow import demo
from gradflow.backends.base import Backend

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def test_smoke_run_prints_accuracy_time_and_model(capsys, tmp_path):
    out = tmp_path / "run"
    assert demo.main(["--smoke", "--no-plot", "--out", str(out), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "device: cpu (as requested)" in text
    assert "model: LeNet-5, 61,706 parameters" in text
    assert re.search(rf"test accuracy: \d+\.\d\d% \(\d+/{demo.SMOKE_SIZE} digits\)", text)
    assert re.search(r"time: \d+\.\d s", text)
    assert f"results: {out / 'metrics.json'}" in text
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["history"]["test_acc"]) == 1 and metrics["device"] == "cpu"
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json"]


def test_outputs_go_to_runs_demo_under_the_current_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert demo.main(["--smoke", "--no-plot"]) == 0
    assert (tmp_path / "runs" / "demo" / "metrics.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is not installed")
def test_smoke_run_writes_png(capsys, tmp_path):
    out = tmp_path / "run"
    assert demo.main(["--smoke", "--out", str(out)]) == 0
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot: {out / 'curves.png'}" in capsys.readouterr().out


def test_plot_is_skipped_without_matplotlib(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # makes the import fail
    out = tmp_path / "run"
    assert demo.main(["--smoke", "--out", str(out)]) == 0
    assert "plot skipped: matplotlib is not installed" in capsys.readouterr().out
    assert not (out / "curves.png").exists()


def test_same_seed_same_run_other_seed_other_run():
    first = demo.train(epochs=1, seed=3, smoke=True, progress=False)
    again = demo.train(epochs=1, seed=3, smoke=True, progress=False)
    other = demo.train(epochs=1, seed=4, smoke=True, progress=False)
    assert first.history == again.history
    assert first.misclassified.labels == again.misclassified.labels
    assert first.history != other.history
    assert len(first.history["test_acc"]) == 1


def test_data_is_digits_split_at_32x32():
    train, test = demo.digits()
    assert (len(train), len(test)) == (1438, 359)
    image, label = test[0]
    assert tuple(image.shape) == (1, 32, 32) and 0 <= label <= 9
    assert abs(float(image.mean())) < 1.0  # normalised
    smoke_train, smoke_test = demo.digits(smoke=True)
    assert len(smoke_train) == len(smoke_test) == demo.SMOKE_SIZE


def test_device_choice(monkeypatch):
    assert demo.choose_device("cpu") == ("cpu", "as requested")
    monkeypatch.setattr(gradflow.cuda, "is_available", lambda: False)
    device, why = demo.choose_device("auto")
    assert device == "cpu" and why.startswith("no CUDA GPU")

    monkeypatch.setattr(gradflow.cuda, "is_available", lambda: True)
    monkeypatch.setattr(gradflow.cuda, "get_device_name", lambda i=0: "Fake GPU")
    monkeypatch.setattr(demo, "cuda_runs_lenet", lambda: False)
    device, why = demo.choose_device("auto")
    assert device == "cpu" and "no conv/pooling kernels" in why
    monkeypatch.setattr(demo, "cuda_runs_lenet", lambda: True)
    assert demo.choose_device("auto") == ("cuda", "Fake GPU")


def _fake_cuda_backend_module(kernels):
    """A stand-in gradflow.backends.cuda whose CUDABackend overrides only `kernels`."""
    body = {k: (lambda self, *args: None) for k in kernels}
    module = types.ModuleType("gradflow.backends.cuda")
    module.CUDABackend = type("CUDABackend", (Backend,), body)
    return module


def test_cuda_probe_needs_every_lenet_kernel(monkeypatch):
    monkeypatch.setattr(gradflow.cuda, "is_available", lambda: True)
    partial = _fake_cuda_backend_module(["conv2d", "max_pool2d"])
    monkeypatch.setitem(sys.modules, "gradflow.backends.cuda", partial)
    assert not demo.cuda_runs_lenet()
    complete = _fake_cuda_backend_module(demo.LENET_KERNELS)
    monkeypatch.setitem(sys.modules, "gradflow.backends.cuda", complete)
    assert demo.cuda_runs_lenet()


def test_asking_for_cuda_that_cannot_train_is_an_error(monkeypatch, capsys):
    monkeypatch.setattr(gradflow.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exc:
        demo.main(["--device", "cuda", "--smoke", "--no-plot"])
    assert exc.value.code == 2
    assert "--device cuda: no CUDA GPU" in capsys.readouterr().err


def test_help_runs_as_a_module(tmp_path):
    # The child imports the gradflow this test imported (installed or in-place build); run
    # from tmp_path so that a source checkout in the working directory cannot shadow it.
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(gradflow.__file__)))
    env = dict(os.environ, PYTHONPATH=package_parent)
    result = subprocess.run([sys.executable, "-m", "gradflow.demo", "--help"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for option in ("--epochs", "--batch-size", "--lr", "--seed", "--device", "--out",
                   "--no-plot", "--smoke"):
        assert option in result.stdout
    help_text = " ".join(result.stdout.split())
    for default in (f"(default: {demo.EPOCHS})", f"(default: {demo.BATCH_SIZE})",
                    f"(default: {demo.LR})", "(default: 0)", "(default: auto)",
                    "(default: runs/demo)"):
        assert default in help_text
