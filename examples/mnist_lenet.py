"""MNIST with LeNet-5, as in the lectures (LeCun et al., 1998).

A 32x32 input (MNIST's 28x28 digits zero-padded by 2) goes through
C1 conv 5x5 -> 6x28x28, S2 pool 2x2 -> 6x14x14, C3 conv 5x5 -> 16x10x10,
S4 pool 2x2 -> 16x5x5, C5 conv 5x5 -> 120x1x1, F6 fully connected 84, output 10.
The classic variant uses tanh and average pooling (the paper's subsampling layers);
--variant relu uses ReLU and max pooling, the modern form. Trained with SGD + momentum.
Without --data the bundled 8x8 Digits, resized to 32x32, stand in for MNIST.

    python examples/mnist_lenet.py --data ~/data/mnist --variant relu
"""

from __future__ import annotations

from typing import Dict, List, Optional

import common

import gradflow.nn as nn
from gradflow import optim


class LeNet5(nn.Module):
    """LeNet-5 on 1x32x32 inputs; `variant` 'classic' (tanh, average pooling) or 'relu'."""

    def __init__(self, variant: str = "classic", num_classes: int = 10) -> None:
        super().__init__()
        act, pool = (nn.Tanh, nn.AvgPool2d) if variant == "classic" else (nn.ReLU, nn.MaxPool2d)
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, kernel_size=5), act(), pool(2),     # C1, S2
            nn.Conv2d(6, 16, kernel_size=5), act(), pool(2),    # C3, S4
            nn.Conv2d(16, 120, kernel_size=5), act(),           # C5
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(120, 84), act(),            # F6
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    p = common.parser(__doc__, "mnist_lenet", epochs=10, batch_size=32, lr=0.01)
    p.add_argument("--variant", choices=["classic", "relu"], default="classic",
                   help="classic: tanh + average pooling; relu: ReLU + max pooling")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    args = p.parse_args(argv)
    pool = "avg_pool2d" if args.variant == "classic" else "max_pool2d"
    device = common.setup(args, kernels=("conv2d", pool))

    data = common.loaders(*common.mnist(args.data, 32, args.smoke), args.batch_size)
    model = LeNet5(args.variant).to(device)
    print(model)
    print(f"parameters: {common.count_parameters(model):,}")
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    metrics = common.fit(model, data, optimizer, nn.CrossEntropyLoss(), args, device)
    print(f"final: test accuracy {metrics['test_accuracy']:.2f} %")
    return metrics


if __name__ == "__main__":
    main()
