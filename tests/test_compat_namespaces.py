"""Names PyTorch programs reach for beside the layers: gradflow.nn.modules' class paths,
gradflow.accelerator, the serialization allow-list and load(weights_only=...), and
format(tensor, spec)."""

from __future__ import annotations

import importlib
import inspect

import pytest
from parity import needs_torch

import gradflow as gf
import gradflow.nn as nn


# ---------------------------------------------------------------- nn.modules paths
@needs_torch
def test_every_layer_is_found_at_torchs_module_path():
    import torch

    checked = 0
    for name in nn.__all__:
        cls = getattr(nn, name)
        if not inspect.isclass(cls) or name == "Parameter":
            continue
        twin = getattr(torch.nn, name)
        path = twin.__module__.replace("torch.nn", "gradflow.nn", 1)
        assert getattr(importlib.import_module(path), name) is cls, (name, path)
        assert getattr(nn.modules, name) is cls
        checked += 1
    assert checked > 70
    assert nn.modules.rnn.LSTM is nn.LSTM and nn.modules.conv.Conv2d is nn.Conv2d


@needs_torch
def test_module_path_lists_are_torchs_and_name_each_layer_once():
    import torch

    assert len(nn.__all__) == len(set(nn.__all__))
    assert nn.__all__[:6] == ["functional", "init", "modules", "parallel", "utils", "Parameter"]
    assert nn.__all__[6:] == nn.modules.__all__
    for name in dir(nn.modules):
        shim = getattr(nn.modules, name)
        if inspect.ismodule(shim):
            twin = importlib.import_module(f"torch.nn.modules.{name}")
            assert set(shim.__all__) <= set(twin.__all__), name
            assert all(getattr(shim, n) is getattr(nn, n) for n in shim.__all__), name
    # found by path (MultiheadAttention.out_proj's class) but exported by neither library
    assert not hasattr(nn.modules, "NonDynamicallyQuantizableLinear")
    assert not hasattr(torch.nn.modules, "NonDynamicallyQuantizableLinear")


def test_class_paths_as_a_checkpoint_names_them_resolve():
    from gradflow.nn.modules.activation import MultiheadAttention
    from gradflow.nn.modules.linear import NonDynamicallyQuantizableLinear
    from gradflow.nn.modules.transformer import TransformerDecoderLayer

    assert MultiheadAttention is nn.MultiheadAttention
    assert isinstance(nn.MultiheadAttention(4, 2).out_proj, NonDynamicallyQuantizableLinear)
    assert TransformerDecoderLayer is nn.TransformerDecoderLayer


# ---------------------------------------------------------------- accelerator
def test_accelerator_answers_from_the_cuda_backend():
    acc = gf.accelerator
    assert acc.is_available() == gf.cuda.is_available()
    assert acc.device_count() == gf.cuda.device_count()
    if gf.cuda.is_available():
        assert acc.current_accelerator(check_available=True) == gf.device("cuda")
        assert acc.current_device_index() == 0
    else:
        assert acc.current_accelerator(check_available=True) is None
        assert acc.current_device_index() == -1
    built = acc.current_accelerator()
    assert built == (gf.device("cuda") if gf.cuda.is_built() else None)
    acc.synchronize()


@needs_torch
def test_accelerator_mirrors_torchs_functions_on_a_cpu_machine():
    import torch

    for name in ("is_available", "device_count", "current_accelerator",
                 "current_device_index", "synchronize"):
        assert hasattr(torch.accelerator, name) and hasattr(gf.accelerator, name)
    if not gf.cuda.is_built() and not torch.cuda.is_available():
        assert gf.accelerator.is_available() == torch.accelerator.is_available()


@pytest.mark.cuda
def test_accelerator_device_moves_a_model():
    device = gf.accelerator.current_accelerator()
    model = nn.Linear(2, 2).to(device)
    assert model.weight.device == device


# ---------------------------------------------------------------- serialization
def test_load_accepts_weights_only_and_the_allow_list_is_a_no_op(tmp_path):
    path = tmp_path / "m.gf"
    state = nn.Linear(2, 3).state_dict()
    gf.save(state, path)
    for weights_only in (None, True, False):
        loaded = gf.load(path, weights_only=weights_only)
        assert list(loaded) == ["weight", "bias"]
        assert gf.equal(loaded["weight"], state["weight"])
    with pytest.raises(TypeError, match="load: weights_only must be None or a bool"):
        gf.load(path, weights_only="yes")
    ser = gf.serialization
    ser.clear_safe_globals()
    ser.add_safe_globals([nn.Linear, "anything"])
    assert ser.get_safe_globals() == [nn.Linear, "anything"]
    with ser.safe_globals([nn.Conv2d]):
        assert nn.Conv2d in ser.get_safe_globals()
        assert list(gf.load(path, weights_only=True)) == ["weight", "bias"]
    assert ser.get_safe_globals() == [nn.Linear, "anything"]
    ser.clear_safe_globals()
    assert ser.get_safe_globals() == []
    with pytest.raises(TypeError, match="add_safe_globals: expected a list"):
        ser.add_safe_globals(nn.Linear)


@needs_torch
def test_serialization_names_match_torchs():
    import torch

    for name in ("add_safe_globals", "get_safe_globals", "clear_safe_globals", "safe_globals"):
        assert hasattr(torch.serialization, name) and hasattr(gf.serialization, name)
    assert "weights_only" in inspect.signature(gf.load).parameters


# ---------------------------------------------------------------- format
@needs_torch
@pytest.mark.parametrize("value,spec", [(1.23456789, ".6f"), (2.5, ">10.2e"), (3, "04d"),
                                        (-0.5, "+.1%"), (True, ""), (7.0, "")])
def test_format_of_a_zero_dim_tensor_matches_torch(value, spec):
    import torch

    assert format(gf.tensor(value), spec) == format(torch.tensor(value), spec)
    loss = gf.tensor(value)
    assert f"{loss:{spec}}" == f"{torch.tensor(value):{spec}}"


@needs_torch
def test_format_of_larger_tensors():
    import torch

    assert format(gf.tensor([1.5]), ".2f") == "1.50"  # PyTorch takes 0-d tensors only
    assert format(gf.tensor([1.0, 2.0]), "") == str(gf.tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="unsupported format string passed to Tensor"):
        format(gf.tensor([1.0, 2.0]), ".2f")
    with pytest.raises(TypeError):
        format(torch.tensor([1.0, 2.0]), ".2f")
