"""What the example scripts share, each in one place: the command line, device choice, the
MNIST / CIFAR-10 datasets with the bundled Digits standing in, the train / evaluate loop,
checkpoints, and the figures and JSON results written into --out (default runs/<script>/)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from tqdm import tqdm

import gradflow as gf
import gradflow.nn as nn
from gradflow import transforms as T
from gradflow.backends import get_backend
from gradflow.datasets import CIFAR10, MNIST, Digits
from gradflow.demo import DIGITS_MEAN, DIGITS_STD
from gradflow.optim import Optimizer
from gradflow.optim.lr_scheduler import LRScheduler
from gradflow.utils.cli import HelpFormatter, add_out_argument, out_path, write_json
from gradflow.utils.data import DataLoader, Dataset, Subset

SMOKE_TRAIN, SMOKE_TEST, SMOKE_BATCH = 64, 32, 16  # --smoke: samples per split, batch size
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
MNIST_HELP = "folder with the MNIST IDX files (default: the bundled 8x8 Digits, upscaled)"
SEED_HELP = "gradflow.manual_seed: initialisation, shuffling, augmentation"
DEVICE_HELP = ("cpu or cuda[:N] (default: cuda when available and it has the kernels this model "
               "needs, else cpu)")
CIFAR_HELP = ("folder holding cifar-10-batches-bin/ (default: a stand-in made of the bundled "
              "Digits, upscaled to 3x32x32)")


def parser(doc: Optional[str], name: str, *, epochs: int, batch_size: int, lr: Optional[float],
           data_help: str = MNIST_HELP, checkpoint: bool = True) -> argparse.ArgumentParser:
    """The options every training script takes, --out defaulting to runs/`name` (no --lr when
    `lr` is None, no --checkpoint without `checkpoint`); scripts add their own after these."""
    p = argparse.ArgumentParser(description=doc, formatter_class=HelpFormatter)
    add_out_argument(p, name)
    p.add_argument("--data", metavar="DIR", help=data_help)
    p.add_argument("--device", help=DEVICE_HELP)
    p.add_argument("--epochs", type=int, default=epochs, help="passes over the training set")
    p.add_argument("--batch-size", type=int, default=batch_size, help="samples per step")
    if lr is not None:
        p.add_argument("--lr", type=float, default=lr, help="learning rate")
    p.add_argument("--seed", type=int, default=0, help=SEED_HELP)
    if checkpoint:
        p.add_argument("--checkpoint", metavar="PATH",
                       help="save the model and optimizer state_dicts here after training "
                            "(gradflow.save; not saved unless given)")
    p.add_argument("--smoke", action="store_true",
                   help=f"1 epoch on {SMOKE_TRAIN} training and {SMOKE_TEST} test samples in "
                        f"batches of {SMOKE_BATCH}: seconds, to check that everything runs")
    return p


def setup(args: argparse.Namespace, kernels: Sequence[str] = ()) -> gf.device:
    """Seed gradflow, shorten the run under --smoke, and choose the device (see choose_device)."""
    gf.manual_seed(args.seed)
    if args.smoke:
        args.epochs, args.batch_size = 1, min(args.batch_size, SMOKE_BATCH)
    return choose_device(args.device, kernels)


def choose_device(requested: Optional[str], kernels: Sequence[str] = ()) -> gf.device:
    """`requested`, or cuda when a GPU is there, else cpu. A device whose backend does not
    implement one of `kernels` (names of gradflow.backends.base.Backend methods, such as
    'conv2d') falls back to cpu, with a printed line saying so."""
    name = requested or ("cuda" if gf.cuda.is_available() else "cpu")
    backend = type(get_backend(name))
    missing = backend.lacks(*kernels)
    if missing:
        print(f"device: {name} has no {', '.join(missing)} kernel yet; running on cpu instead")
        name = "cpu"
    print(f"device: {name}")
    return gf.device(name)


# ---------------------------------------------------------------- datasets

def _smoke(train: Dataset, test: Dataset, smoke: bool) -> Tuple[Dataset, Dataset]:
    if not smoke:
        return train, test
    return (Subset(train, range(min(SMOKE_TRAIN, len(train)))),
            Subset(test, range(min(SMOKE_TEST, len(test)))))


def mnist(data: Optional[str], size: int = 28, smoke: bool = False) -> Tuple[Dataset, Dataset]:
    """MNIST's train and test splits as 1×size×size float tensors in [0, 1]: read from the
    IDX files in `data` (28×28, zero-padded up to `size`), or without `data` the bundled
    8×8 Digits resized to size×size (1438 train, 359 test images)."""
    if data is None:
        transform = T.Compose([T.ToTensor(), T.Resize(size)])
        train = Digits(train=True, transform=transform)
        test = Digits(train=False, transform=transform)
        print(f"data: bundled Digits, 8x8 resized to {size}x{size} (pass --data DIR for MNIST)")
    else:
        pad = [T.Pad((size - 28) // 2)] if size > 28 else []
        transform = T.Compose([T.ToTensor(), *pad])
        train = MNIST(data, train=True, transform=transform)
        test = MNIST(data, train=False, transform=transform)
        print(f"data: MNIST from {data}, 28x28" + (f" padded to {size}x{size}" if pad else ""))
    return _smoke(train, test, smoke)


def cifar10(data: Optional[str], augment: Sequence[Callable], smoke: bool = False
            ) -> Tuple[Dataset, Dataset]:
    """CIFAR-10's train and test splits as 3×32×32 float tensors normalised by CIFAR-10's
    channel statistics, `augment` (tensor transforms) applied to the training images only.
    Without `data`, a stand-in that is not CIFAR-10: the bundled Digits resized to 32×32,
    copied into three channels and normalised by the Digits' pixel statistics."""
    if data is None:
        base = [T.ToTensor(), T.Resize(32), T.Lambda(lambda x: x.expand(3, 32, 32))]
        normalize = T.Normalize([DIGITS_MEAN] * 3, [DIGITS_STD] * 3)
        print("data: STAND-IN for CIFAR-10 -- the bundled Digits, 8x8 resized to 3x32x32 "
              "(pass --data DIR for the real CIFAR-10)")
        train = Digits(train=True, transform=T.Compose([*base, *augment, normalize]))
        test = Digits(train=False, transform=T.Compose([*base, normalize]))
    else:
        base = [T.ToTensor()]
        normalize = T.Normalize(CIFAR_MEAN, CIFAR_STD)
        print(f"data: CIFAR-10 from {data}")
        train = CIFAR10(data, train=True, transform=T.Compose([*base, *augment, normalize]))
        test = CIFAR10(data, train=False, transform=T.Compose([*base, normalize]))
    return _smoke(train, test, smoke)


