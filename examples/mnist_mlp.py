"""MNIST with the course's 784-50-10 multilayer perceptron and plain SGD.

A 28x28 image is flattened to 784 inputs, one hidden layer of 50 units (ReLU, or the
logistic sigmoid with --activation sigmoid) feeds 10 outputs, and cross-entropy on the
logits is minimised by minibatch SGD. For comparison: scikit-learn's
MLPClassifier(hidden_layer_sizes=(50,)) reaches about 97.7 % test accuracy on MNIST after
10 epochs. Without --data the bundled 8x8 Digits, resized to 28x28, stand in for MNIST
(1438 training images: expect lower accuracy).

    python examples/mnist_mlp.py --data ~/data/mnist --epochs 10
"""

from __future__ import annotations

from typing import Dict, List, Optional

import common

import gradflow.nn as nn
from gradflow import optim


class MLP(nn.Sequential):
    """784 -> hidden -> 10, the hidden layer followed by `activation`."""

    def __init__(self, hidden: int = 50, activation: str = "relu") -> None:
        act = nn.ReLU() if activation == "relu" else nn.Sigmoid()
        super().__init__(nn.Flatten(), nn.Linear(28 * 28, hidden), act, nn.Linear(hidden, 10))


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    p = common.parser(__doc__, "mnist_mlp", epochs=10, batch_size=32, lr=0.1)
    p.add_argument("--hidden", type=int, default=50, help="hidden units")
    p.add_argument("--activation", choices=["relu", "sigmoid"], default="relu",
                   help="nonlinearity of the hidden layer")
    args = p.parse_args(argv)
    device = common.setup(args)

    data = common.loaders(*common.mnist(args.data, 28, args.smoke), args.batch_size)
    model = MLP(args.hidden, args.activation).to(device)
    print(model)
    optimizer = optim.SGD(model.parameters(), lr=args.lr)
    metrics = common.fit(model, data, optimizer, nn.CrossEntropyLoss(), args, device)
    print(f"final: test accuracy {metrics['test_accuracy']:.2f} %")
    return metrics


if __name__ == "__main__":
    main()
