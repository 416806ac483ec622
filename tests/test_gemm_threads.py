"""The GEMM's cut-overs against NumPy: the direct small kernel, the split between threads and
the panel widths, each crossed just below, at and just above, on both SIMD paths, 1 and 2
threads, float32 and float64, with transposed and padded (non-contiguous) operands.

The thresholds, from csrc/cpu/gemm.cpp:
  direct kernel: m*n*k <= 128 (kSmallVolume), or m == 1, or n == 1 with op(A) = A, up to
  m*n*k <= 65536 (kSmallVectorVolume);
  threads: a second thread from 2*m*n*k >= 3e6 flops (kMinFlopsPerThread = 1.5e6);
  split m or n by plan_gemm's cost model; per thread whole MR x NR tiles (AVX2 6 x 16 float,
  6 x 8 double; portable 4 x 8 / 4 x 4); blocks MC 144 / 72 (AVX2 float / double), 128
  (portable), KC 256, NC 4080 / 4096; narrow B panels of 128 KiB when n is split.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from test_gemm import check_everywhere

from gradflow import _C


def all_transposes(shapes):
    """Every shape four times in a row, so that check_everywhere gives it each transpose."""
    return [s for s in shapes for _ in range(4)]


SMALL_CASES = all_transposes([
    (1, 1, 1), (2, 2, 2), (5, 5, 5), (3, 3, 14), (2, 3, 21),  # m*n*k below 128
    (4, 4, 8), (2, 4, 16), (2, 64, 1), (8, 16, 1),  # at 128
    (3, 43, 1), (4, 4, 9), (2, 2, 33), (6, 6, 6),  # just above
])
VECTOR_CASES = all_transposes([
    (1, 255, 257), (1, 256, 256), (1, 257, 256), (1, 1, 65535), (1, 1, 65536), (1, 1, 65537),
    (255, 1, 257), (256, 1, 256), (257, 1, 256), (1, 16, 4097), (16, 1, 4097),
])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_kernel_cutover(dtype):
    check_everywhere(SMALL_CASES, dtype, seed=1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vector_kernel_cutover(dtype):
    check_everywhere(VECTOR_CASES, dtype, seed=2)


def test_small_kernel_beta_zero_ignores_nan_and_alpha_scales():
    for m, n, k in [(2, 2, 2), (1, 40, 30), (40, 1, 30)]:
        for trans_b in (False, True):
            a = np.arange(m * k, dtype=np.float64).reshape(m, k)
            b = np.ones((n, k)) if trans_b else np.ones((k, n))
            c = np.full((m, n), np.nan)
            _C.gemm(a, b, c, trans_b=trans_b, alpha=-2.0, beta=0.0)
            np.testing.assert_array_equal(c, -2.0 * (a @ (b.T if trans_b else b)))


# Around the second thread (2*m*n*k = 3e6), per-thread tiles (a thread may get no rows or
# no columns), MC, KC, NC and the narrow panels of a split n.
THREAD_CASES = all_transposes([
    (100, 100, 149), (100, 100, 150), (100, 100, 151),
    (7, 3000, 80), (12, 3000, 80), (13, 3000, 80), (6, 2000, 130),  # split n: few rows
    (64, 3136, 60), (144, 2000, 40), (145, 2000, 40),
    (3000, 7, 80), (3000, 17, 80), (3000, 33, 80), (2000, 16, 50),  # split m: few columns
    (289, 290, 255), (290, 289, 256), (291, 291, 257),  # KC
    (143, 600, 513), (144, 600, 40), (145, 600, 40), (288, 300, 40), (289, 300, 40),  # MC
    (73, 16, 2000), (88, 16, 2000), (200, 2000, 30),  # split n with two A blocks (AVX2 double)
    (200, 4079, 5), (200, 4080, 5), (200, 4081, 5), (200, 4097, 5),  # NC
])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_thread_split_and_blocking(dtype):
    check_everywhere(THREAD_CASES, dtype, seed=3)


def test_narrow_panels_of_a_split_n():
    """Per-thread column ranges around the narrow panel width (128 KiB / (kc * itemsize),
    a multiple of NR) at two depths."""
    cases = []
    for k, itemsize in [(64, 4), (64, 8), (200, 4), (200, 8)]:
        width = (128 * 1024 // itemsize) // k
        for nr in (4, 8, 16):
            w = width // nr * nr
            cases += [(20, 2 * n, k) for n in (w - 1, w, w + 1, 2 * w + 1)]
    check_everywhere(sorted(set(cases)), np.float32, seed=4)
    check_everywhere(sorted(set(cases)), np.float64, seed=5)


def test_products_inside_a_parallel_batch_stay_serial():
    """A batch of products large enough for two threads each runs one product per thread;
    each GEMM then runs alone, its barriers skipped."""
    rng = np.random.default_rng(6)
    a = rng.standard_normal((4, 150, 170))
    b = rng.standard_normal((4, 170, 160)).transpose(0, 2, 1).copy().transpose(0, 2, 1)
    saved = _C.get_num_threads()
    try:
        for threads in (1, 2):
            _C.set_num_threads(threads)
            np.testing.assert_allclose(_C.matmul(a, b), np.matmul(a, b), rtol=1e-12,
                                       atol=1e-11)
    finally:
        _C.set_num_threads(saved)


SMALLER_TEAM = """
import numpy as np
from gradflow import _C
_C.set_num_threads(2)
rng = np.random.default_rng(7)
for m, n, k in [(300, 300, 300), (40, 3000, 100), (3000, 40, 100)]:
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    np.testing.assert_allclose(_C.gemm(a, b), a @ b, rtol=1e-11, atol=1e-11)
print("ok")
"""


@pytest.mark.parametrize("env", [{"OMP_THREAD_LIMIT": "1"}, {"OMP_DYNAMIC": "true"}])
def test_team_smaller_than_planned(env):
    """OpenMP may grant fewer threads than asked for: the split follows the team it got."""
    out = subprocess.run([sys.executable, "-c", SMALLER_TEAM], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
