"""The CPU binding layer (csrc/bind_cpu.cpp, bind_util.h, bind_geometry.h) called directly:
every entry point runs for both float dtypes, and each validation path raises the promised
exception naming the op, the argument and the shapes."""

from __future__ import annotations

import re

import numpy as np
import pytest

from gradflow import _C

F32, F64 = np.float32, np.float64


def _ones(*shape, dtype=F64):
    return np.ones(shape, dtype)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_unary_table_binds_each_kernel_for_both_dtypes(dtype):
    assert _C.unary_ops == ("erf", "relu")
    x = np.linspace(-2, 2, 7).astype(dtype)
    for name, ref in [("erf", None), ("relu", np.maximum(x, 0))]:
        y = getattr(_C, name)(x)
        assert y.dtype == dtype and y.shape == x.shape
        if ref is not None:
            np.testing.assert_array_equal(y, ref)
    np.testing.assert_allclose(_C.erf(np.array([0.5], dtype)), [0.5204998778], rtol=1e-6)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_float_entry_points_return_their_input_dtype(dtype):
    x = np.arange(24, dtype=dtype).reshape(1, 2, 3, 4)
    assert _C.channel_sum(x).dtype == dtype
    np.testing.assert_array_equal(_C.channel_sum(x), x.sum(axis=(0, 2, 3)))
    pooled = _C.adaptive_avg_pool2d(x, (1, 1))
    np.testing.assert_allclose(pooled.ravel(), x.mean(axis=(2, 3)).ravel(), rtol=1e-6)
    back = _C.adaptive_avg_pool2d_backward(np.ones((1, 2, 1, 1), dtype), (3, 4))
    np.testing.assert_allclose(back, np.full((1, 2, 3, 4), 1 / 12, dtype), rtol=1e-6)
    a = np.arange(6, dtype=dtype).reshape(3, 2)
    np.testing.assert_allclose(_C.matmul(np.stack([a.T, a.T]), np.stack([a, a]))[1], a.T @ a)


def _ro(a):
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("call, error, message", [
    (lambda: _C.erf(np.ones(3, np.int64)), TypeError,
     "erf: input must have dtype float32, got int64"),
    (lambda: _C.relu(np.ones((4, 4), F32).T), ValueError, "relu: input must be C-contiguous"),
    (lambda: _C.axpy_(_ones(4), 1.0, _ones(8)), ValueError,
     "axpy_: y (4,) must have as many elements as (8,)"),
    (lambda: _C.axpy_(_ro(_ones(8)), 1.0, _ones(8)), ValueError, "axpy_: y must be writable"),
    (lambda: _C.axpy_(_ones(8, dtype=F32), 1.0, _ones(8)), TypeError,
     "axpy_: x must have dtype float32, got float64"),  # y's dtype picks the instance
    (lambda: _C.max_unpool2d(_ones(1, 1, 2, 2), np.zeros((1, 1, 2, 1), np.int64), (4, 4)),
     ValueError, "max_unpool2d: indices (1, 1, 2, 1) and input (1, 1, 2, 2) must have the same "
                 "shape"),
    (lambda: _C.max_pool2d_backward(_ones(1, 1, 2, 2), np.zeros((1, 1, 2, 2), F64), (4, 4)),
     TypeError, "max_pool2d_backward: indices must have dtype int64, got float64"),
    (lambda: _C.batch_norm_backward(_ones(2, 3, 4), _ones(2, 3, 5), _ones(3), _ones(3), None,
                                    True, (True, False, False)),
     ValueError, "batch_norm_backward: grad_output (2, 3, 5) and input (2, 3, 4) must have the "
                 "same shape"),
    (lambda: _C.batch_norm_apply(_ones(2, 3, 4), _ones(2), _ones(3), None, None), ValueError,
     "batch_norm: mean must have shape (3,), got (2,)"),
    (lambda: _C.batch_norm_forward_train(_ones(0, 3, 4), None, None, 1e-5), ValueError,
     "batch_norm: expected at least 1 value per channel, got input (0, 3, 4)"),
    (lambda: _C.adaptive_avg_pool2d_backward(_ones(1, 1, 2, 2), (0, 4)), ValueError,
     "adaptive_avg_pool2d_backward: input_size must be >= 1, got (0, 4)"),
    (lambda: _C.adaptive_max_pool2d(_ones(1, 1, 4, 4), (2, 0)), ValueError,
     "adaptive_max_pool2d: output_size must be >= 1, got (2, 0)"),
    (lambda: _C.avg_pool2d_backward(_ones(1, 1, 3, 3), (4, 4), (2, 2), (2, 2), (0, 0), False,
                                    True, 0),
     ValueError,
     "avg_pool2d_backward: grad_output (1, 1, 3, 3) does not match input size (4, 4)"),
    (lambda: _C.fold(_ones(1, 6, 4), (3, 3), (2, 2), (1, 1), (0, 0), (1, 1)), ValueError,
     "fold: input (1, 6, 4): dimension 1 must be a multiple of the kernel area 4"),
    (lambda: _C.fold(_ones(1, 8, 3), (3, 3), (2, 2), (1, 1), (0, 0), (1, 1)), ValueError,
     "fold: input (1, 8, 3) has 3 blocks, but output size (3, 3) has 2 * 2"),
    (lambda: _C.fold(_ones(1, 4, 4), (3, 3), (2, 2), (0, 1), (0, 0), (1, 1)), ValueError,
     "fold: stride must be >= 1, got (0, 1)"),
    (lambda: _C.unfold(_ones(1, 1, 3, 3), (2, 2), (1, 1), (-1, 0), (1, 1)), ValueError,
     "unfold: padding must be >= 0, got (-1, 0)"),
    (lambda: _C.max_pool2d(_ones(1, 1, 4, 4), (2, 2), (1, 1), (0, 0), (0, 1), False),
     ValueError, "max_pool2d: dilation must be >= 1, got (0, 1)"),
    (lambda: _C.max_pool2d(_ones(1, 1, 4, 4), (2, 2), (1, 1), (0, 0), (2**31, 1), False),
     ValueError, "max_pool2d: dilation must be below 2^31, got (2147483648, 1)"),
    (lambda: _C.conv2d_backward_input(_ones(1, 1, 2, 2), _ones(1, 1, 1, 1), (2**31 - 1, 2**31),
                                      (1, 1), (0, 0), (1, 1), 1),
     ValueError, "conv2d_backward_input: input_size must be below 2^31, got (2147483647, "
                 "2147483648)"),
])
def test_binding_validation_names_op_argument_and_shapes(call, error, message):
    with pytest.raises(error, match="^" + re.escape(message)):
        call()
