"""Convolution-family benchmark: gradflow vs PyTorch on the CPU and the GPU, and a NumPy
im2col reference.

For every case (conv layers, transposed convs, pools, batchnorm), each competitor runs in its
own worker process (benchmarks/harness.py) and the parent times them interleaved (a turn each,
round after round, the order reversed every other round) so that load from other processes
hits them alike; CPU competitors once per thread count. The table reports median milliseconds
per call, gradflow's GFLOP/s on each device, the ratio other-time / gradflow-time on the CPU
(> 1: gradflow is faster), the GPU-over-CPU speed-up of gradflow and cuDNN-time /
gradflow-GPU-time (gf/cuDNN, > 1: gradflow is faster). GPU times come from CUDA events recorded
around a turn's calls after warm-up (gradflow.cuda.Event, torch.cuda.Event), never from host
timers around unsynchronised launches. PyTorch on the GPU runs cuDNN with cudnn.benchmark = True
and TF32 off, so both sides compute in true fp32.

    python benchmarks/conv.py                        # cpu,cuda with a GPU, else cpu
    python benchmarks/conv.py --quick                # fewer repeats and cases
    python benchmarks/conv.py --device cuda          # GPU columns only
    python benchmarks/conv.py --device cpu,cuda --quick --threads 2 --out runs/benchmark_conv

The layer shapes are the 11 CPU ones and, when a GPU competitor runs, the GPU-sized ones
(ResNet CIFAR layers at batch 128, VGG/ResNet ImageNet layers and the 7x7/2 stem at batch 64).
Writes <out>/conv.json and, when matplotlib is installed, conv.png (default out:
runs/benchmark_conv). The NumPy reference's OpenBLAS runs at the row's thread count.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import statistics
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from harness import Duel, host_timed, machine_load

# (batch, Cin, H, W, Cout, k, stride, pad)
CONV_SHAPES = [
    (64, 1, 32, 32, 6, 5, 1, 0), (64, 6, 14, 14, 16, 5, 1, 0), (32, 16, 32, 32, 16, 3, 1, 1),
    (32, 32, 16, 16, 32, 3, 1, 1), (32, 64, 8, 8, 64, 3, 1, 1), (32, 64, 16, 16, 128, 3, 2, 1),
    (8, 64, 56, 56, 64, 3, 1, 1), (8, 128, 28, 28, 128, 3, 1, 1), (8, 256, 14, 14, 256, 3, 1, 1),
    (8, 3, 224, 224, 64, 7, 2, 3), (32, 256, 14, 14, 64, 1, 1, 0),
]
# GPU-sized: ResNet CIFAR 3x3 layers at batch 128, VGG/ResNet ImageNet 3x3 layers and the 7x7/2
# stem at batch 64.
GPU_SHAPES = [
    (128, 16, 32, 32, 16, 3, 1, 1), (128, 32, 16, 16, 32, 3, 1, 1), (128, 64, 8, 8, 64, 3, 1, 1),
    (64, 64, 56, 56, 64, 3, 1, 1), (64, 128, 28, 28, 128, 3, 1, 1),
    (64, 256, 14, 14, 256, 3, 1, 1), (64, 512, 7, 7, 512, 3, 1, 1), (64, 3, 224, 224, 64, 7, 2, 3),
]
# (batch, Cin, H, W, Cout, k, stride, pad, output_padding)
CONVT_SHAPES = [(32, 64, 8, 8, 32, 4, 2, 1, 0), (16, 128, 16, 16, 64, 3, 2, 1, 1)]


class Case:
    """One benchmark row: a name, its parameters and its FLOP count (0 when not meaningful).
    `shapes` names the shape of each array (x, w, b and the output gradient gy); the worker
    draws them with `arrays()`, so only the shapes travel between processes."""

    def __init__(self, kind: str, name: str, shapes: Dict[str, Tuple[int, ...]], params: dict,
                 flops: float, gpu_sized: bool = False):
        self.kind, self.name, self.shapes = kind, name, shapes
        self.params, self.flops, self.gpu_sized = params, flops, gpu_sized

    def arrays(self) -> Dict[str, np.ndarray]:
        rng = np.random.default_rng(0)
        arrays = {k: rng.standard_normal(shape, np.float32) for k, shape in self.shapes.items()}
        if self.kind in ("conv2d", "conv_transpose2d"):
            arrays["w"] *= 0.1
        elif self.kind == "batch_norm" or self.kind.endswith("pool2d"):
            arrays["w"], arrays["b"] = np.ones_like(arrays["w"]), np.zeros_like(arrays["b"])
        return arrays


def conv_case(s, gpu_sized: bool = False) -> Case:
    n, cin, h, w, cout, k, st, p = s
    oh, ow = (h + 2 * p - k) // st + 1, (w + 2 * p - k) // st + 1
    shapes = {"x": (n, cin, h, w), "w": (cout, cin, k, k), "b": (cout,), "gy": (n, cout, oh, ow)}
    return Case("conv2d", f"conv {s}", shapes, {"stride": st, "padding": p},
                2.0 * n * cout * oh * ow * cin * k * k, gpu_sized)


def convt_case(s) -> Case:
    n, cin, h, w, cout, k, st, p, op = s
    oh, ow = (h - 1) * st - 2 * p + k + op, (w - 1) * st - 2 * p + k + op
    shapes = {"x": (n, cin, h, w), "w": (cin, cout, k, k), "b": (cout,), "gy": (n, cout, oh, ow)}
    return Case("conv_transpose2d", f"convT {s}", shapes,
                {"stride": st, "padding": p, "output_padding": op},
                2.0 * n * cin * h * w * cout * k * k)


def simple_case(kind: str, shape) -> Case:
    pooled = kind in ("max_pool2d", "avg_pool2d")
    gy = shape[:2] + (shape[2] // 2, shape[3] // 2) if pooled else shape
    shapes = {"x": shape, "w": (shape[1],), "b": (shape[1],), "gy": gy}
    return Case(kind, f"{kind} {shape}", shapes, {}, 0.0)


# ---------------------------------------------------------------- competitors
# A builder takes (case, backward, device) and returns a zero-argument callable running one
# step (on a GPU: queueing it), or None when it cannot run that case. It runs in the
# competitor's worker process and imports only that competitor's library.
def gradflow_builder(case: Case, backward: bool, device: str) -> Callable[[], None]:
    import gradflow as gf
    from gradflow.ops.conv import conv2d, conv_transpose2d
    from gradflow.ops.norm import batch_norm
    from gradflow.ops.pool import avg_pool2d, max_pool2d

    a = case.arrays()
    x = gf.tensor(a["x"], requires_grad=backward, device=device)
    w = gf.tensor(a["w"], requires_grad=backward, device=device)
    b = gf.tensor(a["b"], requires_grad=backward, device=device)
    gy = gf.tensor(a["gy"], device=device)
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


def torch_builder(case: Case, backward: bool, device: str) -> Optional[Callable[[], None]]:
    import torch
    import torch.nn.functional as TF

    if device == "cuda":
        if not torch.cuda.is_available():
            return None
        # cuDNN picks its fastest algorithm per shape, and computes in fp32 (no TF32).
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    a = case.arrays()
    x, w, b = (torch.tensor(a[k], requires_grad=backward, device=device) for k in ("x", "w", "b"))
    gy = torch.tensor(a["gy"], device=device)
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


def numpy_builder(case: Case, backward: bool, device: str) -> Optional[Callable[[], None]]:
    """The textbook im2col + matmul convolution in NumPy (conv2d only, CPU-sized shapes)."""
    if case.kind != "conv2d" or case.gpu_sized:
        return None
    a = case.arrays()
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


# name -> (builder, device, library of its worker); the table's columns, in this order.
COMPETITORS: Dict[str, Tuple[Callable, str, str]] = {
    "gradflow": (gradflow_builder, "cpu", "gradflow"),
    "torch": (torch_builder, "cpu", "torch"),
    "numpy": (numpy_builder, "cpu", "numpy"),
    "gradflow-gpu": (gradflow_builder, "cuda", "gradflow"),
    "cudnn": (torch_builder, "cuda", "torch"),
}
CPU_NAMES = [n for n, (_, d, _) in COMPETITORS.items() if d == "cpu"]
GPU_NAMES = [n for n, (_, d, _) in COMPETITORS.items() if d == "cuda"]


class EventTimed:
    """A GPU runner: CUDA events recorded around `inner` queued steps, read once the end
    event has completed (torch.cuda.Event or gradflow.cuda.Event)."""

    def __init__(self, event_class, step: Callable[[], None]) -> None:
        self.event_class, self.step = event_class, step

    def __call__(self, inner: int) -> float:
        start, end = self.event_class(enable_timing=True), self.event_class(enable_timing=True)
        start.record()
        for _ in range(inner):
            self.step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3


def make_runner(name: str, job: Tuple[Case, bool]):
    """In the worker of competitor `name`: a runner of the case job = (case, backward)."""
    build, device, library = COMPETITORS[name]
    step = build(*job, device)
    if step is None:
        return None
    if device == "cpu":
        return host_timed(step)
    event_class = importlib.import_module(library).cuda.Event
    return EventTimed(event_class, step)


def run_case(duel: Optional[Duel], case: Case, backward: bool, threads: int, repeats: int,
             budget_s: float) -> Dict[str, float]:
    """Median seconds per call per competitor of `duel` that can run the case (a device
    without the kernel drops out), interleaved round by round after warm-up (allocations,
    first touch, cuDNN's algorithm search)."""
    if duel is None:
        return {}
    on_gpu = any(COMPETITORS[n][1] == "cuda" for n in duel.workers)
    duel.setup(make_runner, (case, backward), threads, warmup=3 if on_gpu else 1)
    settle = 0.0 if threads == 1 else 0.15 if "numpy" in duel.warm else 0.02
    seconds = duel.measure(repeats, min_seconds=0.02, budget_s=budget_s, settle_s=settle)
    return {k: statistics.median(v) for k, v in seconds.items()}


def make_row(case: Case, backward: bool, nthreads: int, med: Dict[str, float]) -> dict:
    flops = case.flops * (3 if backward else 1)
    ratio = lambda a, b: med[a] / med[b] if a in med and b in med else None  # noqa: E731
    row = {"case": case.name, "kind": case.kind, "gpu_sized": case.gpu_sized,
           "mode": "f+b" if backward else "fwd", "threads": nthreads,
           "ms": {k: v * 1e3 for k, v in med.items()},
           "gflops": {k: flops / v / 1e9 for k, v in med.items()} if flops else {},
           "ratio_vs_gradflow": {k: med[k] / med["gradflow"] for k in CPU_NAMES[1:]
                                 if k in med and "gradflow" in med},
           "gpu_speedup": ratio("gradflow", "gradflow-gpu"),
           "cudnn_over_gradflow_gpu": ratio("cudnn", "gradflow-gpu")}
    return row


def _width(name: str) -> int:
    return max(12, len(name) + 3)


def print_row(row: dict, names: List[str]) -> None:
    cells = " ".join(f"{row['ms'][n]:{_width(n)}.3f}" if n in row["ms"] else f"{'-':>{_width(n)}s}"
                     for n in names)
    gfl = " ".join(f"{row['gflops'][n]:10.1f}" if n in row["gflops"] else f"{'-':>10s}"
                   for n in ("gradflow", "gradflow-gpu") if n in names)
    extra = [row["ratio_vs_gradflow"].get(n) for n in CPU_NAMES[1:] if n in names]
    extra += [row[k] for k, n in (("gpu_speedup", "gradflow-gpu"),
                                  ("cudnn_over_gradflow_gpu", "cudnn")) if n in names]
    ratios = " ".join(f"{v:9.2f}" if v is not None else f"{'-':>9s}" for v in extra)
    print(f"{row['case']:44s} {row['mode']:5s} {row['threads']:3d} {cells} {gfl} {ratios}",
          flush=True)


def header(names: List[str]) -> str:
    h = f"{'case':44s} {'mode':5s} {'thr':>3s} "
    h += " ".join(f"{n + ' ms':>{_width(n)}s}" for n in names)
    h += " " + " ".join(f"{label:>10s}" for n, label in (("gradflow", "cpu GF/s"),
                                                          ("gradflow-gpu", "gpu GF/s"))
                        if n in names)
    cols = [f"{n}/gf" for n in CPU_NAMES[1:] if n in names]
    cols += [c for c, n in (("gpu/cpu", "gradflow-gpu"), ("gf/cuDNN", "cudnn")) if n in names]
    return h + " " + " ".join(f"{c:>9s}" for c in cols)


def summarize(rows: List[dict], threads: List[int]) -> dict:
    summary = {}
    for nthreads in threads:
        r = [row["ratio_vs_gradflow"].get("torch") for row in rows
             if row["kind"] == "conv2d" and row["mode"] == "f+b" and row["threads"] == nthreads]
        r = [v for v in r if v is not None]
        if r:
            summary[f"conv2d_fb_torch_over_gradflow_{nthreads}t"] = {
                "median": statistics.median(r), "min": min(r)}
    gpu = [row for row in rows if row["gpu_sized"] and row["mode"] == "f+b"]
    for key in ("cudnn_over_gradflow_gpu", "gpu_speedup"):
        for nthreads in threads:
            r = [row[key] for row in gpu if row[key] is not None and row["threads"] == nthreads]
            if r:
                summary[f"gpu_sized_fb_{key}_{nthreads}t"] = {"median": statistics.median(r),
                                                              "min": min(r)}
    return summary


def parse_args(gf) -> argparse.Namespace:
    from gradflow.utils.cli import add_out_argument

    default = "cpu,cuda" if gf.cuda.is_available() else "cpu"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=default,
                    help=f"comma-separated: cpu, cuda (default here: {default})")
    ap.add_argument("--quick", action="store_true", help="fewer repeats and cases")
    ap.add_argument("--threads", default="1,2", help="comma-separated CPU thread counts")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--only", default=None, help="run cases whose name contains this")
    add_out_argument(ap, "benchmark_conv")
    args = ap.parse_args()
    args.device = [d.strip() for d in args.device.split(",") if d.strip()]
    if not set(args.device) <= {"cpu", "cuda"} or not args.device:
        ap.error(f"--device takes cpu, cuda or cpu,cuda, got {','.join(args.device)}")
    if "cuda" in args.device and not gf.cuda.is_available():
        raise SystemExit(f"--device cuda: no CUDA GPU: {gf.cuda.unavailable_reason()}")
    return args


