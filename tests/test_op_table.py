"""The op tables (gradflow/op_table.py) against everything that implements their ops."""

import math
import re
from pathlib import Path

import numpy as np
import pytest

import gradflow as gf
from gradflow import op_table
from gradflow.backends import base
from gradflow.backends.cpu import _BINARY, _REDUCE, _UNARY

CUDA_SOURCES = Path(__file__).resolve().parents[1] / "csrc" / "cuda"
# Where each family's X-macro list is: the unary one beside its kernels, with each kernel's
# dtype class (X(exp, float_only)); the binary and reduction ones in kernels.h (X(add)).
_LISTS = {"unary": "elementwise.cu", "binary": "kernels.h", "reduce": "kernels.h"}
_DTYPE_CLASSES = {"float_only": op_table.FLOAT, "int_ok": op_table.INT,
                  "bool_result": op_table.BOOL}


def _source_list(family: str):
    """The (name, dtype class or None) entries of a family's X-macro list in the CUDA source."""
    path = CUDA_SOURCES / _LISTS[family]
    m = re.search(rf"#define GRADFLOW_{family.upper()}_OPS\(X\)((?:[^\n]*\\\n)*[^\n]*)",
                  path.read_text())
    assert m, f"GRADFLOW_{family.upper()}_OPS not found in {path}"
    return [(name, _DTYPE_CLASSES.get(dtypes)) for name, dtypes in
            re.findall(r"X\((\w+)(?:, (\w+))?\)", m.group(1))]


def _native_names(family: str):
    """The CUDA kernel names of a family ("unary", "binary", "reduce"): exported by the built
    module as _cuda.<family>_ops, else read from the X-macro list that both the enum and the
    module's name lookup are made from."""
    try:
        from gradflow import _cuda
    except ImportError:
        return tuple(name for name, _ in _source_list(family))
    return tuple(getattr(_cuda, f"{family}_ops"))


def test_cuda_unary_kernels_take_their_rows_dtype_class():
    """The CUDA binding checks dtypes by each kernel's class; the backend converts by the row's."""
    try:
        from gradflow import _cuda
        native = dict(_cuda.unary_dtypes)
    except ImportError:
        native = dict(_source_list("unary"))
    assert native == {row.name: row.dtype for row in op_table.UNARY}


@pytest.mark.parametrize("family, table", [("unary", op_table.UNARY),
                                           ("binary", op_table.BINARY),
                                           ("reduce", op_table.REDUCE)])
def test_cuda_kernel_names_match_the_table(family, table):
    native = _native_names(family)
    rows = op_table.names(table)
    assert len(set(native)) == len(native), f"duplicate {family} kernel names: {native}"
    assert len(set(rows)) == len(rows), f"duplicate {family} rows: {rows}"
    assert set(rows) - set(native) == set(), f"{family} rows without a CUDA kernel"
    assert set(native) - set(rows) == set(), f"{family} CUDA kernels without a row"


def test_binary_kernels_put_bool_results_last():
    # elementwise.cu tests `op >= Binary::eq` for a bool result
    native = _native_names("binary")
    first_bool = native.index("eq")
    assert set(native[first_bool:]) == set(op_table.names(op_table.BINARY, op_table.BOOL))


def test_contract_and_cpu_dispatch_come_from_the_table():
    assert base.UNARY_OPS == op_table.names(op_table.UNARY)
    assert base.BINARY_OPS == op_table.names(op_table.BINARY)
    assert base.REDUCE_OPS == op_table.names(op_table.REDUCE)
    assert set(_UNARY) == set(base.UNARY_OPS)
    assert set(_BINARY) == set(base.BINARY_OPS)
    assert set(_REDUCE) == set(base.REDUCE_OPS)


@pytest.mark.parametrize("row", op_table.UNARY, ids=lambda r: r.name)
def test_every_unary_row_is_a_function_and_a_method(row):
    x = gf.tensor([0.5, 1.5, 2.0])
    assert getattr(gf, row.name) is getattr(gf.Tensor, row.name)
    y = getattr(x, row.name)()
    assert y.dtype is (gf.bool if row.dtype == op_table.BOOL else gf.float32)
    ints = getattr(gf, row.name)(gf.tensor([1, 2, 3]))
    expected = {op_table.BOOL: gf.bool, op_table.INT: gf.int64, op_table.FLOAT: gf.float32}
    assert ints.dtype is expected[row.dtype]


@pytest.mark.parametrize("row", [r for r in op_table.UNARY if r.grad is not None],
                         ids=lambda r: r.name)
def test_unary_derivative_matches_finite_differences(row):
    x0 = np.array([0.3, 0.7, 1.9], np.float64)  # away from the kinks of abs, relu, round, ...
    x = gf.tensor(x0, requires_grad=True)
    getattr(x, row.name)().sum().backward()
    h = 1e-6
    f = _UNARY[row.name]
    numeric = (f(x0 + h) - f(x0 - h)) / (2 * h)
    np.testing.assert_allclose(x.grad.numpy(), numeric, rtol=1e-5, atol=1e-8)


def test_unary_derivatives_are_differentiable():
    x = gf.tensor([0.4, 1.2], dtype=gf.float64, requires_grad=True)
    (g,) = gf.autograd.grad(x.sigmoid().sum(), x, create_graph=True)
    (gg,) = gf.autograd.grad(g.sum(), x)
    s = 1 / (1 + np.exp(-x.detach().numpy()))
    np.testing.assert_allclose(gg.numpy(), s * (1 - s) * (1 - 2 * s), rtol=1e-10)
    assert not math.isnan(float(gg.sum()))


@pytest.mark.parametrize("name", op_table.UNARY_INPLACE)
def test_every_value_unary_row_has_an_in_place_method(name):
    op = name[:-1]
    assert op_table.UNARY_BY_NAME[op].dtype != op_table.BOOL
    x0 = np.array([[0.3, 0.7], [1.9, 2.5]])
    x = gf.tensor(x0)
    version = x._version[0]
    assert getattr(x, name)() is x and x._version[0] == version + 1
    np.testing.assert_allclose(x.numpy(), getattr(gf, op)(gf.tensor(x0)).numpy(), rtol=1e-12)
    # on a non-leaf, the history is the out-of-place op's: the same gradient
    leaf = gf.tensor(x0, requires_grad=True)
    getattr(leaf * 1.0, name)().sum().backward()
    expected = gf.tensor(x0, requires_grad=True)
    getattr(expected, op)().sum().backward()
    np.testing.assert_allclose(leaf.grad.numpy(), expected.grad.numpy(), rtol=1e-12)
    with pytest.raises(RuntimeError, match=f"{name}: a leaf Variable"):
        getattr(gf.tensor(x0, requires_grad=True), name)()
    ints = gf.tensor([1, 2])
    if op_table.UNARY_BY_NAME[op].dtype == op_table.FLOAT:  # a float result: not into int64
        with pytest.raises(RuntimeError, match=f"{name}: result type"):
            getattr(ints, name)()
    else:
        np.testing.assert_array_equal(getattr(ints, name)().numpy(),
                                      getattr(gf, op)(gf.tensor([1, 2])).numpy())


def test_only_value_rows_have_an_in_place_method():
    for row in op_table.UNARY:
        assert hasattr(gf.Tensor, row.name + "_") == (row.dtype != op_table.BOOL), row.name
