"""Whole training steps: gradflow against PyTorch, on the CPU and on a CUDA GPU.

One step = forward, cross-entropy loss, backward and an SGD-momentum update on a fixed batch.
Each model is defined once, by a function of the framework module (`build(m)` uses only
names gradflow shares with torch), so both libraries run exactly the same network:

  mlp       784-256-10 MLP, batch 64 of 28x28 inputs
  lenet     LeNet-5 (ReLU, max-pooling), batch 64 of 1x32x32
  resnet    a CIFAR ResNet stage: conv-BN-ReLU stem and two BasicBlocks, 16 channels,
            batch 32 of 3x32x32
  lenet256  LeNet-5 at batch 256 and resnet20 ResNet-20 (He et al. 2016, CIFAR: three
  resnet20  stages of 16/32/64 channels, 3 BasicBlocks each, 1x1-conv shortcuts where the
            shape changes) at batch 128: the GPU targets of the issue tracker

For each device (--device cpu,cuda) the libraries alternate step by step (interleaved, so
background load hits both alike), on the CPU at each thread count; the table reports median
ms per step, images/s, the ratio PyTorch-time / gradflow-time (> 1: gradflow is faster) and,
on CUDA, the peak GPU memory of a step for each library and gradflow's speed-up over its own
CPU run. A CUDA step is timed from a synchronised start to its synchronised end (the device
time of the step plus one launch gap), after warm-up. JSON to runs/benchmark_train/train.json
(or --out DIR) and a PNG when matplotlib is installed.

    python benchmarks/train.py [--device cpu,cuda] [--threads 1 2] [--steps 30]
                               [--only lenet256 resnet20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

import gradflow as gf
from gradflow.utils.cli import add_out_argument

try:
    import torch
except ImportError:  # the benchmark still runs, without the PyTorch column
    torch = None



def mlp(m):
    nn = m.nn
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def lenet(m):
    nn = m.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )


def resnet(m):
    nn = m.nn

    class BasicBlock(nn.Module):
        def __init__(self, channels: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(channels)
            self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(channels)
            self.relu = nn.ReLU()

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += x
            return self.relu(out)

    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        BasicBlock(16), BasicBlock(16),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )


def resnet20(m):
    nn = m.nn

    class BasicBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.shortcut = nn.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                              nn.BatchNorm2d(cout))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            out += self.shortcut(x)
            return self.relu(out)

    layers = [nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(BasicBlock(cin, cout, stride if i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


# name -> (builder, input shape of one batch)
MODELS: Dict[str, Tuple[Callable, Tuple[int, ...]]] = {
    "mlp": (mlp, (64, 1, 28, 28)),
    "lenet": (lenet, (64, 1, 32, 32)),
    "resnet": (resnet, (32, 3, 32, 32)),
    "lenet256": (lenet, (256, 1, 32, 32)),
    "resnet20": (resnet20, (128, 3, 32, 32)),
}


def make_step(m, build: Callable, shape: Tuple[int, ...], device: str) -> Callable[[], None]:
    """One training step of `build(m)` on a fixed random batch on `device`, for framework
    module m."""
    rng = np.random.default_rng(0)
    x = m.from_numpy(rng.standard_normal(shape).astype(np.float32)).to(device)
    y = m.from_numpy(rng.integers(0, 10, shape[0])).to(device)
    m.manual_seed(0)
    model = build(m).to(device)
    opt = m.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = m.nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    return step


class Cuda:
    """Synchronisation and peak memory of one library's CUDA side (gradflow.cuda or
    torch.cuda have the same names)."""

    def __init__(self, m) -> None:
        self.cuda = m.cuda

    def sync(self) -> None:
        self.cuda.synchronize()

    def reset_peak(self) -> None:
        self.sync()
        self.cuda.reset_peak_memory_stats()

    def peak_mib(self) -> float:
        return self.cuda.max_memory_allocated() / 2**20


def time_runs(runs: Dict[str, Callable], cuda: Dict[str, Cuda], steps: int) -> Dict[str, list]:
    """Per library, `steps` step times in seconds, the libraries interleaved step by step."""
    for lib, run in runs.items():  # warm-up: buffers, allocator caches, thread pools
        for _ in range(3):
            run()
        if lib in cuda:
            cuda[lib].reset_peak()
    times: Dict[str, List[float]] = {lib: [] for lib in runs}
    for _ in range(steps):
        for lib, run in runs.items():
            if lib in cuda:
                cuda[lib].sync()
            start = time.perf_counter()
            run()
            if lib in cuda:
                cuda[lib].sync()
            times[lib].append(time.perf_counter() - start)
    return times


def measure_one(name: str, device: str, threads: Optional[int], steps: int) -> dict:
    libs = {"gradflow": gf} | ({"torch": torch} if torch is not None else {})
    build, shape = MODELS[name]
    runs = {lib: make_step(m, build, shape, device) for lib, m in libs.items()}
    cuda = {lib: Cuda(m) for lib, m in libs.items()} if device == "cuda" else {}
    times = time_runs(runs, cuda, steps)
    ms = {lib: 1e3 * statistics.median(ts) for lib, ts in times.items()}
    row = {"model": name, "batch": shape[0], "device": device, "threads": threads, "ms": ms,
           "images_per_s": {lib: 1e3 * shape[0] / v for lib, v in ms.items()}}
    if "torch" in ms:
        row["torch_over_gradflow"] = ms["torch"] / ms["gradflow"]
    if cuda:
        row["peak_mib"] = {lib: c.peak_mib() for lib, c in cuda.items()}
    return row


def print_row(row: dict) -> None:
    ms, ratio = row["ms"], row.get("torch_over_gradflow")
    torch_ms = f"{ms['torch']:9.2f}" if "torch" in ms else f"{'-':>9}"
    peak = row.get("peak_mib", {})
    mem = (f"{peak['gradflow']:8.1f} " + (f"{peak['torch']:8.1f}" if "torch" in peak else
                                           f"{'-':>8}")) if peak else f"{'-':>8} {'-':>8}"
    speedup = f"{row['gpu_over_cpu']:8.1f}" if "gpu_over_cpu" in row else f"{'-':>8}"
    threads = row["threads"] if row["threads"] is not None else "-"
    print(f"{row['model']:9s} {row['batch']:5d} {row['device']:5s} {threads:>4} "
          f"{ms['gradflow']:11.2f} {torch_ms} {row['images_per_s']['gradflow']:10.0f} "
          + (f"{ratio:9.2f}" if ratio else f"{'-':>9}") + f" {mem} {speedup}")


def measure(names: List[str], devices: List[str], threads: List[int], steps: int) -> List[dict]:
    rows = []
    for name in names:
        cpu_ms = None
        for device in devices:
            for t in threads if device == "cpu" else [None]:
                if t is not None:
                    gf.set_num_threads(t)
                    if torch is not None:
                        torch.set_num_threads(t)
                row = measure_one(name, device, t, steps)
                if device == "cpu":
                    cpu_ms = row["ms"]["gradflow"] if cpu_ms is None else min(
                        cpu_ms, row["ms"]["gradflow"])
                elif cpu_ms is not None:
                    row["gpu_over_cpu"] = cpu_ms / row["ms"]["gradflow"]
                print_row(row)
                rows.append(row)
    return rows


def plot(rows: List[dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = [f"{r['model']}\n{r['device']} {r['threads'] or ''}" for r in rows]
    libs = list(rows[0]["ms"])
    width = 0.8 / len(libs)
    for i, lib in enumerate(libs):
        ax.bar([x + i * width for x in range(len(rows))], [r["images_per_s"][lib] for r in rows],
               width, label=lib)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(rows))], labels, fontsize=8)
    ax.set_ylabel("training images / s")
    ax.set_title("One SGD step: forward, loss, backward, update")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu",
                        help="comma-separated devices: cpu, cuda or cpu,cuda")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="CPU thread counts")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per library")
    parser.add_argument("--only", choices=sorted(MODELS), nargs="+", help="these models")
    add_out_argument(parser, "benchmark_train")
    args = parser.parse_args()

    devices = [d.strip() for d in args.device.split(",") if d.strip()]
    if not devices or any(d not in ("cpu", "cuda") for d in devices):
        parser.error(f"--device takes cpu, cuda or cpu,cuda, got {args.device!r}")
    if "cuda" in devices and not gf.cuda.is_available():
        parser.error(f"--device cuda: {gf.cuda.unavailable_reason()}")
    names = args.only or ["mlp", "lenet", "resnet"]
    print(f"{'model':9s} {'batch':>5s} {'dev':5s} {'thr':>4s} {'gradflow ms':>11s} "
          f"{'torch ms':>9s} {'gf img/s':>10s} {'torch/gf':>9s} {'gf MiB':>8s} {'th MiB':>8s} "
          f"{'cpu/gpu':>8s}")
    rows = measure(names, devices, args.threads, args.steps)
    results = Path(args.out)
    results.mkdir(parents=True, exist_ok=True)
    meta = {"gradflow": gf.__version__, "torch": torch.__version__ if torch else None,
            "steps": args.steps, "devices": devices}
    (results / "train.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    if plot(rows, results / "train.png"):
        print(f"wrote {results / 'train.json'} and train.png")
    else:
        print(f"wrote {results / 'train.json'}")


if __name__ == "__main__":
    main()
