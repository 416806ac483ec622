"""GEMM speed: gradflow's kernels against NumPy (OpenBLAS) and PyTorch, side by side.

C = A @ B for square sizes and two convolution-shaped products (im2col GEMMs of ResNet-like
layers). Every competitor runs in its own worker process (benchmarks/harness.py), timed in turn
inside the same repetition loop (interleaved, the order reversed every other repetition), so
background load hits all of them alike; a turn lasts about --min-seconds, after a pause that
lets the previous worker's idle threads stop spinning. The table reports medians over
repetitions of GFLOP/s = 2*m*n*k / seconds and the ratio gradflow / reference.

On the CPU (the reference is NumPy) each case runs at each requested thread count, and the
last column is the share of the measured FMA peak (`_C.fma_peak_gflops`, one core, times
threads). On CUDA the reference is cuBLAS through `torch.mm` with TF32 off (true fp32), when
a CUDA build of torch is importable; thread counts do not apply.

    python benchmarks/gemm.py                      # CPU, 1 and 2 threads, all cases
    python benchmarks/gemm.py --threads 1 --sizes 1024 --repeat 15
    python benchmarks/gemm.py --device cuda --sizes 1024 2048 4096 8192 [--dtype float64]

Results go to runs/benchmark_gemm/gemm[_cuda].json (and .png when matplotlib is installed), or
under --out DIR.
A backend is a function `(m, n, k, dtype) -> run`, called in its worker, returning a
zero-argument callable that computes one product and waits for it; BACKENDS lists them per
device, reference first; a backend's name is the library its worker imports.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
from pathlib import Path
from typing import Callable

import numpy as np
from harness import Duel, host_timed, machine_load, openblas_set_threads

Runner = Callable[[], None]
CONV_CASES = [(64, 3136, 576), (256, 196, 2304)]  # 3x3 conv 64->64 @56x56; 256->256 @14x14


def _operands(m: int, n: int, k: int, dtype: str):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    return a, b, np.empty((m, n), dtype)


def gradflow_cpu(m: int, n: int, k: int, dtype: str) -> Runner:
    from gradflow import _C

    a, b, c = _operands(m, n, k, dtype)
    return lambda: _C.gemm(a, b, c)


def numpy_cpu(m: int, n: int, k: int, dtype: str) -> Runner:
    a, b, c = _operands(m, n, k, dtype)
    return lambda: np.matmul(a, b, out=c)


def torch_cpu(m: int, n: int, k: int, dtype: str) -> Runner:
    import torch

    a, b, c = (torch.from_numpy(x) for x in _operands(m, n, k, dtype))
    return lambda: torch.mm(a, b, out=c)


def gradflow_cuda(m: int, n: int, k: int, dtype: str) -> Runner:
    import gradflow.cuda
    from gradflow.backends.cuda import CUDABackend

    backend = CUDABackend(0)
    a, b = (backend.from_numpy(x) for x in _operands(m, n, k, dtype)[:2])

    def run() -> None:
        backend.matmul(a, b)
        gradflow.cuda.synchronize()

    return run


def torch_cuda(m: int, n: int, k: int, dtype: str) -> Runner:
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    a, b, c = (torch.from_numpy(x).cuda() for x in _operands(m, n, k, dtype))

    def run() -> None:
        torch.mm(a, b, out=c)
        torch.cuda.synchronize()

    return run


def _torch_available() -> bool:
    """Whether torch is installed (its CUDA worker checks for a GPU itself)."""
    return importlib.util.find_spec("torch") is not None


BACKENDS: dict[str, dict[str, Callable[[int, int, int, str], Runner]]] = {
    "cpu": {"numpy": numpy_cpu, "gradflow": gradflow_cpu, "torch": torch_cpu},
    "cuda": {"torch": torch_cuda, "gradflow": gradflow_cuda},
}


def make_runner(name: str, case: tuple):
    """In the worker of backend `name`: a runner of the product case = (device, m, n, k,
    dtype), or None for torch on a machine where it sees no GPU."""
    device, m, n, k, dtype = case
    if name == "torch" and device == "cuda":
        import torch

        if not torch.cuda.is_available():
            return None
    return host_timed(BACKENDS[device][name](m, n, k, dtype))


def bench_case(duel: Duel, device: str, m: int, n: int, k: int, threads: int, dtype: str,
               repeat: int, min_seconds: float) -> dict[str, float]:
    """Median GFLOP/s per backend, the backends timed in turn within each repetition."""
    duel.setup(make_runner, (device, m, n, k, dtype), threads, warmup=2)
    # An idle OpenBLAS thread busy-waits for up to ~0.1 s and would steal a core.
    settle = 0.15 if threads > 1 else 0.0
    seconds = duel.measure(repeat, min_seconds=min_seconds, settle_s=settle)
    return {name: 2.0 * m * n * k / statistics.median(ts) / 1e9 for name, ts in seconds.items()}


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
        from gradflow import _C

        if openblas_set_threads() is None:
            print("warning: cannot set NumPy's BLAS threads; its column uses its own default")
        peak_core = _C.fma_peak_gflops(0.3)
        print(f"FMA peak (measured, one core): {peak_core:.1f} GFLOP/s; simd={_C.simd_level()}")
        return peak_core, threads
    import gradflow.cuda

    if not gradflow.cuda.is_available():
        raise SystemExit(f"no CUDA GPU: {gradflow.cuda.unavailable_reason()}")
    print(f"on {gradflow.cuda.get_device_name(0)}; reference: cuBLAS (torch.mm, TF32 off)")
    return 0.0, [1]


def parse_args() -> argparse.Namespace:
    from gradflow.utils.cli import add_out_argument

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
    return parser.parse_args()


def measure(args, names: list[str], peak_core: float, thread_counts: list[int]) -> list[dict]:
    """A table row per (thread count, case), printed as it comes."""
    reference = names[0]
    cases = [(s, s, s) for s in args.sizes] + ([] if args.no_conv else CONV_CASES)
    header = f"{'case (m,n,k)':>18} {'thr':>3} " + " ".join(f"{n:>9}" for n in names)
    print(header + f" {'gf/' + reference[:5]:>9} {'%peak':>6}")
    rows = []
    with Duel({name: name for name in names}, max(thread_counts)) as duel:
        for threads in thread_counts:
            for m, n, k in cases:
                gflops = bench_case(duel, args.device, m, n, k, threads, args.dtype,
                                    args.repeat, args.min_seconds)
                peak = peak_core * threads
                ratio = gflops["gradflow"] / gflops[reference] if reference in gflops and len(
                    gflops) > 1 else None
                row = {"case": f"{m}x{n}x{k}", "m": m, "n": n, "k": k, "threads": threads,
                       "gflops": gflops, "peak_gflops": peak, "ratio": ratio,
                       "percent_peak": 100.0 * gflops["gradflow"] / peak if peak else None}
                rows.append(row)
                cells = " ".join(f"{gflops[n]:9.1f}" if n in gflops else f"{'-':>9}"
                                 for n in names)
                print(f"{row['case']:>18} {threads:>3} {cells} "
                      + (f"{ratio:9.2f}" if ratio else f"{'-':>9}")
                      + (f" {row['percent_peak']:6.1f}" if peak else f" {'-':>6}"), flush=True)
    return rows


def main() -> None:
    args = parse_args()
    load_at_start = machine_load()
    names = [n for n in BACKENDS[args.device] if n != "torch" or _torch_available()]
    peak_core, thread_counts = _device_setup(args.device, args.threads)
    rows = measure(args, names, peak_core, thread_counts)

    from gradflow import _C

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "gemm" if args.device == "cpu" else "gemm_cuda"
    meta = {"device": args.device, "dtype": args.dtype, "reference": names[0],
            "simd": _C.simd_level(), "compiler": _C.compiler,
            "fma_peak_gflops_per_core": peak_core, "repeat": args.repeat,
            "processes": "one per backend, interleaved repetition by repetition",
            "numpy_threads_controlled": openblas_set_threads() is not None,
            "load": {"start": load_at_start, "end": machine_load()}}
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    if plot(rows, f"{args.dtype} GEMM on {args.device}", out / f"{stem}.png"):
        print(f"wrote {out / stem}.json and {stem}.png")
    else:
        print(f"wrote {out / stem}.json")


if __name__ == "__main__":
    main()