def torch_version() -> Optional[str]:
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:  # the benchmark runs without PyTorch
        return None


def start_duel(names: List[str], threads: List[int]) -> Optional[Duel]:
    """The workers of `names` (without PyTorch's when it is missing), or None if none."""
    names = [n for n in names if COMPETITORS[n][2] != "torch" or torch_version()]
    return Duel({n: COMPETITORS[n][2] for n in names}, max(threads)) if names else None


def make_cases(args) -> List[Case]:
    shapes = CONV_SHAPES[2:5] + CONV_SHAPES[7:8] if args.quick else CONV_SHAPES
    cases = [conv_case(s) for s in shapes]
    if "cuda" in args.device:
        cases += [conv_case(s, gpu_sized=True) for s in GPU_SHAPES]
    cases += [convt_case(s) for s in CONVT_SHAPES]
    cases += [simple_case("max_pool2d", (32, 64, 32, 32)),
              simple_case("avg_pool2d", (32, 64, 32, 32)),
              simple_case("batch_norm", (32, 64, 32, 32)),
              simple_case("batch_norm", (256, 512))]
    return [c for c in cases if args.only is None or args.only in c.name]


def main() -> None:
    import gradflow as gf  # in the parent only: the workers import their own library

    args = parse_args(gf)
    load_at_start = machine_load()
    repeats = args.repeats or (3 if args.quick else 9)
    budget = 2.0 if args.quick else 8.0
    cases = make_cases(args)
    threads = [int(t) for t in args.threads.split(",")] if "cpu" in args.device else [1]
    cpu = start_duel(CPU_NAMES, threads) if "cpu" in args.device else None
    gpu = start_duel(GPU_NAMES, threads) if "cuda" in args.device else None
    if gpu:
        print(f"GPU: {gf.cuda.get_device_name(0)}")
    names = [n for duel in (cpu, gpu) if duel for n in duel.workers]
    print(header(names))
    rows, gpu_med = [], {}
    try:
        for nthreads in threads:
            for case in cases:
                for backward in (False, True):
                    med = run_case(cpu, case, backward, nthreads, repeats, budget)
                    if (case.name, backward) not in gpu_med:  # the GPU ignores the threads
                        gpu_med[case.name, backward] = run_case(gpu, case, backward, nthreads,
                                                                repeats, budget)
                    med.update(gpu_med[case.name, backward])
                    row = make_row(case, backward, nthreads if cpu else 0, med)
                    rows.append(row)
                    print_row(row, names)
    finally:
        for duel in (cpu, gpu):
            if duel:
                duel.close()
    summary = summarize(rows, threads)
    for k, v in summary.items():
        print(f"{k}: median {v['median']:.2f}, min {v['min']:.2f}")
    load = {"start": load_at_start, "end": machine_load()}
    write_results(gf, args, rows, summary, threads, repeats, load)


