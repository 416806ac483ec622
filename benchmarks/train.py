"""Whole training steps: gradflow against PyTorch (CPU) on the models of the examples.

One step = forward, cross-entropy loss, backward and an SGD-momentum update on a fixed batch.
Each model is defined once, by a function of the framework module (`build(m)` uses only
names gradflow shares with torch), so both libraries run exactly the same network:

  mlp      784-256-10 MLP, batch 64 of 28x28 inputs
  lenet    LeNet-5 (ReLU, max-pooling), batch 64 of 1x32x32
  resnet   a CIFAR ResNet stage: conv-BN-ReLU stem and two BasicBlocks, 16 channels,
           batch 32 of 3x32x32

The libraries alternate step by step (interleaved, so background load hits both alike) at
each thread count; the table reports median ms per step, images/s and the ratio
PyTorch-time / gradflow-time (> 1: gradflow is faster). JSON to runs/benchmark_train/train.json
and a PNG when matplotlib is installed.

    python benchmarks/train.py [--threads 1 2] [--steps 30] [--only lenet]
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


# name -> (builder, input shape of one batch)
MODELS: Dict[str, Tuple[Callable, Tuple[int, ...]]] = {
    "mlp": (mlp, (64, 1, 28, 28)),
    "lenet": (lenet, (64, 1, 32, 32)),
    "resnet": (resnet, (32, 3, 32, 32)),
}


def make_step(m, build: Callable, shape: Tuple[int, ...]) -> Callable[[], None]:
    """One training step of `build(m)` on a fixed random batch, for framework module m."""
    rng = np.random.default_rng(0)
    x = m.from_numpy(rng.standard_normal(shape).astype(np.float32))
    y = m.from_numpy(rng.integers(0, 10, shape[0]))
    m.manual_seed(0)
    model = build(m)
    opt = m.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = m.nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    return step


def measure(names: List[str], threads: List[int], steps: int) -> List[dict]:
    libs = {"gradflow": gf} | ({"torch": torch} if torch is not None else {})
    rows = []
    for t in threads:
        gf.set_num_threads(t)
        if torch is not None:
            torch.set_num_threads(t)
        for name in names:
            build, shape = MODELS[name]
            runs = {lib: make_step(m, build, shape) for lib, m in libs.items()}
            for run in runs.values():  # warm-up: buffers, packing space, thread pools
                for _ in range(3):
                    run()
            times: Dict[str, List[float]] = {lib: [] for lib in runs}
            for _ in range(steps):
                for lib, run in runs.items():
                    start = time.perf_counter()
                    run()
                    times[lib].append(time.perf_counter() - start)
            ms = {lib: 1e3 * statistics.median(ts) for lib, ts in times.items()}
            row = {"model": name, "batch": shape[0], "threads": t, "ms": ms,
                   "images_per_s": {lib: 1e3 * shape[0] / v for lib, v in ms.items()}}
            if "torch" in ms:
                row["torch_over_gradflow"] = ms["torch"] / ms["gradflow"]
            rows.append(row)
            ratio = row.get("torch_over_gradflow")
            torch_ms = f"{ms['torch']:9.2f}" if "torch" in ms else f"{'-':>9}"
            print(f"{name:8s} {shape[0]:5d} {t:4d} {ms['gradflow']:11.2f} {torch_ms} "
                  f"{row['images_per_s']['gradflow']:10.0f} "
                  + (f"{ratio:9.2f}" if ratio else f"{'-':>9}"))
    return rows


def plot(rows: List[dict], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    labels = [f"{r['model']}\n{r['threads']} thr" for r in rows]
    libs = list(rows[0]["ms"])
    width = 0.8 / len(libs)
    for i, lib in enumerate(libs):
        ax.bar([x + i * width for x in range(len(rows))], [r["images_per_s"][lib] for r in rows],
               width, label=lib)
    ax.set_xticks([x + 0.4 - width / 2 for x in range(len(rows))], labels, fontsize=8)
    ax.set_ylabel("training images / s")
    ax.set_title("One SGD step: forward, loss, backward, update (CPU)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per library")
    parser.add_argument("--only", choices=sorted(MODELS), help="one model")
    add_out_argument(parser, "benchmark_train")
    args = parser.parse_args()

    names = [args.only] if args.only else list(MODELS)
    print(f"{'model':8s} {'batch':>5s} {'thr':>4s} {'gradflow ms':>11s} {'torch ms':>9s} "
          f"{'gf img/s':>10s} {'torch/gf':>9s}")
    rows = measure(names, args.threads, args.steps)
    results = Path(args.out)
    results.mkdir(parents=True, exist_ok=True)
    meta = {"gradflow": gf.__version__, "torch": torch.__version__ if torch else None,
            "steps": args.steps}
    (results / "train.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    if plot(rows, results / "train.png"):
        print(f"wrote {results / 'train.json'} and train.png")
    else:
        print(f"wrote {results / 'train.json'}")


if __name__ == "__main__":
    main()
