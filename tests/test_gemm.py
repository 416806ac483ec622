"""Native GEMM (gradflow._C.gemm / _C.matmul) against NumPy.

Error bound used throughout: for a dot product of length k in precision eps,
|fl(c) - c| <= k * eps * (|alpha| * |op(A)| @ |op(B)| + |beta| * |C|), whatever the
summation order or FMA use, so the tolerance is that bound computed in float64.
"""

import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradflow import _C
from gradflow.backends.cpu import CPUBackend

PRIMES = [2, 3, 5, 7, 13, 17, 31, 67, 97, 127, 131, 257, 293]
dims = st.one_of(st.integers(1, 300), st.sampled_from(PRIMES))
small_dims = st.one_of(st.integers(1, 40), st.sampled_from([1, 6, 7, 16, 17]))
# The SIMD/thread fixtures set process-wide state that holds for every drawn example.
examples = settings(max_examples=25, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(params=[1, 2])
def threads(request):
    saved = _C.get_num_threads()
    _C.set_num_threads(request.param)
    yield request.param
    _C.set_num_threads(saved)


def operand(rng, shape, dtype, trans, pad):
    """A matrix whose op() has `shape`: stored transposed when `trans`, and as a view into a
    wider buffer (leading dimension > columns) when `pad`."""
    rows, cols = shape[::-1] if trans else shape
    buf = rng.standard_normal((rows + pad, cols + 2 * pad)).astype(dtype)
    return buf[pad : pad + rows, pad : pad + cols]


def reference(a, b, c0, trans_a, trans_b, alpha, beta):
    """Float64 result and the k * eps error bound (see module docstring)."""
    a64 = a.astype(np.float64).T if trans_a else a.astype(np.float64)
    b64 = b.astype(np.float64).T if trans_b else b.astype(np.float64)
    c64 = c0.astype(np.float64)
    exact = alpha * (a64 @ b64) + beta * c64
    scale = abs(alpha) * (np.abs(a64) @ np.abs(b64)) + abs(beta) * np.abs(c64)
    k = a64.shape[1]
    return exact, (k + 2) * np.finfo(a.dtype).eps * scale + np.finfo(a.dtype).tiny


def check_gemm(rng, dtype, m, n, k, trans_a, trans_b, alpha, beta, pad):
    a = operand(rng, (m, k), dtype, trans_a, pad)
    b = operand(rng, (k, n), dtype, trans_b, pad)
    c = operand(rng, (m, n), dtype, False, pad)
    c0 = c.copy()
    out = _C.gemm(a, b, c, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta)
    assert out is c
    exact, tol = reference(a, b, c0, trans_a, trans_b, alpha, beta)
    assert np.all(np.abs(c - exact) <= tol), np.max(np.abs(c - exact) / tol)


@examples
@given(m=dims, n=dims, k=dims, trans_a=st.booleans(), trans_b=st.booleans(),
       pad=st.sampled_from([0, 3]), seed=st.integers(0, 2**31))
def test_gemm_float64_matches_numpy(simd, threads, m, n, k, trans_a, trans_b, pad, seed):
    rng = np.random.default_rng(seed)
    check_gemm(rng, np.float64, m, n, k, trans_a, trans_b, 1.5, -0.5, pad)


@examples
@given(m=dims, n=dims, k=dims, trans_a=st.booleans(), trans_b=st.booleans(),
       alpha=st.sampled_from([1.0, -2.0]), beta=st.sampled_from([0.0, 1.0, 0.25]),
       seed=st.integers(0, 2**31))
def test_gemm_float32_within_rounding_bound(simd, threads, m, n, k, trans_a, trans_b, alpha, beta,
                                            seed):
    rng = np.random.default_rng(seed)
    check_gemm(rng, np.float32, m, n, k, trans_a, trans_b, alpha, beta, pad=1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_large_k_crosses_every_block(simd, threads, dtype):
    """Several KC and MC blocks, and more columns than one NC panel."""
    rng = np.random.default_rng(1)
    check_gemm(rng, dtype, 301, 4099, 600, False, True, 1.0, 1.0, pad=0)


def test_transposed_numpy_views_are_not_copied_and_c_may_be_transposed():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((37, 53))
    y = rng.standard_normal((29, 37))
    out = _C.gemm(x.T, y.T)  # (53, 37) @ (37, 29): column-major views
    np.testing.assert_allclose(out, x.T @ y.T, rtol=1e-12, atol=1e-12)
    ct = np.zeros((29, 53)).T  # a column-major (53, 29) output, written in place
    _C.gemm(x.T, y.T, ct, alpha=2.0)
    np.testing.assert_allclose(ct, 2.0 * (x.T @ y.T), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_C.gemm(y.T, x.T, trans_a=True, trans_b=True), y @ x,
                               rtol=1e-12, atol=1e-12)


def test_beta_zero_ignores_nan_in_c():
    a, b = np.ones((5, 3)), np.ones((3, 4))
    c = np.full((5, 4), np.nan)
    _C.gemm(a, b, c, beta=0.0)
    np.testing.assert_array_equal(c, np.full((5, 4), 3.0))


@pytest.mark.parametrize("m,n,k", [(0, 4, 3), (4, 0, 3), (4, 5, 0), (0, 0, 0)])
def test_zero_size_dimensions(m, n, k):
    a, b = np.ones((m, k)), np.ones((k, n))
    c = np.full((m, n), 2.0)
    _C.gemm(a, b, c, beta=3.0)
    np.testing.assert_array_equal(c, np.full((m, n), 6.0 if k == 0 else 2.0 * 3 + k))
    out = _C.gemm(a, b)
    assert out.shape == (m, n) and out.dtype == np.float64
    np.testing.assert_array_equal(out, np.full((m, n), float(k)))


@examples
@given(batch=st.integers(1, 5), m=small_dims, n=small_dims, k=small_dims,
       trans_a=st.booleans(), trans_b=st.booleans(), bcast=st.sampled_from(["", "a", "b"]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**31))
def test_batched_matmul_with_views(threads, batch, m, n, k, trans_a, trans_b, bcast, dtype, seed):
    """_C.matmul on 3-D views: transposed matrices and stride-0 (broadcast) batches."""
    rng = np.random.default_rng(seed)

    def make(rows, cols, trans, shared):
        count = 1 if shared else batch
        x = rng.standard_normal((count, cols, rows) if trans else (count, rows, cols))
        x = x.astype(dtype).transpose(0, 2, 1) if trans else x.astype(dtype)
        return np.broadcast_to(x, (batch, rows, cols))

    a = make(m, k, trans_a, bcast == "a")
    b = make(k, n, trans_b, bcast == "b")
    out = _C.matmul(a, b)
    exact = np.matmul(a.astype(np.float64), b.astype(np.float64))
    tol = (k + 2) * np.finfo(dtype).eps * np.matmul(np.abs(a), np.abs(b)).astype(np.float64)
    assert out.dtype == dtype and out.shape == (batch, m, n)
    assert np.all(np.abs(out - exact) <= tol + np.finfo(dtype).tiny)


def test_backend_matmul_broadcasts_without_materialising():
    rng = np.random.default_rng(3)
    be = CPUBackend()
    a = rng.standard_normal((2, 3, 7, 5))
    b = rng.standard_normal((5, 6))
    w = rng.standard_normal((4, 5))
    cases = [(a, w.T), (a[:, :, ::2, :], w.T), (w, a.transpose(0, 1, 3, 2)), (a[0], b[None])]
    for x, y in cases:
        np.testing.assert_allclose(be.matmul(x, y), np.matmul(x, y), rtol=1e-12, atol=1e-12)


def test_batched_gemm_inside_threads_matches_loop():
    """batch >= threads runs one product per thread (each GEMM serial inside the region)."""
    rng = np.random.default_rng(4)
    a = rng.standard_normal((8, 70, 90)).astype(np.float32)
    b = rng.standard_normal((8, 90, 50)).astype(np.float32)
    saved = _C.get_num_threads()
    _C.set_num_threads(2)
    try:
        out = _C.matmul(a, b)
    finally:
        _C.set_num_threads(saved)
    np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-4, atol=1e-4)


def test_bad_input_raises_with_names_and_shapes():
    a, b = np.ones((3, 4)), np.ones((4, 5))
    with pytest.raises(TypeError, match="gemm: a must have dtype float32 or float64, got int64"):
        _C.gemm(np.ones((3, 4), np.int64), b)
    with pytest.raises(TypeError, match="gemm: b must have dtype float64 like a, got float32"):
        _C.gemm(a, b.astype(np.float32))
    with pytest.raises(ValueError, match=r"gemm: shapes \(3, 4\) and \(5, 4\) cannot be"):
        _C.gemm(a, np.ones((5, 4)))
    with pytest.raises(ValueError, match=r"gemm: shapes \(3, 4\).T and \(4, 5\) cannot"):
        _C.gemm(a, b, trans_a=True)
    with pytest.raises(ValueError, match=r"gemm: a must be 2-D, got shape \(4,\)"):
        _C.gemm(np.ones(4), b)
    with pytest.raises(ValueError, match=r"gemm: b must have unit stride along one of its last "
                                         r"two axes, got strides \(80, 16\) bytes for shape"):
        _C.gemm(a, np.ones((4, 10))[:, ::2])
    with pytest.raises(ValueError, match=r"gemm: c must have shape \(3, 5\), got \(5, 3\)"):
        _C.gemm(a, b, np.ones((5, 3)))
    with pytest.raises(TypeError, match="gemm: c must have dtype float64 like a, got float32"):
        _C.gemm(a, b, np.ones((3, 5), np.float32))
    c = np.ones((3, 5))
    c.flags.writeable = False
    with pytest.raises(ValueError, match="gemm: c must be writable"):
        _C.gemm(a, b, c)
    buf = np.ones((4, 5))
    with pytest.raises(ValueError, match="gemm: c must not overlap a or b"):
        _C.gemm(buf[:, :4], b, buf)
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3, 4\) and \(2, 5, 6\) cannot be"):
        _C.matmul(np.ones((2, 3, 4)), np.ones((2, 5, 6)))
    with pytest.raises(ValueError, match=r"matmul: a must be 3-D, got shape \(3, 4\)"):
        _C.matmul(a, np.ones((1, 4, 5)))
    with pytest.raises(ValueError, match="fma_peak_gflops: seconds must be in"):
        _C.fma_peak_gflops(-1.0)


