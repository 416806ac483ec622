"""copy.deepcopy of tensors (needed to deep-copy modules and optimizer state)."""

import copy

import numpy as np
import pytest

import gradflow as gf


def test_deepcopy_leaf_copies_storage_flags_and_grad():
    x = gf.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    y = copy.deepcopy(x)
    assert y is not x and y.requires_grad and y.is_leaf
    assert np.array_equal(y.detach().numpy(), [1.0, 2.0])
    assert np.array_equal(y.grad.numpy(), [3.0, 3.0]) and y.grad is not x.grad
    with gf.no_grad():
        y.fill_(0)
    assert x.detach().numpy().tolist() == [1.0, 2.0]
    pair = copy.deepcopy([x, x])
    assert pair[0] is pair[1]  # the memo keeps aliasing


def test_deepcopy_non_leaf_raises():
    x = gf.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(x * 2)
