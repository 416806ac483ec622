"""GEMM on the GPU: gradflow's tiled CUDA kernel against cuBLAS (through torch.mm with TF32
off, when torch with CUDA is importable). Square n x n x n products, float32 and float64;
each time is the median over repeats of (launch + synchronize), after warm-up. Prints a
table, writes benchmarks/results/gemm_cuda.json (and a PNG when matplotlib is there).

    python benchmarks/gemm_cuda.py [--sizes 512 1024 2048 4096] [--repeats 10]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np

import gradflow.cuda
from gradflow.backends.cuda import CUDABackend


def median_seconds(fn, sync, repeats: int) -> float:
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    return torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048, 4096, 8192])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    if not gradflow.cuda.is_available():
        raise SystemExit(f"no CUDA GPU: {gradflow.cuda.unavailable_reason()}")
    be = CUDABackend(0)
    torch = torch_cuda()
    rng = np.random.default_rng(0)
    rows = []
    for dtype in (np.float32, np.float64):
        for n in args.sizes:
            if dtype == np.float64 and n > 4096:
                continue
            a = rng.standard_normal((n, n)).astype(dtype)
            b = rng.standard_normal((n, n)).astype(dtype)
            ga, gb = be.from_numpy(a), be.from_numpy(b)
            flops = 2.0 * n**3
            t_gf = median_seconds(lambda: be.matmul(ga, gb), gradflow.cuda.synchronize,
                                  args.repeats)
            out = be.to_numpy(be.matmul(ga, gb))
            row = {"dtype": np.dtype(dtype).name, "n": n, "gradflow_s": t_gf,
                   "gradflow_gflops": flops / t_gf / 1e9}
            if torch is not None:
                ta, tb = torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()
                t_cb = median_seconds(lambda: torch.mm(ta, tb), torch.cuda.synchronize,
                                      args.repeats)
                ref = torch.mm(ta.double(), tb.double()).cpu().numpy()
                row.update(cublas_s=t_cb, cublas_gflops=flops / t_cb / 1e9,
                           ratio=t_cb / t_gf,
                           rel_err=float(np.linalg.norm(out - ref) / np.linalg.norm(ref)))
            rows.append(row)
    device = gradflow.cuda.get_device_name(0)
    print(f"GEMM C = A @ B, n x n x n, on {device} (cuBLAS via torch.mm, TF32 off)")
    print(f"{'dtype':>8} {'n':>6} {'gradflow GF/s':>14} {'cuBLAS GF/s':>12} {'ratio':>7} "
          f"{'rel err':>9}")
    for r in rows:
        cb = f"{r['cublas_gflops']:12.0f} {r['ratio']:7.1%} {r['rel_err']:9.1e}" if (
            "cublas_gflops" in r) else f"{'-':>12} {'-':>7} {'-':>9}"
        print(f"{r['dtype']:>8} {r['n']:>6} {r['gradflow_gflops']:14.0f} {cb}")
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "gemm_cuda.json"), "w") as f:
        json.dump({"device": device, "repeats": args.repeats, "rows": rows}, f, indent=1)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for dt in ("float32", "float64"):
        sel = [r for r in rows if r["dtype"] == dt]
        ax.plot([r["n"] for r in sel], [r["gradflow_gflops"] for r in sel], "o-",
                label=f"gradflow {dt}")
        if sel and "cublas_gflops" in sel[0]:
            ax.plot([r["n"] for r in sel], [r["cublas_gflops"] for r in sel], "s--",
                    label=f"cuBLAS {dt}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("n")
    ax.set_ylabel("GFLOP/s")
    ax.set_title(f"GEMM on {device}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "gemm_cuda.png"), dpi=120)


if __name__ == "__main__":
    main()
