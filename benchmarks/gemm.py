"""GEMM speed: gradflow's native kernel against NumPy (OpenBLAS) and PyTorch, side by side.

C = A @ B in float32 for square sizes and two convolution-shaped products (im2col GEMMs of
ResNet-like layers), at each requested thread count. Every competitor is timed in turn inside
the same repetition loop (interleaved), so background load hits all of them alike; the table
reports medians over repetitions of GFLOP/s = 2*m*n*k / seconds, the ratio gradflow / NumPy
and the share of the measured FMA peak (`_C.fma_peak_gflops`, one core, times threads).

    python benchmarks/gemm.py                      # 1 and 2 threads, all cases
    python benchmarks/gemm.py --threads 1 --sizes 1024 --repeat 15

Results go to benchmarks/results/gemm.json (and gemm.png when matplotlib is installed).
A backend is a function `(m, n, k, threads) -> run` returning a zero-argument callable that
computes one product (and waits for it); add a device by adding such functions to BACKENDS.
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

from gradflow import _C

Runner = Callable[[], None]
RESULTS = Path(__file__).resolve().parent / "results"
CONV_CASES = [(64, 3136, 576), (256, 196, 2304)]  # 3x3 conv 64->64 @56x56; 256->256 @14x14


def _operands(m: int, n: int, k: int):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    return a, b, np.empty((m, n), np.float32)


def _openblas_set_threads() -> Callable[[int], None] | None:
    """NumPy's bundled OpenBLAS thread setter (no threadpoolctl needed), or None."""
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs", "*"))
    for path in libs:
        if "openblas" not in path:
            continue
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_",
                     "openblas_set_num_threads"):
            if hasattr(lib, name):
                return getattr(lib, name)
    return None


_NUMPY_THREADS = _openblas_set_threads()


def gradflow_cpu(m: int, n: int, k: int, threads: int) -> Runner:
    a, b, c = _operands(m, n, k)

    def run() -> None:
        _C.set_num_threads(threads)
        _C.gemm(a, b, c)

    return run


def numpy_cpu(m: int, n: int, k: int, threads: int) -> Runner:
    a, b, c = _operands(m, n, k)

    def run() -> None:
        if _NUMPY_THREADS is not None:
            _NUMPY_THREADS(threads)
        np.matmul(a, b, out=c)

    return run


def torch_cpu(m: int, n: int, k: int, threads: int) -> Runner:
    import torch

    a, b, c = (torch.from_numpy(x) for x in _operands(m, n, k))

    def run() -> None:
        torch.set_num_threads(threads)
        torch.mm(a, b, out=c)

    return run


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


BACKENDS: dict[str, dict[str, Callable[[int, int, int, int], Runner]]] = {
    "cpu": {"gradflow": gradflow_cpu, "numpy": numpy_cpu, "torch": torch_cpu},
}


def time_once(run: Runner, min_seconds: float, settle: float) -> float:
    """Seconds per call, averaged over enough calls to last min_seconds. First sleeps `settle`
    seconds, so that the worker threads of the previously timed library stop spinning (an
    idle OpenBLAS thread busy-waits for up to ~0.1 s and would steal a core), then makes one
    untimed call to wake this library's threads."""
    time.sleep(settle)
    run()
    calls, elapsed = 0, 0.0
    start = time.perf_counter()
    while elapsed < min_seconds or calls == 0:
        run()
        calls += 1
        elapsed = time.perf_counter() - start
    return elapsed / calls


def bench_case(makers: dict, m: int, n: int, k: int, threads: int, repeat: int,
               min_seconds: float) -> dict[str, float]:
    """Median GFLOP/s per backend, the backends timed in turn within each repetition."""
    runs = {name: make(m, n, k, threads) for name, make in makers.items()}
    settle = 0.15 if threads > 1 else 0.0
    for run in runs.values():  # warm-up: page in buffers, grow packing buffers
        time_once(run, min_seconds / 4, settle)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            times[name].append(time_once(run, min_seconds, settle))
    return {name: 2.0 * m * n * k / statistics.median(ts) / 1e9 for name, ts in times.items()}


def plot(rows: list[dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    threads = sorted({r["threads"] for r in rows})
    fig, axes = plt.subplots(1, len(threads), figsize=(6 * len(threads), 4), squeeze=False)
    for ax, t in zip(axes[0], threads):
        sel = [r for r in rows if r["threads"] == t]
        labels = [r["case"] for r in sel]
        names = list(sel[0]["gflops"])
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            ax.bar([x + i * width for x in range(len(sel))], [r["gflops"][name] for r in sel],
                   width, label=name)
        ax.axhline(sel[0]["peak_gflops"], color="k", ls="--", lw=1, label="FMA peak")
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(sel))], labels, rotation=30,
                      fontsize=8)
        ax.set_title(f"float32 GEMM, {t} thread(s)")
        ax.set_ylabel("GFLOP/s")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=sorted(BACKENDS), default="cpu")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512, 1024, 2048])
    parser.add_argument("--no-conv", action="store_true", help="skip the conv-shaped cases")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--min-seconds", type=float, default=0.05)
    args = parser.parse_args()

    makers = dict(BACKENDS[args.device])
    if "torch" in makers and not _torch_available():
        del makers["torch"]
    if _NUMPY_THREADS is None:
        print("warning: cannot set NumPy's BLAS threads; its column uses its own default")
    peak_core = _C.fma_peak_gflops(0.3)
    cases = [(s, s, s) for s in args.sizes] + ([] if args.no_conv else CONV_CASES)

    rows = []
    names = list(makers)
    header = f"{'case (m,n,k)':>18} {'thr':>3} " + " ".join(f"{n:>9}" for n in names)
    print(f"FMA peak (measured, one core): {peak_core:.1f} GFLOP/s; simd={_C.simd_level()}")
    print(header + f" {'gf/np':>6} {'%peak':>6}")
    for threads in args.threads:
        for m, n, k in cases:
            gflops = bench_case(makers, m, n, k, threads, args.repeat, args.min_seconds)
            peak = peak_core * threads
            row = {"case": f"{m}x{n}x{k}", "m": m, "n": n, "k": k, "threads": threads,
                   "gflops": gflops, "peak_gflops": peak,
                   "ratio_numpy": gflops["gradflow"] / gflops["numpy"],
                   "percent_peak": 100.0 * gflops["gradflow"] / peak if peak else None}
            rows.append(row)
            pct = f"{row['percent_peak']:6.1f}" if peak else f"{'-':>6}"
            print(f"{row['case']:>18} {threads:>3} "
                  + " ".join(f"{gflops[n]:9.1f}" for n in names)
                  + f" {row['ratio_numpy']:6.2f} {pct}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    meta = {"device": args.device, "simd": _C.simd_level(), "compiler": _C.compiler,
            "fma_peak_gflops_per_core": peak_core, "repeat": args.repeat,
            "numpy_threads_controlled": _NUMPY_THREADS is not None}
    (RESULTS / "gemm.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    if plot(rows, RESULTS / "gemm.png"):
        print(f"wrote {RESULTS / 'gemm.json'} and gemm.png")
    else:
        print(f"wrote {RESULTS / 'gemm.json'}")


if __name__ == "__main__":
    main()
