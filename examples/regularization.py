"""Overfitting, and five cures for it, side by side.

A 2-hidden-layer MLP (256 units each, ReLU) is far too big for --train-size training images
(200 of the bundled 8x8 Digits, or of MNIST with --data): it learns them perfectly while
its validation accuracy stalls. The same network, from the same initialisation and on the
same batches (one seed), is then trained with each cure alone, and with all of them:

- weight decay: the SGD step adds lambda * w to the gradient (an L2 penalty on the weights);
- dropout: each hidden unit is zeroed with probability p in training (nn.Dropout);
- label smoothing: the target puts 1 - eps on the true class and eps / 10 on every class
  (nn.CrossEntropyLoss(label_smoothing=eps)), so confident logits stop paying;
- data augmentation: every training image is moved by a random shift of up to --shift
  pixels (zero fill) and, with --flip, mirrored left-right half the time, with gradflow ops;
  digits are not mirror-symmetric, so flips are off by default (try them: they hurt);
- early stopping: training stops once the validation loss has not improved for --patience
  epochs, and the best epoch's weights come back (gradflow.utils.EarlyStopping).

The validation split is --val-size further training images; the test split is only used
for the final table. Pixels are standardised by the training images' mean and standard
deviation. --out gets curves.png (train and validation accuracy per epoch, one
panel per run) and results.json.

    python examples/regularization.py --epochs 100
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import common

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow import optim
from gradflow.utils import EarlyStopping
from gradflow.utils.cli import write_json

CURES = ("weight decay", "dropout", "label smoothing", "augmentation", "early stopping")
Split = Tuple[gf.Tensor, gf.Tensor]


class MLP(nn.Module):
    """inputs -> 256 -> 256 -> 10 with ReLU, and dropout after each hidden layer."""

    def __init__(self, inputs: int, hidden: int = 256, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(inputs, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, 10),
        )

    def forward(self, x: gf.Tensor) -> gf.Tensor:
        return self.net(x)


def augment(images: gf.Tensor, shift: int, flip: bool) -> gf.Tensor:
    """Each NCHW image moved by its own random (dy, dx) in [-shift, shift]^2, the uncovered
    border filled with zeros, and with `flip` mirrored left-right with probability 1/2."""
    n, _, h, w = images.shape
    padded = F.pad(images, (shift, shift, shift, shift))
    offsets = gf.randint(0, 2 * shift + 1, (n, 2)).tolist()
    mirrored = (gf.rand(n) < 0.5).tolist() if flip else [False] * n
    out = []
    for i, ((dy, dx), mirror) in enumerate(zip(offsets, mirrored)):
        crop = padded[i, :, dy:dy + h, dx:dx + w]
        out.append(crop.flip(-1) if mirror else crop)
    return gf.stack(out)


@dataclass
class Run:
    """One training run: per-epoch accuracies (%) and the final ones; with early stopping, the
    epoch it stopped at and the (restored) best one, counted from 1."""

    train_acc: List[float] = field(default_factory=list)
    val_acc: List[float] = field(default_factory=list)
    final: Dict[str, float] = field(default_factory=dict)
    stopped_at: Optional[int] = None
    best_epoch: Optional[int] = None


@gf.no_grad()
def accuracy_and_loss(model: nn.Module, split: Split) -> Tuple[float, float]:
    """(accuracy in %, mean cross-entropy) of `model` on a whole split, in eval mode."""
    model.eval()
    images, labels = split
    logits = model(images)
    correct = (logits.argmax(1) == labels).sum().item()
    return 100.0 * correct / len(labels), F.cross_entropy(logits, labels).item()


def train(cures: Tuple[str, ...], splits: Dict[str, Split], args) -> Run:
    """Train a fresh MLP (seeded, so every run starts alike) with the given cures."""
    gf.manual_seed(args.seed)
    images, labels = splits["train"]
    model = MLP(images[0].numel(), dropout=args.dropout if "dropout" in cures else 0.0)
    decay = args.weight_decay if "weight decay" in cures else 0.0
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=decay)
    smoothing = args.label_smoothing if "label smoothing" in cures else 0.0
    criterion = nn.CrossEntropyLoss(label_smoothing=smoothing)
    stopper = EarlyStopping(patience=args.patience) if "early stopping" in cures else None
    run = Run()
    for epoch in range(args.epochs):
        model.train()
        for batch in gf.randperm(len(labels)).split(args.batch_size):
            x = images[batch]
            if "augmentation" in cures:
                x = augment(x, args.shift, args.flip)
            loss = criterion(model(x), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        run.train_acc.append(accuracy_and_loss(model, splits["train"])[0])
        val_acc, val_loss = accuracy_and_loss(model, splits["val"])
        run.val_acc.append(val_acc)
        if stopper is not None and stopper.step(val_loss, model):
            run.stopped_at, run.best_epoch = epoch + 1, stopper.best_epoch + 1
            break
    run.final = {name: accuracy_and_loss(model, split)[0] for name, split in splits.items()}
    return run


def plot(runs: Dict[str, Run], out: str) -> None:
    plt = common.pyplot()
    if plt is None:
        return
    cols = 4
    rows = -(-len(runs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), sharey=True,
                             squeeze=False, layout="constrained")
    for ax, (name, run) in zip(axes.flat, runs.items()):
        epochs = range(1, len(run.train_acc) + 1)
        ax.plot(epochs, run.train_acc, label="train")
        ax.plot(epochs, run.val_acc, label="validation")
        if run.best_epoch:
            ax.axvline(run.best_epoch, color="gray", linestyle="--", label="best (restored)")
        ax.set(title=f"{name}: test {run.final['test']:.1f} %", xlabel="epoch",
               ylabel="accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", loc="lower right")
    for ax in list(axes.flat)[len(runs):]:
        ax.axis("off")
    common.save_figure(fig, out, "curves.png")


def load_splits(args) -> Dict[str, Split]:
    size = 28 if args.data else 8
    train, test = common.mnist(args.data, size, smoke=False)
    images, labels = common.stack(train, args.train_size + args.val_size)
    test_images, test_labels = common.stack(test, args.test_size)
    n = args.train_size
    mean, std = images[:n].mean().item(), images[:n].std().item()  # of the training pixels
    images, test_images = (images - mean) / std, (test_images - mean) / std
    return {"train": (images[:n], labels[:n]), "val": (images[n:], labels[n:]),
            "test": (test_images, test_labels)}


def main(argv: Optional[List[str]] = None) -> Dict[str, Dict[str, float]]:
    p = common.parser(__doc__, "regularization", epochs=100, batch_size=32, lr=0.02,
                      checkpoint=False)
    p.add_argument("--train-size", type=int, default=200, help="training images")
    p.add_argument("--val-size", type=int, default=300, help="validation images")
    p.add_argument("--test-size", type=int, default=10_000, help="test images (at most)")
    p.add_argument("--weight-decay", type=float, default=5e-3, help="L2 coefficient lambda")
    p.add_argument("--dropout", type=float, default=0.5, help="dropout probability p")
    p.add_argument("--label-smoothing", type=float, default=0.2, help="smoothing eps")
    p.add_argument("--shift", type=int, default=1, help="largest random shift, in pixels")
    p.add_argument("--flip", action="store_true", help="augment with left-right flips too")
    p.add_argument("--patience", type=int, default=10, help="early stopping patience")
    args = p.parse_args(argv)
    common.setup(args)
    if args.smoke:
        args.train_size, args.val_size, args.test_size, args.epochs = 32, 32, 32, 2
    splits = load_splits(args)

    variants = {"no regularization": (), **{cure: (cure,) for cure in CURES},
                "all five": CURES}
    runs: Dict[str, Run] = {}
    for name, cures in variants.items():
        runs[name] = run = train(cures, splits, args)
        stop = f", stopped at epoch {run.stopped_at}" if run.stopped_at else ""
        print(f"{name:<18} train {run.final['train']:6.2f} %  val {run.final['val']:6.2f} %  "
              f"test {run.final['test']:6.2f} %{stop}")
    plot(runs, args.out)
    results = {name: {**run.final, "epochs": len(run.train_acc)} for name, run in runs.items()}
    write_json(args.out, "results.json", {"runs": results, "args": vars(args)})
    return results


if __name__ == "__main__":
    main()
