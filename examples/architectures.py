"""AlexNet and VGG-16 as in the lectures, built, summarised and run forward and backward.

Both are defined as torchvision defines them (ImageNet-sized: 1000 classes), with an
AdaptiveAvgPool2d in front of the classifier (6x6 for AlexNet, 7x7 for VGG-16) so they accept
any input size and their parameter counts do not depend on it: 61,100,840 for AlexNet and
138,357,544 for VGG-16, the same as at the original 224x224. For each model this prints
the per-layer table of gradflow.utils.summary at --size (output shape, parameters, FLOPs,
activation memory), then times one forward and backward pass of a random batch at that
size. At 224x224 a VGG-16 forward pass costs about 31 GFLOPs per image, so the default is
64x64.

    python examples/architectures.py --model vgg16 --size 224 --batch-size 1
"""

from __future__ import annotations

import argparse
import time
from typing import Callable, Dict, List, Optional, Union

import common

import gradflow as gf
import gradflow.nn as nn
import gradflow.nn.functional as F
from gradflow.utils import summary
from gradflow.utils.cli import add_out_argument, write_json

# torchvision's counts for the same definitions
REFERENCE_PARAMS = {"alexnet": 61_100_840, "vgg16": 138_357_544}
ALEXNET_MIN_SIZE = 63
VGG16_CONFIG: List[Union[int, str]] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                                       512, 512, 512, "M", 512, 512, 512, "M"]


class AlexNet(nn.Module):
    """Krizhevsky et al. 2012, single-GPU form: five conv layers, three fully connected."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
            nn.Dropout(dropout), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: gf.Tensor) -> gf.Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


class VGG16(nn.Module):
    """Simonyan and Zisserman 2014, configuration D: thirteen 3x3 conv layers in five
    blocks, each block ending in 2x2 max pooling, then three fully connected layers."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.5) -> None:
        super().__init__()
        layers: List[nn.Module] = []
        channels = 3
        for v in VGG16_CONFIG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(v), kernel_size=3, padding=1), nn.ReLU()]
                channels = int(v)
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x: gf.Tensor) -> gf.Tensor:
        return self.classifier(self.avgpool(self.features(x)).flatten(1))


MODELS: Dict[str, Callable[[], nn.Module]] = {"alexnet": AlexNet, "vgg16": VGG16}


def forward_backward(model: nn.Module, batch_size: int, size: int, device: gf.device
                     ) -> Dict[str, float]:
    """Seconds for one training-mode forward and one backward pass on a random batch."""
    model.train()
    x = gf.randn(batch_size, 3, size, size, device=device)
    target = gf.randint(0, 1000, (batch_size,), device=device)
    start = time.perf_counter()
    loss = F.cross_entropy(model(x), target)
    loss.item()
    middle = time.perf_counter()
    loss.backward()
    next(model.parameters()).grad.sum().item()
    return {"forward_s": middle - start, "backward_s": time.perf_counter() - middle}


def main(argv: Optional[List[str]] = None) -> Dict[str, Dict[str, float]]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=common.HelpFormatter)
    p.add_argument("--model", choices=[*MODELS, "all"], default="all", help="which to build")
    p.add_argument("--size", type=int, default=64, help="input height and width")
    p.add_argument("--batch-size", type=int, default=2, help="batch of the timed pass")
    p.add_argument("--device", help=common.DEVICE_HELP)
    p.add_argument("--seed", type=int, default=0, help=common.SEED_HELP)
    p.add_argument("--smoke", action="store_true",
                   help="64x64 inputs, batch of 1: seconds, to check that everything runs")
    add_out_argument(p, "architectures")
    args = p.parse_args(argv)
    names = list(MODELS) if args.model == "all" else [args.model]
    if args.smoke:
        args.size, args.batch_size = 64, 1
    if "alexnet" in names and args.size < ALEXNET_MIN_SIZE:
        p.error(f"AlexNet needs --size >= {ALEXNET_MIN_SIZE}: its last max pooling would get "
                "an empty input")
    gf.manual_seed(args.seed)
    device = common.choose_device(args.device, ("conv2d", "max_pool2d", "adaptive_avg_pool2d"))

    results: Dict[str, Dict[str, float]] = {}
    for name in names:
        model = MODELS[name]().to(device)
        table = summary(model, (3, args.size, args.size))
        print(f"\n{name} at {args.size}x{args.size}\n{table}")
        print(f"parameters: {table.total_params:,} at any input size, 224x224 included "
              f"(torchvision's {name}: {REFERENCE_PARAMS[name]:,})")
        timing = forward_backward(model, args.batch_size, args.size, device)
        print(f"batch of {args.batch_size}: forward {timing['forward_s']:.2f} s, "
              f"backward {timing['backward_s']:.2f} s")
        results[name] = {"params": table.total_params, "flops": table.total_flops, **timing}
    write_json(args.out, "results.json", results)
    return results


if __name__ == "__main__":
    main()
