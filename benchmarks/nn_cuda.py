"""Pooling and batch-norm kernels, forward + backward: gradflow against PyTorch on one device
(the GPU by default), the issue tracker's per-kernel targets (>= 0.7x PyTorch-GPU speed).

Each case builds its input once per library; one timed call is the forward of the op and the
backward of a fixed output gradient, from a synchronised start to a synchronised end. The
libraries alternate call by call after a warm-up; the table reports median ms and the ratio
torch-time / gradflow-time (>= 1: gradflow is at least as fast). JSON to
runs/benchmark_nn_cuda/nn_cuda.json (--out).

    python benchmarks/nn_cuda.py [--device cuda] [--repeats 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np

import gradflow as gf
from gradflow.utils.cli import add_out_argument

try:
    import torch
except ImportError:  # the benchmark still runs, without the PyTorch column
    torch = None


# name -> (input shape, op(F, x) with F = the library's nn.functional)
CASES: Dict[str, Tuple[Tuple[int, ...], Callable]] = {
    "max_pool2d k2 (256,16,28,28)": ((256, 16, 28, 28), lambda F, x: F.max_pool2d(x, 2)),
    "max_pool2d k3s2p1 (128,64,32,32)": ((128, 64, 32, 32),
                                         lambda F, x: F.max_pool2d(x, 3, 2, 1)),
    "avg_pool2d k3s2p1 (128,64,32,32)": ((128, 64, 32, 32),
                                         lambda F, x: F.avg_pool2d(x, 3, 2, 1)),
    "avg_pool2d k2 (256,16,28,28)": ((256, 16, 28, 28), lambda F, x: F.avg_pool2d(x, 2)),
    "adaptive_avg_pool2d 1 (128,64,8,8)": ((128, 64, 8, 8),
                                           lambda F, x: F.adaptive_avg_pool2d(x, 1)),
    "batch_norm train (128,16,32,32)": ((128, 16, 32, 32), lambda F, x: F.batch_norm(
        x, None, None, training=True)),
    "batch_norm train (128,64,8,8)": ((128, 64, 8, 8), lambda F, x: F.batch_norm(
        x, None, None, training=True)),
    "batch_norm train (256,512)": ((256, 512), lambda F, x: F.batch_norm(
        x, None, None, training=True)),
}


def make_call(m, shape, op: Callable, device: str) -> Callable[[], None]:
    """Forward and backward of op on a fixed input for framework module m."""
    rng = np.random.default_rng(0)
    x = m.from_numpy(rng.standard_normal(shape).astype(np.float32)).to(device)
    x.requires_grad_(True)
    grad = None

    def call() -> None:
        nonlocal grad
        y = op(m.nn.functional, x)
        if grad is None:
            grad = m.from_numpy(rng.standard_normal(tuple(y.shape)).astype(np.float32)).to(device)
        y.backward(grad)
        x.grad = None

    return call


def measure(names: List[str], device: str, repeats: int) -> List[dict]:
    libs = {"gradflow": gf} | ({"torch": torch} if torch is not None else {})
    rows = []
    for name in names:
        shape, op = CASES[name]
        calls = {lib: make_call(m, shape, op, device) for lib, m in libs.items()}
        sync = {lib: (m.cuda.synchronize if device == "cuda" else (lambda: None))
                for lib, m in libs.items()}
        for call in calls.values():
            for _ in range(3):
                call()
        times: Dict[str, List[float]] = {lib: [] for lib in calls}
        for _ in range(repeats):
            for lib, call in calls.items():
                sync[lib]()
                start = time.perf_counter()
                call()
                sync[lib]()
                times[lib].append(time.perf_counter() - start)
        ms = {lib: 1e3 * statistics.median(ts) for lib, ts in times.items()}
        row = {"case": name, "device": device, "ms": ms}
        if "torch" in ms:
            row["torch_over_gradflow"] = ms["torch"] / ms["gradflow"]
        ratio = row.get("torch_over_gradflow")
        torch_ms = f"{ms['torch']:9.3f}" if "torch" in ms else f"{'-':>9}"
        print(f"{name:36s} {ms['gradflow']:11.3f} {torch_ms} "
              + (f"{ratio:9.2f}" if ratio else f"{'-':>9}"))
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per library")
    parser.add_argument("--only", help="run cases whose name contains this")
    add_out_argument(parser, "benchmark_nn_cuda")
    args = parser.parse_args()
    if args.device == "cuda" and not gf.cuda.is_available():
        parser.error(f"--device cuda: {gf.cuda.unavailable_reason()}")
    names = [n for n in CASES if args.only is None or args.only in n]
    print(f"{'case (forward + backward)':36s} {'gradflow ms':>11s} {'torch ms':>9s} "
          f"{'torch/gf':>9s}")
    rows = measure(names, args.device, args.repeats)
    results = Path(args.out)
    results.mkdir(parents=True, exist_ok=True)
    meta = {"gradflow": gf.__version__, "torch": torch.__version__ if torch else None,
            "repeats": args.repeats, "device": args.device}
    path = results / "nn_cuda.json"
    path.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
