"""Convolution-family benchmark: gradflow vs PyTorch (CPU) vs a NumPy im2col reference.

For every case (conv layers, transposed convs, pools, batchnorm) and thread count, the
competitors run interleaved (one call each, round after round) so that load from other
processes hits them alike; the table reports the median milliseconds, GFLOP/s for the convs
and the ratio other-time / gradflow-time (> 1: gradflow is faster).

    python benchmarks/conv.py            # full run, 1 and 2 threads
    python benchmarks/conv.py --quick    # fewer repeats and cases

Writes runs/benchmark_conv/conv.json and, when matplotlib is installed, conv.png. Competitors
are entries of COMPETITORS (name -> builder), so GPU columns (gradflow on cuda, torch on cuda)
slot in as more entries. The NumPy reference uses OpenBLAS with the thread count fixed at
start-up (OPENBLAS_NUM_THREADS, default 1), so only its 1-thread column is like-for-like.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

import gradflow as gf  # noqa: E402
from gradflow.ops.conv import conv2d, conv_transpose2d  # noqa: E402
from gradflow.ops.norm import batch_norm  # noqa: E402
from gradflow.ops.pool import avg_pool2d, max_pool2d  # noqa: E402
from gradflow.utils.cli import add_out_argument  # noqa: E402

try:
    import torch
    import torch.nn.functional as TF
except ImportError:  # the benchmark still runs, without the PyTorch column
    torch = None

# (batch, Cin, H, W, Cout, k, stride, pad)
CONV_SHAPES = [
    (64, 1, 32, 32, 6, 5, 1, 0), (64, 6, 14, 14, 16, 5, 1, 0), (32, 16, 32, 32, 16, 3, 1, 1),
    (32, 32, 16, 16, 32, 3, 1, 1), (32, 64, 8, 8, 64, 3, 1, 1), (32, 64, 16, 16, 128, 3, 2, 1),
    (8, 64, 56, 56, 64, 3, 1, 1), (8, 128, 28, 28, 128, 3, 1, 1), (8, 256, 14, 14, 256, 3, 1, 1),
    (8, 3, 224, 224, 64, 7, 2, 3), (32, 256, 14, 14, 64, 1, 1, 0),
]
# (batch, Cin, H, W, Cout, k, stride, pad, output_padding)
CONVT_SHAPES = [(32, 64, 8, 8, 32, 4, 2, 1, 0), (16, 128, 16, 16, 64, 3, 2, 1, 1)]


class Case:
    """One benchmark row: a name, its arrays and its FLOP count (0 when not meaningful)."""

    def __init__(self, kind: str, name: str, arrays: Dict[str, np.ndarray], params: dict,
                 flops: float):
        self.kind, self.name, self.arrays = kind, name, arrays
        self.params, self.flops = params, flops


def conv_case(s) -> Case:
    n, cin, h, w, cout, k, st, p = s
    rng = np.random.default_rng(0)
    oh, ow = (h + 2 * p - k) // st + 1, (w + 2 * p - k) // st + 1
    arrays = {"x": rng.standard_normal((n, cin, h, w), np.float32),
              "w": rng.standard_normal((cout, cin, k, k), np.float32) * 0.1,
              "b": rng.standard_normal(cout, np.float32),
              "gy": rng.standard_normal((n, cout, oh, ow), np.float32)}
    return Case("conv2d", f"conv {s}", arrays, {"stride": st, "padding": p},
                2.0 * n * cout * oh * ow * cin * k * k)


def convt_case(s) -> Case:
    n, cin, h, w, cout, k, st, p, op = s
    rng = np.random.default_rng(0)
    oh, ow = (h - 1) * st - 2 * p + k + op, (w - 1) * st - 2 * p + k + op
    arrays = {"x": rng.standard_normal((n, cin, h, w), np.float32),
              "w": rng.standard_normal((cin, cout, k, k), np.float32) * 0.1,
              "b": rng.standard_normal(cout, np.float32),
              "gy": rng.standard_normal((n, cout, oh, ow), np.float32)}
    return Case("conv_transpose2d", f"convT {s}", arrays,
                {"stride": st, "padding": p, "output_padding": op},
                2.0 * n * cin * h * w * cout * k * k)


def simple_case(kind: str, shape) -> Case:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, np.float32)
    arrays = {"x": x, "w": np.ones(shape[1], np.float32), "b": np.zeros(shape[1], np.float32)}
    if kind in ("max_pool2d", "avg_pool2d"):
        arrays["gy"] = rng.standard_normal(shape[:2] + (shape[2] // 2, shape[3] // 2), np.float32)
    else:
        arrays["gy"] = rng.standard_normal(shape, np.float32)
    return Case(kind, f"{kind} {shape}", arrays, {}, 0.0)


# ---------------------------------------------------------------- competitors
# A builder takes (case, backward) and returns a zero-argument callable running one step.
def gradflow_builder(case: Case, backward: bool) -> Callable[[], None]:
    a = case.arrays
    x = gf.tensor(a["x"], requires_grad=backward)
    w = gf.tensor(a["w"], requires_grad=backward)
    b = gf.tensor(a["b"], requires_grad=backward)
    gy = gf.tensor(a["gy"])
    p = case.params
    fn = {
        "conv2d": lambda: conv2d(x, w, b, p["stride"], p["padding"]),
        "conv_transpose2d": lambda: conv_transpose2d(x, w, b, p["stride"], p["padding"],
                                                     p["output_padding"]),
        "max_pool2d": lambda: max_pool2d(x, 2),
        "avg_pool2d": lambda: avg_pool2d(x, 2),
        "batch_norm": lambda: batch_norm(x, None, None, w, b, training=True),
    }[case.kind]

    def step():
        x.grad = w.grad = b.grad = None
        y = fn()
        if backward:
            y.backward(gy)

    return step


def torch_builder(case: Case, backward: bool) -> Optional[Callable[[], None]]:
    if torch is None:
        return None
    a = case.arrays
    x, w, b = (torch.tensor(a[k], requires_grad=backward) for k in ("x", "w", "b"))
    gy = torch.tensor(a["gy"])
    p = case.params
    fn = {
        "conv2d": lambda: TF.conv2d(x, w, b, p["stride"], p["padding"]),
        "conv_transpose2d": lambda: TF.conv_transpose2d(x, w, b, p["stride"], p["padding"],
                                                        p["output_padding"]),
        "max_pool2d": lambda: TF.max_pool2d(x, 2),
        "avg_pool2d": lambda: TF.avg_pool2d(x, 2),
        "batch_norm": lambda: TF.batch_norm(x, None, None, w, b, training=True),
    }[case.kind]

    def step():
        x.grad = w.grad = b.grad = None
        y = fn()
        if backward:
            y.backward(gy)

    return step


def _im2col(x: np.ndarray, k: int, s: int, p: int) -> np.ndarray:
    """(N, C*k*k, OH*OW) patches of x by a strided sliding-window view."""
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]
    n, c, oh, ow = win.shape[:4]
    return win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * k * k, oh * ow)


def _col2im(cols: np.ndarray, shape, k: int, s: int, p: int) -> np.ndarray:
    n, c, h, w = shape
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    cols = cols.reshape(n, c, k, k, oh, ow)
    xp = np.zeros((n, c, h + 2 * p, w + 2 * p), cols.dtype)
    for i in range(k):
        for j in range(k):
            xp[:, :, i: i + s * (oh - 1) + 1: s, j: j + s * (ow - 1) + 1: s] += cols[:, :, i, j]
    return xp[:, :, p: p + h, p: p + w]


def numpy_builder(case: Case, backward: bool) -> Optional[Callable[[], None]]:
    """The textbook im2col + matmul convolution in NumPy (conv2d only)."""
    if case.kind != "conv2d":
        return None
    a = case.arrays
    x, w, b, gy = a["x"], a["w"], a["b"], a["gy"]
    s, p, k = case.params["stride"], case.params["padding"], w.shape[2]
    wm = w.reshape(w.shape[0], -1)

    def step():
        cols = _im2col(x, k, s, p)
        y = np.matmul(wm, cols) + b[:, None]
        if backward:
            g = gy.reshape(gy.shape[0], gy.shape[1], -1)
            np.einsum("nol,nkl->ok", g, cols, optimize=True)  # weight grad
            g.sum((0, 2))  # bias grad
            _col2im(np.matmul(wm.T, g), x.shape, k, s, p)  # input grad
        return y

    return step


COMPETITORS: Dict[str, Callable] = {
    "gradflow": gradflow_builder,
    "torch": torch_builder,
    "numpy": numpy_builder,
}


def set_threads(n: int) -> None:
    gf.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)


def run_case(case: Case, backward: bool, repeats: int, budget_s: float) -> Dict[str, float]:
    """Median seconds per competitor, interleaved round-robin."""
    steps = {}
    for name, build in COMPETITORS.items():
        fn = build(case, backward)
        if fn is not None:
            fn()  # warm-up (allocations, first-touch)
            steps[name] = fn
    times: Dict[str, List[float]] = {k: [] for k in steps}
    start = time.perf_counter()
    for r in range(repeats):
        for name, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
        if r >= 2 and time.perf_counter() - start > budget_s:
            break
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats and cases")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--only", default=None, help="run cases whose name contains this")
    add_out_argument(ap, "benchmark_conv")
    args = ap.parse_args()
    repeats = args.repeats or (3 if args.quick else 9)
    budget = 2.0 if args.quick else 8.0
    shapes = CONV_SHAPES[2:5] + CONV_SHAPES[7:8] if args.quick else CONV_SHAPES
    cases = [conv_case(s) for s in shapes] + [convt_case(s) for s in CONVT_SHAPES]
    cases += [simple_case("max_pool2d", (32, 64, 32, 32)),
              simple_case("avg_pool2d", (32, 64, 32, 32)),
              simple_case("batch_norm", (32, 64, 32, 32)),
              simple_case("batch_norm", (256, 512))]
    if args.only:
        cases = [c for c in cases if args.only in c.name]
    threads = [int(t) for t in args.threads.split(",")]
    names = list(COMPETITORS)
    rows = []
    header = f"{'case':44s} {'mode':5s} {'thr':>3s} " + " ".join(f"{n + ' ms':>12s}" for n in names)
    header += f" {'gf GFLOP/s':>10s} " + " ".join(f"{n + '/gf':>9s}" for n in names[1:])
    print(header)
    for nthreads in threads:
        set_threads(nthreads)
        for case in cases:
            for backward in (False, True):
                med = run_case(case, backward, repeats, budget)
                mode = "f+b" if backward else "fwd"
                flops = case.flops * (3 if backward else 1)
                row = {"case": case.name, "kind": case.kind, "mode": mode, "threads": nthreads,
                       "ms": {k: v * 1e3 for k, v in med.items()},
                       "gflops": {k: flops / v / 1e9 for k, v in med.items()} if flops else {},
                       "ratio_vs_gradflow": {k: v / med["gradflow"] for k, v in med.items()
                                             if k != "gradflow"}}
                rows.append(row)
                cells = " ".join(f"{row['ms'][n]:12.3f}" if n in row["ms"] else f"{'-':>12s}"
                                 for n in names)
                gfl = f"{row['gflops']['gradflow']:10.1f}" if flops else f"{'-':>10s}"
                ratios = " ".join(
                    f"{row['ratio_vs_gradflow'][n]:9.2f}" if n in row["ratio_vs_gradflow"]
                    else f"{'-':>9s}" for n in names[1:])
                print(f"{case.name:44s} {mode:5s} {nthreads:3d} {cells} {gfl} {ratios}", flush=True)
    summary = {}
    for nthreads in threads:
        r = [row["ratio_vs_gradflow"].get("torch") for row in rows
             if row["kind"] == "conv2d" and row["mode"] == "f+b" and row["threads"] == nthreads]
        r = [v for v in r if v is not None]
        if r:
            summary[f"conv2d_fb_torch_over_gradflow_{nthreads}t"] = {
                "median": statistics.median(r), "min": min(r)}
    for k, v in summary.items():
        print(f"{k}: median {v['median']:.2f}, min {v['min']:.2f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"gradflow_threads": threads, "simd": gf._C.simd_level(),
            "torch": None if torch is None else torch.__version__, "numpy": np.__version__,
            "openblas_threads_numpy": os.environ.get("OPENBLAS_NUM_THREADS"),
            "repeats": repeats, "quick": args.quick}
    (out / "conv.json").write_text(json.dumps({"meta": meta, "summary": summary, "rows": rows},
                                              indent=1))
    plot(rows, out / "conv.png")
    print(f"wrote {out / 'conv.json'}")


def plot(rows: list, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    sel = [r for r in rows if "torch" in r["ratio_vs_gradflow"]]
    if not sel:
        return
    labels = sorted({r["case"] for r in sel}, key=[r["case"] for r in sel].index)
    fig, ax = plt.subplots(figsize=(12, 0.35 * len(labels) + 2))
    keys = sorted({(r["mode"], r["threads"]) for r in sel})
    height = 0.8 / len(keys)
    for i, (mode, nt) in enumerate(keys):
        vals = {r["case"]: r["ratio_vs_gradflow"]["torch"] for r in sel
                if r["mode"] == mode and r["threads"] == nt}
        ys = [j + i * height for j in range(len(labels))]
        ax.barh(ys, [vals.get(lab, 0) for lab in labels], height, label=f"{mode}, {nt} thr")
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_yticks([j + 0.4 - height / 2 for j in range(len(labels))], labels, fontsize=7)
    ax.set_xlabel("PyTorch time / gradflow time (> 1: gradflow faster)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