def test_fma_peak_is_measured():
    peak = _C.fma_peak_gflops(0.01)
    assert peak > 0.0 if _C.cpu_has_avx2_fma() else peak == 0.0


def test_simd_levels_cap_the_kernels():
    levels = _C.simd_levels()
    assert levels[0] == "portable" and _C.simd_level() == levels[-1]
    assert ("avx2+fma" in levels) == _C.cpu_has_avx2_fma()
    try:
        for level in levels:
            _C.cap_simd(level)
            assert _C.simd_level() == level
        _C.cap_simd("avx512")  # a cap above the CPU's level leaves its own
        assert _C.simd_level() == levels[-1]
        with pytest.raises(ValueError, match="cap_simd: unknown SIMD level 'sse9'"):
            _C.cap_simd("sse9")
    finally:
        _C.cap_simd(levels[-1])


# ---------------------------------------------------------------- blocking boundary sweep
# The blocking csrc/cpu/gemm.cpp uses (micro-tile MR x NR, blocks MC, KC, NC; with one A
# block, B panels of kNarrowPanelBytes = 128 KiB, i.e. 32768 / kc floats or 16384 / kc
# doubles wide):
#   AVX-512 float 12 x 32, MC 120, NC 2048;  AVX-512 double 12 x 16, MC 60, NC 1024;  KC 1024;
#   AVX2 float 6 x 16, MC 144;  AVX2 double 6 x 8, MC 72;  KC 256, NC 4080;
#   portable 4 x 8 / 4 x 4, MC 128, KC 256, NC 4096.
# Every threshold is crossed just below, at and just above; a packing buffer sized for fewer
# columns than a panel holds shows up here (and as a report under AddressSanitizer).
SWEEP_K = [1, 255, 256, 257, 1023, 1024, 1025]  # KC: AVX2 and portable 256, AVX-512 1024
SWEEP_M = [1, 5, 6, 7, 11, 12, 13, 59, 60, 61, 71, 72, 73, 119, 120, 121, 127, 128, 129, 143,
           144, 145]