def write_results(gf, args, rows: list, summary: dict, threads: List[int], repeats: int,
                  load: dict) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"devices": args.device, "gradflow_threads": threads, "simd": gf._C.simd_level(),
            "gpu": gf.cuda.get_device_name(0) if "cuda" in args.device else None,
            "torch": torch_version(), "numpy": np.__version__,
            "processes": "one per competitor, interleaved round by round",
            "numpy_threads": "the row's (OpenBLAS set per row)",
            "gpu_timing": "CUDA events after 3 warm-up steps; cuDNN benchmark mode, TF32 off",
            "repeats": repeats, "quick": args.quick, "load": load}
    (out / "conv.json").write_text(json.dumps({"meta": meta, "summary": summary, "rows": rows},
                                              indent=1))
    if plot(rows, out / "conv.png"):
        print(f"wrote {out / 'conv.json'} and conv.png")
    else:
        print(f"wrote {out / 'conv.json'}")


def _bars(ax, rows: list, value: Callable[[dict], Optional[float]], xlabel: str) -> None:
    """Horizontal bars of value(row) per case, one bar per (mode, threads)."""
    sel = [r for r in rows if value(r) is not None]
    labels = sorted({r["case"] for r in sel}, key=[r["case"] for r in sel].index)
    keys = sorted({(r["mode"], r["threads"]) for r in sel})
    height = 0.8 / max(len(keys), 1)
    for i, (mode, nt) in enumerate(keys):
        vals = {r["case"]: value(r) for r in sel if r["mode"] == mode and r["threads"] == nt}
        ys = [j + i * height for j in range(len(labels))]
        ax.barh(ys, [vals.get(lab, 0) for lab in labels], height,
                label=f"{mode}, {nt} thr" if nt else mode)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_yticks([j + 0.4 - height / 2 for j in range(len(labels))], labels, fontsize=7)
    ax.set_xlabel(xlabel)
    ax.legend(fontsize=7)


def plot(rows: list, path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    panels = [(lambda r: r["ratio_vs_gradflow"].get("torch"),
               "PyTorch CPU time / gradflow CPU time (> 1: gradflow faster)"),
              (lambda r: r["gpu_speedup"], "gradflow CPU time / gradflow GPU time (GPU speed-up)"),
              (lambda r: r["cudnn_over_gradflow_gpu"],
               "cuDNN time / gradflow GPU time (> 1: gradflow faster)")]
    panels = [(f, x) for f, x in panels if any(f(r) is not None for r in rows)]
    if not panels:
        return False
    n_cases = len({r["case"] for r in rows})
    fig, axes = plt.subplots(1, len(panels), figsize=(8 * len(panels), 0.3 * n_cases + 2),
                             squeeze=False)
    for ax, (value, xlabel) in zip(axes[0], panels):
        _bars(ax, rows, value, xlabel)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


if __name__ == "__main__":
    main()