def stack(dataset: Dataset, limit: Optional[int] = None) -> Tuple[gf.Tensor, gf.Tensor]:
    """The first `limit` samples of `dataset` (all without it) as one tensor of images and one
    of labels, for scripts that slice their batches themselves."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    images, labels = zip(*(dataset[i] for i in range(n)))
    return gf.stack(list(images)), gf.tensor(list(labels))


def loaders(train: Dataset, test: Dataset, batch_size: int) -> Tuple[DataLoader, DataLoader]:
    """A shuffling loader over `train` and an ordered one over `test`."""
    return (DataLoader(train, batch_size=batch_size, shuffle=True),
            DataLoader(test, batch_size=max(batch_size, 256)))


# ---------------------------------------------------------------- training

def train_one_epoch(model: nn.Module, loader: DataLoader, optimizer: Optimizer,
                    criterion: Callable, device: gf.device, desc: str = "train",
                    reconstruct: bool = False) -> float:
    """One pass over `loader`; returns the mean training loss. With `reconstruct` the target
    is the input itself (autoencoders) and the labels are ignored."""
    model.train()
    total, count = 0.0, 0
    bar = tqdm(loader, desc=desc, leave=False, unit="batch")
    for inputs, labels in bar:
        inputs = inputs.to(device)
        targets = inputs if reconstruct else labels.to(device)
        loss = criterion(model(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(inputs)
        count += len(inputs)
        bar.set_postfix(loss=f"{total / count:.4f}")
    return total / count


@gf.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, criterion: Callable, device: gf.device,
             reconstruct: bool = False) -> Dict[str, float]:
    """Mean loss over `loader` and, for classifiers, the accuracy in percent."""
    model.eval()
    total, correct, count = 0.0, 0, 0
    for inputs, labels in tqdm(loader, desc="eval", leave=False, unit="batch"):
        inputs = inputs.to(device)
        outputs = model(inputs)
        if reconstruct:
            total += criterion(outputs, inputs).item() * len(inputs)
        else:
            labels = labels.to(device)
            total += criterion(outputs, labels).item() * len(inputs)
            correct += (outputs.argmax(1) == labels).sum().item()
        count += len(inputs)
    metrics = {"test_loss": total / count}
    if not reconstruct:
        metrics["test_accuracy"] = 100.0 * correct / count
    return metrics


def fit(model: nn.Module, loaders: Tuple[DataLoader, DataLoader], optimizer: Optimizer,
        criterion: Callable, args: argparse.Namespace, device: gf.device,
        scheduler: Optional[LRScheduler] = None, reconstruct: bool = False) -> Dict[str, float]:
    """Train for args.epochs (stepping `scheduler` once per epoch), evaluating after each
    epoch; write every epoch's metrics to args.out/metrics.json and save a checkpoint when
    args.checkpoint is set. Returns the last epoch's metrics."""
    train_loader, test_loader = loaders
    metrics: Dict[str, float] = {}
    history: List[Dict[str, float]] = []
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        train_loss = train_one_epoch(model, train_loader, optimizer, criterion, device,
                                     f"epoch {epoch}/{args.epochs}", reconstruct)
        metrics = {"train_loss": train_loss,
                   **evaluate(model, test_loader, criterion, device, reconstruct)}
        if scheduler is not None:
            scheduler.step()
        shown = "  ".join(f"{k.replace('_', ' ')} " + (f"{v:.2f} %" if "accuracy" in k
                                                         else f"{v:.4f}")
                          for k, v in metrics.items())
        seconds = time.perf_counter() - start
        tqdm.write(f"epoch {epoch}/{args.epochs}  lr {lr:.4g}  {shown}  ({seconds:.1f} s)")
        history.append({"epoch": epoch, "lr": lr, **metrics, "seconds": seconds})
    write_json(args.out, "metrics.json", {"final": metrics, "epochs": history,
                                          "args": vars(args)})
    if getattr(args, "checkpoint", None):
        save_checkpoint(args.checkpoint, model, optimizer, epoch=args.epochs, metrics=metrics,
                        args=vars(args))
    return metrics


def save_checkpoint(path: str, model: nn.Module, optimizer: Optimizer, **extra: Any) -> None:
    """gradflow.save of {'model': state_dict, 'optimizer': state_dict, **extra} to `path`."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    gf.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), **extra}, path)
    print(f"checkpoint: {path}")


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------- figures

def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend, or None (saying so) without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no figure written (pip install matplotlib)")
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, out: str, filename: str) -> Path:
    """Write `fig` to `out`/`filename` (creating the folder), print and return the path."""
    path = out_path(out, filename)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    pyplot().close(fig)
    print(f"figure: {path}")
    return path