SWEEP_N = [15, 16, 17, 31, 32, 33, 1023, 1024, 1025, 2047, 2048, 2049, 4079, 4080, 4081, 4095,
           4096, 4097, 5000]


def narrow_panel_widths(k, dtype):
    """The narrow B panel width (and neighbours) for every micro-tile width NR in use."""
    per_kc = (128 * 1024 // np.dtype(dtype).itemsize) // k
    return sorted({max(nr, per_kc // nr * nr) + d for nr in (4, 8, 16, 32) for d in (-1, 0, 1)})


def sweep_cases(dtype):
    """(m, n, k) triples: small k against every m and large n (the narrow-panel path), then
    m thresholds at k across KC, and n thresholds in and past it."""
    cases = set()
    for k in range(1, 18):
        for m in (1, 7, 72, 73, 144, 145):
            cases.update((m, n, k) for n in (4095, 4096, 4097, 5000))
        cases.update((9, n, k) for n in narrow_panel_widths(k, dtype) if n <= 40000)
    for k in SWEEP_K:
        cases.update((m, n, k) for m in SWEEP_M for n in (15, 16, 17, 31, 32, 33))
    for k in (1, 257, 1025):  # the n thresholds with one KC block, and past each KC
        cases.update((m, n, k) for m in (1, 121, 145) for n in SWEEP_N)
    return sorted(cases)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_blocking_boundary_sweep(dtype):
    """Each case on both micro-kernel paths and on 1 and 2 threads, against one reference."""
    check_everywhere(sweep_cases(dtype), dtype, seed=5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_native_kernels_take_equal_dtype_copies(dtype):
    # An unpickled array carries an equal copy of NumPy's dtype, not the same object; the
    # bindings must take it (and pick the float64 kernel for float64).
    a = pickle.loads(pickle.dumps(np.arange(6, dtype=dtype).reshape(2, 3)))
    c = _C.gemm(a, a, trans_b=True)
    assert c.dtype == dtype
    np.testing.assert_allclose(c, a @ a.T)


def check_everywhere(cases, dtype, seed):
    """Each (m, n, k) at every SIMD level and on 1 and 2 threads against one float64 reference;
    transposes, padding and beta vary with the case's position."""
    rng = np.random.default_rng(seed)
    saved = _C.get_num_threads()
    try:
        for i, (m, n, k) in enumerate(cases):
            trans_a, trans_b, pad = bool(i & 1), bool(i & 2), (i >> 2) % 2
            beta = 0.5 if i % 3 else 0.0
            a = operand(rng, (m, k), dtype, trans_a, pad)
            b = operand(rng, (k, n), dtype, trans_b, pad)
            c0 = operand(rng, (m, n), dtype, False, pad)
            exact, tol = reference(a, b, c0, trans_a, trans_b, 1.0, beta)
            for level in _C.simd_levels():
                _C.cap_simd(level)
                for threads in (1, 2):
                    _C.set_num_threads(threads)
                    c = c0.copy()
                    _C.gemm(a, b, c, trans_a=trans_a, trans_b=trans_b, beta=beta)
                    bad = np.abs(c - exact) > tol
                    assert not bad.any(), (m, n, k, trans_a, trans_b, pad, level, threads)
    finally:
        _C.cap_simd(_C.simd_levels()[-1])
        _C.set_num_threads(saved)
