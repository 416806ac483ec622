"""A convolutional autoencoder on MNIST: compress 1x28x28 digits to a 32x7x7 code and back.

The encoder is two blocks of conv 3x3 + ReLU + max pooling 2x2 (28 -> 14 -> 7). The
default decoder upsamples with learned stride-2 ConvTranspose2d layers (7 -> 14 -> 28).
--variant unpool mirrors the encoder instead: MaxPool2d(return_indices=True) remembers
where each maximum came from, MaxUnpool2d puts the values back there (zeros elsewhere),
and stride-1 ConvTranspose2d layers fill in the rest (the indices pass information around
the 32x7x7 code: where each maximum was). The loss is the mean squared error between input
and reconstruction; a PNG shows test digits (top row) above their reconstructions (bottom
row). Without --data the bundled Digits, resized to 28x28, are used.

    python examples/conv_autoencoder.py --data ~/data/mnist --variant unpool
"""

from __future__ import annotations

from typing import Dict, List, Optional

import common

import gradflow as gf
import gradflow.nn as nn
from gradflow import Tensor, optim
from gradflow.utils.data import DataLoader


class ConvAutoencoder(nn.Module):
    """Conv + max-pool encoder, stride-2 transposed-conv decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # 16x14x14
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 32x7x7
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(32, 16, 2, stride=2), nn.ReLU(),            # 16x14x14
            nn.ConvTranspose2d(16, 1, 2, stride=2), nn.Sigmoid(),          # 1x28x28
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


class UnpoolAutoencoder(nn.Module):
    """The same encoder, its pooling indices reused by MaxUnpool2d in the decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2, return_indices=True)
        self.unpool = nn.MaxUnpool2d(2)
        self.deconv2 = nn.ConvTranspose2d(32, 16, 3, padding=1)
        self.deconv1 = nn.ConvTranspose2d(16, 1, 3, padding=1)
        self.relu = nn.ReLU()
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        x, indices1 = self.pool(self.relu(self.conv1(x)))          # 16x14x14
        code, indices2 = self.pool(self.relu(self.conv2(x)))       # 32x7x7
        x = self.relu(self.deconv2(self.unpool(code, indices2)))   # 16x14x14
        return self.sigmoid(self.deconv1(self.unpool(x, indices1)))  # 1x28x28


@gf.no_grad()
def plot_reconstructions(model: nn.Module, loader: DataLoader, device: gf.device, out: str,
                         n: int = 8) -> None:
    """Write out/reconstructions.png: n test images above the model's reconstructions."""
    plt = common.pyplot()
    if plt is None:
        return
    model.eval()
    images = next(iter(loader))[0][:n].to(device)
    rows = [images.cpu().numpy(), model(images).cpu().numpy()]
    fig, axes = plt.subplots(2, len(rows[0]), figsize=(1.2 * len(rows[0]), 2.6), squeeze=False)
    for r, (batch, title) in enumerate(zip(rows, ["original", "reconstruction"])):
        axes[r, 0].set_title(title, loc="left", fontsize=9)
        for ax, img in zip(axes[r], batch):
            ax.imshow(img[0], cmap="gray", vmin=0.0, vmax=1.0)
            ax.axis("off")
    common.save_figure(fig, out, "reconstructions.png")


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    p = common.parser(__doc__, "conv_autoencoder", epochs=10, batch_size=64, lr=1e-3)
    p.add_argument("--variant", choices=["transpose", "unpool"], default="transpose",
                   help="transpose: stride-2 ConvTranspose2d decoder; unpool: MaxUnpool2d")
    args = p.parse_args(argv)
    kernels = ("conv2d", "max_pool2d") + (("max_unpool2d",) if args.variant == "unpool" else ())
    device = common.setup(args, kernels)

    data = common.loaders(*common.mnist(args.data, 28, args.smoke), args.batch_size)
    model = (ConvAutoencoder() if args.variant == "transpose" else UnpoolAutoencoder()).to(device)
    print(model)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    metrics = common.fit(model, data, optimizer, nn.MSELoss(), args, device, reconstruct=True)
    plot_reconstructions(model, data[1], device, args.out)
    print(f"final: test MSE {metrics['test_loss']:.5f}")
    return metrics


if __name__ == "__main__":
    main()
