"""GEMM speed: gradflow's kernels against NumPy (OpenBLAS) and PyTorch, side by side.

C = A @ B for square sizes and two convolution-shaped products (im2col GEMMs of ResNet-like
layers). Every competitor is timed in turn inside the same repetition loop (interleaved), so
background load hits all of them alike; the table reports medians over repetitions of
GFLOP/s = 2*m*n*k / seconds and the ratio gradflow / reference.

On the CPU (the reference is NumPy) each case runs at each requested thread count, and the
last column is the share of the measured FMA peak (`_C.fma_peak_gflops`, one core, times
threads). On CUDA the reference is cuBLAS through `torch.mm` with TF32 off (true fp32), when
a CUDA build of torch is importable; thread counts do not apply.

    python benchmarks/gemm.py                      # CPU, 1 and 2 threads, all cases
    python benchmarks/gemm.py --threads 1 --sizes 1024 --repeat 15
    python benchmarks/gemm.py --device cuda --sizes 1024 2048 4096 8192 [--dtype float64]

Results go to runs/benchmark_gemm/gemm[_cuda].json (and .png when matplotlib is installed), or
under --out DIR.
A backend is a function `(m, n, k, threads, dtype) -> run` returning a zero-argument callable
that computes one product and waits for it; BACKENDS lists them per device, reference first.
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
from gradflow.utils.cli import add_out_argument

Runner = Callable[[], None]
CONV_CASES = [(64, 3136, 576), (256, 196, 2304)]  # 3x3 conv 64->64 @56x56; 256->256 @14x14


def _operands(m: int, n: int, k: int, dtype: str):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    return a, b, np.empty((m, n), dtype)


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


def gradflow_cpu(m: int, n: int, k: int, threads: int, dtype: str) -> Runner:
    a, b, c = _operands(m, n, k, dtype)

    def run() -> None:
        _C.set_num_threads(threads)
        _C.gemm(a, b, c)

    return run


def numpy_cpu(m: int, n: int, k: int, threads: int, dtype: str) -> Runner:
    a, b, c = _operands(m, n, k, dtype)

    def run() -> None:
        if _NUMPY_THREADS is not None:
            _NUMPY_THREADS(threads)
        np.matmul(a, b, out=c)

    return run


def torch_cpu(m: int, n: int, k: int, threads: int, dtype: str) -> Runner:
    import torch

    a, b, c = (torch.from_numpy(x) for x in _operands(m, n, k, dtype))

    def run() -> None:
        torch.set_num_threads(threads)
        torch.mm(a, b, out=c)

    return run


def gradflow_cuda(m: int, n: int, k: int, threads: int, dtype: str) -> Runner:
    import gradflow.cuda
    from gradflow.backends.cuda import CUDABackend

    backend = CUDABackend(0)
    a, b = (backend.from_numpy(x) for x in _operands(m, n, k, dtype)[:2])

    def run() -> None:
        backend.matmul(a, b)
        gradflow.cuda.synchronize()

    return run


def torch_cuda(m: int, n: int, k: int, threads: int, dtype: str) -> Runner:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    a, b, c = (torch.from_numpy(x).cuda() for x in _operands(m, n, k, dtype))

    def run() -> None:
        torch.mm(a, b, out=c)
        torch.cuda.synchronize()

    return run


def _torch_available(device: str) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return device == "cpu" or torch.cuda.is_available()


BACKENDS: dict[str, dict[str, Callable[[int, int, int, int, str], Runner]]] = {
    "cpu": {"numpy": numpy_cpu, "gradflow": gradflow_cpu, "torch": torch_cpu},
    "cuda": {"torch": torch_cuda, "gradflow": gradflow_cuda},
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


def bench_case(makers: dict, m: int, n: int, k: int, threads: int, dtype: str, repeat: int,
               min_seconds: float) -> dict[str, float]:
    """Median GFLOP/s per backend, the backends timed in turn within each repetition."""
    runs = {name: make(m, n, k, threads, dtype) for name, make in makers.items()}
    settle = 0.15 if threads > 1 else 0.0
    for run in runs.values():  # warm-up: page in buffers, grow packing buffers
        time_once(run, min_seconds / 4, settle)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            times[name].append(time_once(run, min_seconds, settle))
    return {name: 2.0 * m * n * k / statistics.median(ts) / 1e9 for name, ts in times.items()}


def plot(rows: list[dict], title: str, path: Path) -> bool:
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
        if sel[0]["peak_gflops"]:
            ax.axhline(sel[0]["peak_gflops"], color="k", ls="--", lw=1, label="FMA peak")
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(sel))], labels, rotation=30,
                      fontsize=8)
        ax.set_title(f"{title}, {t} thread(s)" if len(threads) > 1 else title)
        ax.set_ylabel("GFLOP/s")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def _device_setup(device: str, threads):
    """(one core's measured FMA peak in GFLOP/s or 0 on the GPU, the thread counts to run),
    after saying what the run compares."""
    if device == "cpu":
        if _NUMPY_THREADS is None:
            print("warning: cannot set NumPy's BLAS threads; its column uses its own default")
        peak_core = _C.fma_peak_gflops(0.3)
        print(f"FMA peak (measured, one core): {peak_core:.1f} GFLOP/s; simd={_C.simd_level()}")
        return peak_core, threads
    import gradflow.cuda

    if not gradflow.cuda.is_available():
        raise SystemExit(f"no CUDA GPU: {gradflow.cuda.unavailable_reason()}")
    print(f"on {gradflow.cuda.get_device_name(0)}; reference: cuBLAS (torch.mm, TF32 off)")
    return 0.0, [1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=sorted(BACKENDS), default="cpu")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="CPU thread counts (ignored on cuda)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512, 1024, 2048])
    parser.add_argument("--no-conv", action="store_true", help="skip the conv-shaped cases")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--min-seconds", type=float, default=0.05)
    add_out_argument(parser, "benchmark_gemm")
    args = parser.parse_args()

    on_cpu = args.device == "cpu"
    makers = dict(BACKENDS[args.device])
    if not _torch_available(args.device):
        del makers["torch"]
    peak_core, thread_counts = _device_setup(args.device, args.threads)
    reference = next(iter(makers))
    cases = [(s, s, s) for s in args.sizes] + ([] if args.no_conv else CONV_CASES)

    rows = []
    names = list(makers)
    header = f"{'case (m,n,k)':>18} {'thr':>3} " + " ".join(f"{n:>9}" for n in names)
    print(header + f" {'gf/' + reference[:5]:>9} {'%peak':>6}")
    for threads in thread_counts:
        for m, n, k in cases:
            gflops = bench_case(makers, m, n, k, threads, args.dtype, args.repeat,
                                args.min_seconds)
            peak = peak_core * threads
            row = {"case": f"{m}x{n}x{k}", "m": m, "n": n, "k": k, "threads": threads,
                   "gflops": gflops, "peak_gflops": peak,
                   "ratio": gflops["gradflow"] / gflops[reference] if len(gflops) > 1 else None,
                   "percent_peak": 100.0 * gflops["gradflow"] / peak if peak else None}
            rows.append(row)
            ratio = f"{row['ratio']:9.2f}" if row["ratio"] else f"{'-':>9}"
            pct = f"{row['percent_peak']:6.1f}" if peak else f"{'-':>6}"
            print(f"{row['case']:>18} {threads:>3} "
                  + " ".join(f"{gflops[n]:9.1f}" for n in names) + f" {ratio} {pct}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "gemm" if on_cpu else "gemm_cuda"
    meta = {"device": args.device, "dtype": args.dtype, "reference": reference,
            "simd": _C.simd_level(), "compiler": _C.compiler,
            "fma_peak_gflops_per_core": peak_core, "repeat": args.repeat,
            "numpy_threads_controlled": _NUMPY_THREADS is not None}
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    if plot(rows, f"{args.dtype} GEMM on {args.device}", out / f"{stem}.png"):
        print(f"wrote {out / stem}.json and {stem}.png")
    else:
        print(f"wrote {out / stem}.json")


if __name__ == "__main__":
    main()
