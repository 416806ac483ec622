"""Helpers for checking a gradflow module against its PyTorch twin: the same weights copied
across through NumPy (as a user loading a converted checkpoint would), then forward values
and gradients compared in float64.

Tests that need PyTorch carry the `needs_torch` mark and import it inside, so that the rest
of a file runs where PyTorch is missing.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import gradflow as gf

HAVE_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch is not installed")


def to_gf_state(torch_module) -> dict:
    """A torch state_dict as gradflow tensors (through NumPy)."""
    return {k: gf.tensor(v.detach().cpu().numpy()) for k, v in torch_module.state_dict().items()}


def to_torch_state(gf_module) -> dict:
    import torch

    return {k: torch.from_numpy(v.numpy().copy()) for k, v in gf_module.state_dict().items()}


def same_layout(gf_module, torch_module) -> None:
    """Registration order, key names and shapes of parameters, buffers and sub-modules."""
    assert [(k, tuple(v.shape)) for k, v in gf_module.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in torch_module.state_dict().items()]
    assert [k for k, _ in gf_module.named_parameters()] == \
        [k for k, _ in torch_module.named_parameters()]
    assert [k for k, _ in gf_module.named_modules()] == \
        [k for k, _ in torch_module.named_modules()]


def twin(gf_module, torch_module):
    """Both modules in float64 with torch's weights loaded into gradflow's (and checked to
    load back into torch)."""
    gf_module.double()
    torch_module.double()
    same_layout(gf_module, torch_module)
    gf_module.load_state_dict(to_gf_state(torch_module))
    torch_module.load_state_dict(to_torch_state(gf_module))
    return gf_module, torch_module


def pair(array: np.ndarray, requires_grad: bool = True):
    """The same float64 array as a gradflow and a torch tensor (leaves)."""
    import torch

    return (gf.tensor(array, dtype=gf.float64, requires_grad=requires_grad),
            torch.tensor(array, dtype=torch.float64, requires_grad=requires_grad))


def flat(out) -> list:
    """The tensors of a nested output (tuples of tensors), in order."""
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in flat(o)]
    return [] if out is None else [out]


def assert_close(a, b, tol: float = 1e-10) -> None:
    """A gradflow tensor against a torch tensor (or None against None)."""
    assert (a is None) == (b is None), (a, b)
    if a is not None:
        np.testing.assert_allclose(np.asarray(a.detach().numpy()),
                                   b.detach().cpu().numpy(), rtol=tol, atol=tol)


def check_forward_backward(gf_module, torch_module, gf_inputs, torch_inputs,
                           tol: float = 1e-10, gf_kwargs=None, torch_kwargs=None) -> None:
    """Outputs equal; then, after backward of the same random weighting of every output,
    the gradients of every input and parameter equal."""
    gf_outs = flat(gf_module(*gf_inputs, **(gf_kwargs or {})))
    torch_outs = flat(torch_module(*torch_inputs, **(torch_kwargs or {})))
    assert len(gf_outs) == len(torch_outs)
    rng = np.random.default_rng(0)
    gf_loss, torch_loss = 0.0, 0.0
    for a, b in zip(gf_outs, torch_outs):
        assert tuple(a.shape) == tuple(b.shape)
        assert_close(a, b, tol)
        w = rng.standard_normal(tuple(a.shape))
        gw, tw = pair(w, requires_grad=False)
        gf_loss = gf_loss + (a * gw).sum()
        torch_loss = torch_loss + (b * tw).sum()
    gf_loss.backward()
    torch_loss.backward()
    for a, b in zip(gf_inputs, torch_inputs):
        if isinstance(a, gf.Tensor) and a.requires_grad:
            assert_close(a.grad, b.grad, tol)
    gf_params = dict(gf_module.named_parameters())
    for name, p in torch_module.named_parameters():
        assert_close(gf_params[name].grad, p.grad, tol)
