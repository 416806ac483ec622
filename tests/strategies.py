"""Hypothesis strategies shared by the test files: shapes (size-1 and zero-size dims
included), broadcastable shape pairs, arrays that may be non-contiguous, dtypes.

Arrays are NumPy arrays; `gradflow.from_numpy` wraps them without a copy, so a
non-contiguous array becomes a non-contiguous tensor.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradflow as gf

Shape = Tuple[int, ...]

FLOAT_DTYPES = (np.float32, np.float64)

# Devices to parametrize a test by: the CUDA case carries the `cuda` marker (skipped without
# a GPU by conftest.py).
DEVICES = ("cpu", pytest.param("cuda", marks=pytest.mark.cuda))
ALL_DTYPES = (np.float32, np.float64, np.int64, np.bool_)
GF_DTYPES = {np.float32: gf.float32, np.float64: gf.float64, np.int64: gf.int64,
             np.bool_: gf.bool}


def shapes(min_dims: int = 0, max_dims: int = 4, min_side: int = 0, max_side: int = 4):
    """Shapes with sides in [min_side, max_side]: 0 and 1 are drawn often."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def nonempty_shapes(min_dims: int = 0, max_dims: int = 4, max_side: int = 4):
    return shapes(min_dims, max_dims, 1, max_side)


def broadcastable_pairs(min_dims: int = 0, max_dims: int = 4, min_side: int = 0,
                        max_side: int = 4):
    """(shape_a, shape_b) that broadcast together (size-1 dims and missing leading dims)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    ).map(lambda r: r.input_shapes)


def dtypes(choices=ALL_DTYPES):
    return st.sampled_from(choices)


def _elements(dtype, low: float, high: float):
    if dtype == np.bool_:
        return st.booleans()
    if dtype == np.int64:
        return st.integers(int(low), int(high))
    if dtype == np.float32:  # bounds must be float32 values, taken inside [low, high]
        lo32, hi32 = np.float32(low), np.float32(high)
        low = float(lo32 if lo32 >= low else np.nextafter(lo32, np.float32(np.inf)))
        high = float(hi32 if hi32 <= high else np.nextafter(hi32, np.float32(-np.inf)))
        return st.floats(low, high, allow_nan=False, allow_infinity=False, width=32)
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


@st.composite
def arrays(draw, shape, dtype=np.float64, low: float = -3.0, high: float = 3.0,
           layout: str = "any") -> np.ndarray:
    """An array of `shape`; with layout 'any' it may be a transposed or step-sliced view.

    layout: 'contiguous', 'transposed' (made as the transpose of an array of the reversed
    shape), 'strided' (every second element, forwards or backwards, of a bigger array) or 'any'.
    """
    shape = tuple(shape)
    if layout == "any":
        layout = draw(st.sampled_from(("contiguous", "transposed", "strided")))
    elements = _elements(dtype, low, high)
    if layout == "transposed":
        base = draw(hnp.arrays(dtype, shape[::-1], elements=elements))
        return np.asarray(base.T)  # (indexing a 0-d array gives a NumPy scalar)
    if layout == "strided":
        step = draw(st.sampled_from((2, -2)))
        base = draw(hnp.arrays(dtype, tuple(2 * s for s in shape), elements=elements))
        return np.asarray(base[tuple(slice(None, None, step) for _ in shape)])
    return np.asarray(draw(hnp.arrays(dtype, shape, elements=elements)))


@st.composite
def shaped_arrays(draw, shape_strategy=None, dtype=np.float64, low=-3.0, high=3.0,
                  layout="any") -> np.ndarray:
    """An array of a drawn shape (see `arrays`)."""
    shape = draw(shape_strategy if shape_strategy is not None else shapes())
    return draw(arrays(shape, dtype, low, high, layout))


@st.composite
def array_pairs(draw, dtype=np.float64, low=-3.0, high=3.0, max_dims=4, min_side=0,
                max_side=4):
    """Two arrays of mutually broadcastable shapes."""
    sa, sb = draw(broadcastable_pairs(0, max_dims, min_side, max_side))
    return draw(arrays(sa, dtype, low, high)), draw(arrays(sb, dtype, low, high))


@st.composite
def array_and_dims(draw, shape_strategy=None, dtype=np.float64, low=-3.0, high=3.0):
    """(array, dim) where dim is None, an int or a tuple of distinct ints (negatives too)."""
    a = draw(shaped_arrays(shape_strategy, dtype, low, high))
    nd = max(a.ndim, 1)
    kind = draw(st.sampled_from(("none", "int", "tuple")))
    if kind == "none" or a.ndim == 0:
        return a, None
    if kind == "int":
        return a, draw(st.integers(-nd, nd - 1))
    axes = draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True))
    return a, tuple(ax - nd if draw(st.booleans()) else ax for ax in axes)


def axes_tuple(dim, ndim: int):
    """NumPy's axis argument for gradflow's dim argument."""
    if dim is None:
        return None
    return dim if isinstance(dim, tuple) else (dim,)


def to_gf(a: np.ndarray, requires_grad: bool = False) -> "gf.Tensor":
    """A tensor sharing `a`'s memory (layout included), optionally requiring grad."""
    t = gf.from_numpy(a)
    return t.requires_grad_(True) if requires_grad else t
