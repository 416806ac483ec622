"""The PyTorch programs of examples/ported_programs.py (LSTM-cell sequence prediction with
L-BFGS, word-level language models with an LSTM and with a Transformer, pixel-shuffle
super-resolution, a siamese ResNet with a replaced first layer) train on generated data with
gradflow, and, when PyTorch is installed, from the same initial weights with PyTorch: their
losses agree in float64."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from parity import HAVE_TORCH, same_layout

import gradflow as gf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import ported_programs as programs  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")


@pytest.fixture
def one_torch_thread():
    """PyTorch's thread pool only slows these small programs on a shared machine."""
    if not HAVE_TORCH:
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", sorted(programs.PROGRAMS))
def test_program_trains_with_gradflow_as_with_torch(name, one_torch_thread):
    if HAVE_TORCH:
        import torch

        reference = programs.build(name, torch)
        model = programs.build(name, gf, programs.numpy_state(reference))
        same_layout(model, reference)
        theirs = programs.train(name, torch, reference)
    else:
        model = programs.build(name, gf)
    ours = programs.train(name, gf, model)
    assert all(math.isfinite(x) for x in ours)
    if HAVE_TORCH:
        assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12)


def test_siamese_network_keeps_the_replaced_first_layer_first():
    net = programs.siamese_network(gf)
    first = net.resnet[0]
    assert isinstance(first, gf.nn.Conv2d) and first.in_channels == 1
    assert not any(isinstance(m, gf.nn.Linear) and m.out_features == 1000
                   for m in net.resnet.modules())


def test_sequence_prediction_learns_the_sine():
    model = programs.build("time_sequence_prediction", gf)
    losses = programs.train("time_sequence_prediction", gf, model)
    assert losses[1] < losses[0] and losses[-1] < 0.05


def test_main_prints_both(capsys, one_torch_thread):
    results = programs.main(["--program", "super_resolution"])
    out = capsys.readouterr().out
    assert "super_resolution" in out and "gradflow:" in out
    assert len(results["super_resolution"][0]) == 5
