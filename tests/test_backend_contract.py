"""The backend contract's two parts (backends/base.py): the core every device implements in
full, and the nn kernels a device may lack, which Backend.lacks() reports."""

import pytest

from gradflow.backends.base import CORE_METHODS, NN_KERNELS, Backend, CoreBackend, NNKernels
from gradflow.backends.cpu import CPUBackend


def test_the_two_parts_cover_the_contract_once():
    assert not set(CORE_METHODS) & set(NN_KERNELS)
    public = {n for n in dir(Backend) if not n.startswith("_") and callable(getattr(Backend, n))}
    assert public - {"lacks"} == set(CORE_METHODS) | set(NN_KERNELS)
    assert all(n in vars(CoreBackend) for n in CORE_METHODS)
    assert all(n in vars(NNKernels) for n in NN_KERNELS)
    assert {"matmul", "reduce", "getitem", "unary"} <= set(CORE_METHODS)
    assert {"conv2d", "max_pool2d", "batch_norm_train"} <= set(NN_KERNELS)


def test_cpu_lacks_nothing():
    assert CPUBackend.lacks() == []


def test_lacks_without_arguments_lists_every_stub_in_contract_order():
    partial = type("Partial", (Backend,), {n: lambda self, *a: None for n in CORE_METHODS})
    assert partial.lacks() == list(NN_KERNELS)
    assert partial.lacks("matmul", "conv2d") == ["conv2d"]


def test_cuda_lacks_nothing():
    pytest.importorskip("gradflow._cuda")
    from gradflow.backends import cuda
    assert cuda.CUDABackend.lacks() == []


def test_cuda_has_every_fused_kernel():
    pytest.importorskip("gradflow._cuda")
    from gradflow.backends import cuda
    from gradflow.backends.base import FUSED_KERNELS, fused
    backend = cuda.CUDABackend()
    # CUDA composes these from its core kernels (unfold/fold: conv2d with a one-hot kernel)
    cpu_only = {"relu_backward", "axpy_", "unfold", "fold"}
    assert all(fused(backend, name) is not None for name in FUSED_KERNELS if name not in cpu_only)
