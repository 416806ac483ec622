"""Vanishing gradients and their two cures, watched with gradflow.utils.diagnostics.Monitor.

One 10-layer MLP (9 hidden layers of 64 units, then 10 outputs) trained three ways on the
same batches, from the same seed, with SGD + momentum:

- sigmoid, naive initialisation: every weight drawn from N(0, 0.01^2). Each layer multiplies
  the backward signal by about sigmoid' * 0.01 * sqrt(64) <= 0.02, so the first layers'
  gradients are ~1e-15 of the last one's: the network does not learn;
- ReLU, Kaiming initialisation (He et al., 2015): weights N(0, 2 / fan_in) keep the
  activations' scale from layer to layer, and the gradients with them;
- the sigmoid net with its naive initialisation plus batch normalisation before every
  sigmoid (Ioffe & Szegedy, 2015): each layer's input is re-standardised, so the bad
  initial scale no longer compounds.

The monitor records per layer and per step the activation mean, standard deviation and
fraction of exact zeros (dead ReLUs), the gradient norm and the update-to-weight ratio;
--out gets monitor.png (one row per net, one panel per statistic) and results.json.
Without --data the bundled 8x8 Digits (64 inputs) are used; with it, MNIST (784 inputs).

    python examples/initialization.py
"""

from __future__ import annotations

from typing import Dict, List, Optional

import common

import gradflow as gf
import gradflow.nn as nn
from gradflow import optim
from gradflow.utils.cli import write_json
from gradflow.utils.diagnostics import STATS, Monitor, plot_panels

VARIANTS = {  # folder in --out: (label, activation, initialisation, batch norm)
    "sigmoid_naive": ("sigmoid, N(0, 0.01²) init", "sigmoid", "naive", False),
    "relu_kaiming": ("ReLU, Kaiming init", "relu", "kaiming", False),
    "sigmoid_naive_bn": ("sigmoid, N(0, 0.01²) init, BatchNorm", "sigmoid", "naive", True),
}


class DeepMLP(nn.Module):
    """`depth` linear layers: depth - 1 hidden blocks (Linear [+ BatchNorm1d] + activation)
    of `width` units, then a linear layer to the classes."""

    def __init__(self, inputs: int, activation: str, init: str, batch_norm: bool,
                 depth: int = 10, width: int = 64, naive_std: float = 0.01) -> None:
        super().__init__()
        blocks = []
        for i in range(depth - 1):
            layers: List[nn.Module] = [nn.Linear(inputs if i == 0 else width, width)]
            if batch_norm:
                layers.append(nn.BatchNorm1d(width))
            layers.append(nn.Sigmoid() if activation == "sigmoid" else nn.ReLU())
            blocks.append(nn.Sequential(*layers))
        self.flatten = nn.Flatten()
        self.hidden = nn.Sequential(*blocks)
        self.out = nn.Linear(width, 10)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                if init == "naive":
                    nn.init.normal_(m.weight, 0.0, naive_std)
                else:
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: gf.Tensor) -> gf.Tensor:
        return self.out(self.hidden(self.flatten(x)))


def train_watched(model: DeepMLP, data, args, device: gf.device) -> Monitor:
    """Train `model` with a Monitor on every linear layer's block; returns the monitor."""
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    monitor = Monitor(model, optimizer, layers=[*model.hidden, model.out])
    common.fit(model, data, optimizer, nn.CrossEntropyLoss(), args, device)
    monitor.remove()
    return monitor


def plot(monitors: Dict[str, Monitor], out: str) -> None:
    plt = common.pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(len(monitors), len(STATS), figsize=(4 * len(STATS),
                                                                  3.2 * len(monitors)),
                             squeeze=False, layout="constrained")
    for row, (name, monitor) in zip(axes, monitors.items()):
        plot_panels(row, monitor)
        row[0].set_ylabel(name, fontsize="large")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, [label.split(" ")[0] for label in labels], loc="outside right center",
               title="layer")
    common.save_figure(fig, out, "monitor.png")


def main(argv: Optional[List[str]] = None) -> Dict[str, Dict[str, float]]:
    p = common.parser(__doc__, "initialization", epochs=10, batch_size=64, lr=0.05,
                      checkpoint=False)
    p.add_argument("--naive-std", type=float, default=0.01,
                   help="standard deviation of the naive initialisation")
    args = p.parse_args(argv)
    device = common.setup(args)
    train, test = common.mnist(args.data, 28 if args.data else 8, args.smoke)
    inputs = 28 * 28 if args.data else 8 * 8
    data = common.loaders(train, test, args.batch_size)

    monitors: Dict[str, Monitor] = {}
    results: Dict[str, Dict[str, float]] = {}
    base_out = args.out
    for folder, (name, activation, init, batch_norm) in VARIANTS.items():
        print(f"\n== {name}")
        gf.manual_seed(args.seed)  # the same initial draw and batches for every net
        model = DeepMLP(inputs, activation, init, batch_norm, naive_std=args.naive_std)
        model.to(device)
        args.out = f"{base_out}/{folder}"  # this net's per-epoch metrics.json
        monitor = train_watched(model, data, args, device)
        first = monitor.history["grad_norm"]["hidden.0"][0]
        last = monitor.history["grad_norm"]["out"][0]
        print(monitor.table())
        print(f"first step: gradient norm of layer 1 / layer 10 = {first / last:.3g}")
        metrics = common.evaluate(model, data[1], nn.CrossEntropyLoss(), device)
        results[name] = {"test_accuracy": metrics["test_accuracy"],
                         "first_step_grad_ratio": first / last}
        monitors[name] = monitor
    args.out = base_out

    print(f"\n{'net':<40}{'test accuracy':>15}{'‖∇W1‖ / ‖∇W10‖':>18}")
    for name, r in results.items():
        print(f"{name:<40}{r['test_accuracy']:>13.2f} %{r['first_step_grad_ratio']:>18.3g}")
    plot(monitors, args.out)
    write_json(args.out, "results.json", results)
    return results


if __name__ == "__main__":
    main()
