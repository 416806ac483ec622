"""Seven optimizers side by side, and a learning-rate range test.

One 784-50-10 MLP (see mnist_mlp.py) is initialised once; each optimizer trains its own copy
of that initial state_dict on exactly the same batches, in the same order: SGD, SGD with
momentum, Nesterov momentum, Adagrad, RMSprop, Adam and AdamW, each with a learning rate
usual for it. The per-step training losses go to one PNG (losses.png in --out) and the test
accuracy of each to a table (and results.json).

The LR range test (L. Smith, "Cyclical Learning Rates for Training Neural Networks", 2017)
trains a fresh copy with SGD + momentum while the learning rate grows exponentially from
--lr-min to --lr-max, one step per batch, and plots the smoothed loss against the learning
rate on a log axis (lr_range_test.png). It stops once the loss exceeds 4x its minimum; the
suggested learning rate is a tenth of the one at the minimum. Without --data the bundled Digits,
resized to 28x28, stand in for MNIST.

    python examples/optimizers.py --data ~/data/mnist --epochs 3
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Iterator, List, Optional, Tuple

import common
from mnist_mlp import MLP
from tqdm import tqdm

import gradflow as gf
import gradflow.nn as nn
from gradflow import optim
from gradflow.optim.lr_scheduler import ExponentialLR
from gradflow.utils.cli import write_json
from gradflow.utils.data import DataLoader

OPTIMIZERS: Dict[str, Callable[..., optim.Optimizer]] = {
    "SGD": lambda params: optim.SGD(params, lr=0.1),
    "SGD+momentum": lambda params: optim.SGD(params, lr=0.01, momentum=0.9),
    "Nesterov": lambda params: optim.SGD(params, lr=0.01, momentum=0.9, nesterov=True),
    "Adagrad": lambda params: optim.Adagrad(params, lr=0.01),
    "RMSprop": lambda params: optim.RMSprop(params, lr=1e-3),
    "Adam": lambda params: optim.Adam(params, lr=1e-3),
    "AdamW": lambda params: optim.AdamW(params, lr=1e-3, weight_decay=1e-2),
}
Run = Tuple[nn.Module, optim.Optimizer]


def train_side_by_side(runs: Dict[str, Run], loader: DataLoader, epochs: int,
                       device: gf.device) -> Dict[str, List[float]]:
    """Every (model, optimizer) in `runs` takes one step on each batch; per-step losses."""
    criterion = nn.CrossEntropyLoss()
    losses: Dict[str, List[float]] = {name: [] for name in runs}
    for epoch in range(1, epochs + 1):
        for inputs, labels in tqdm(loader, desc=f"epoch {epoch}/{epochs}", leave=False):
            inputs, labels = inputs.to(device), labels.to(device)
            for name, (model, optimizer) in runs.items():
                model.train()
                loss = criterion(model(inputs), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses[name].append(loss.item())
    return losses


def forever(loader: DataLoader) -> Iterator:
    while True:
        yield from loader


def lr_range_test(model: nn.Module, loader: DataLoader, device: gf.device, lr_min: float,
                  lr_max: float, steps: int, beta: float = 0.98
                  ) -> Tuple[List[float], List[float]]:
    """(learning rates, smoothed losses): one SGD + momentum step per batch with the learning
    rate multiplied by (lr_max / lr_min) ** (1 / (steps - 1)) after each; the loss is an
    exponential moving average (factor `beta`, bias-corrected). Stops early once that loss
    is not finite or exceeds 4x its minimum."""
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=lr_min, momentum=0.9)
    scheduler = ExponentialLR(optimizer, gamma=(lr_max / lr_min) ** (1 / max(steps - 1, 1)))
    lrs: List[float] = []
    losses: List[float] = []
    average = 0.0
    model.train()
    batches = zip(tqdm(range(steps), desc="LR range test", leave=False), forever(loader))
    for step, (inputs, labels) in batches:
        lr = optimizer.param_groups[0]["lr"]
        loss = criterion(model(inputs.to(device)), labels.to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        average = beta * average + (1 - beta) * loss.item()
        smoothed = average / (1 - beta ** (step + 1))
        if not math.isfinite(smoothed) or (losses and smoothed > 4 * min(losses)):
            break
        lrs.append(lr)
        losses.append(smoothed)
    return lrs, losses


def plot_losses(losses: Dict[str, List[float]], out: str) -> None:
    plt = common.pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, curve in losses.items():
        ax.plot(curve, label=name, linewidth=1)
    ax.set(xlabel="step", ylabel="training loss (cross-entropy)", yscale="log",
           title="same model, same initialisation, same batches")
    ax.legend()
    common.save_figure(fig, out, "losses.png")


def plot_lr_range(lrs: List[float], losses: List[float], suggested: float, out: str) -> None:
    plt = common.pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(lrs, losses)
    ax.axvline(suggested, color="gray", linestyle="--", label=f"suggested lr {suggested:.3g}")
    ax.set(xscale="log", xlabel="learning rate", ylabel="smoothed training loss",
           title="LR range test (SGD, momentum 0.9)")
    ax.legend()
    common.save_figure(fig, out, "lr_range_test.png")


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    p = common.parser(__doc__, "optimizers", epochs=3, batch_size=32, lr=None, checkpoint=False)
    p.add_argument("--lr-min", type=float, default=1e-5, help="first LR of the range test")
    p.add_argument("--lr-max", type=float, default=10.0, help="last LR of the range test")
    p.add_argument("--lr-steps", type=int, default=200, help="steps of the LR range test")
    args = p.parse_args(argv)
    device = common.setup(args)
    steps = min(args.lr_steps, 20) if args.smoke else args.lr_steps

    train_loader, test_loader = common.loaders(*common.mnist(args.data, 28, args.smoke),
                                               args.batch_size)
    initial = MLP().state_dict()

    def fresh() -> nn.Module:
        model = MLP().to(device)
        model.load_state_dict(initial)
        return model

    runs: Dict[str, Run] = {}
    for name, make in OPTIMIZERS.items():
        model = fresh()
        runs[name] = (model, make(model.parameters()))
    losses = train_side_by_side(runs, train_loader, args.epochs, device)

    results: Dict[str, float] = {}
    print(f"{'optimizer':<14}{'last-epoch train loss':>24}{'test accuracy':>16}")
    steps_per_epoch = len(train_loader)
    for name, (model, _) in runs.items():
        metrics = common.evaluate(model, test_loader, nn.CrossEntropyLoss(), device)
        train_loss = sum(losses[name][-steps_per_epoch:]) / steps_per_epoch
        results[name] = metrics["test_accuracy"]
        print(f"{name:<14}{train_loss:>24.4f}{metrics['test_accuracy']:>14.2f} %")
    plot_losses(losses, args.out)

    lrs, smoothed = lr_range_test(fresh(), train_loader, device, args.lr_min, args.lr_max,
                                  steps)
    best = lrs[smoothed.index(min(smoothed))]
    suggested = best / 10
    print(f"LR range test: {len(lrs)} steps, lowest loss {min(smoothed):.4f} at lr {best:.3g}; "
          f"suggested lr {suggested:.3g}")
    plot_lr_range(lrs, smoothed, suggested, args.out)
    results["suggested_lr"] = suggested
    write_json(args.out, "results.json", {"test_accuracy": {k: results[k] for k in runs},
                                          "suggested_lr": suggested, "args": vars(args)})
    return results


if __name__ == "__main__":
    main()
