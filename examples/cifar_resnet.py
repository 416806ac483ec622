"""CIFAR-10 with ResNet-20 (He et al., 2016, section 4.2), or its bottleneck variant.

ResNet-20: a 3x3 conv to 16 channels, then three stages of three BasicBlocks (16, 32 and 64
channels at 32x32, 16x16 and 8x8; the first block of stages 2 and 3 strides by 2), global
average pooling and a 10-way linear layer: 6 * 3 + 2 = 20 layers with weights. A
BasicBlock is conv3x3-BN-ReLU-conv3x3-BN, plus the identity; where the shape changes the
identity becomes a 1x1 strided conv + BN ("option B"). --block bottleneck uses Bottleneck
blocks instead (1x1 reduce, 3x3, 1x1 expand by 4; stage outputs 64, 128, 256 channels:
ResNet-29). Training: random 32x32 crops of the 4-pixel-padded image and horizontal flips,
SGD with momentum 0.9 and weight decay 5e-4, cosine-annealed learning rate.
Without --data a stand-in made of the bundled Digits (3x32x32) replaces CIFAR-10, trained
without flips (a mirrored digit is another glyph); the defaults (10 epochs, batches of 64,
lr 0.05) fit it. For CIFAR-10 itself, He et al.'s schedule is closer to:

    python examples/cifar_resnet.py --data ~/data/cifar10 --epochs 30 --batch-size 128 --lr 0.1
"""

from __future__ import annotations

from typing import Dict, List, Optional, Type, Union

import common

import gradflow.nn as nn
from gradflow import Tensor, optim
from gradflow import transforms as T
from gradflow.optim.lr_scheduler import CosineAnnealingLR


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)


def downsample(in_planes: int, out_planes: int, stride: int) -> Optional[nn.Module]:
    """The option-B shortcut (1x1 conv + BN) where the shape changes, else None (identity)."""
    if stride == 1 and in_planes == out_planes:
        return None
    return nn.Sequential(conv1x1(in_planes, out_planes, stride), nn.BatchNorm2d(out_planes))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.downsample = downsample(in_planes, planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = conv1x1(in_planes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, out_planes)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.relu = nn.ReLU()
        self.downsample = downsample(in_planes, out_planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


Block = Type[Union[BasicBlock, Bottleneck]]


class CifarResNet(nn.Module):
    """The CIFAR ResNet: a 16-channel stem, three stages of `blocks` blocks, pool, linear."""

    def __init__(self, block: Block, blocks: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        self.in_planes = 16
        self.conv1 = conv3x3(3, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        self.layer1 = self._make_layer(block, 16, blocks, stride=1)
        self.layer2 = self._make_layer(block, 32, blocks, stride=2)
        self.layer3 = self._make_layer(block, 64, blocks, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(64 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        layers = []
        for s in [stride] + [1] * (blocks - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    p = common.parser(__doc__, "cifar_resnet", epochs=10, batch_size=64, lr=0.05,
                      data_help=common.CIFAR_HELP)
    p.add_argument("--block", choices=["basic", "bottleneck"], default="basic",
                   help="basic: ResNet-20; bottleneck: 1x1-3x3-1x1 blocks (ResNet-29)")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=5e-4, help="SGD weight decay (L2)")
    args = p.parse_args(argv)
    device = common.setup(args, kernels=("conv2d", "batch_norm_train", "adaptive_avg_pool2d"))

    flips = [T.RandomHorizontalFlip()] if args.data else []  # not for the digits stand-in
    augment = [T.RandomCrop(32, padding=4), *flips]
    data = common.loaders(*common.cifar10(args.data, augment, args.smoke), args.batch_size)
    model = CifarResNet(BasicBlock if args.block == "basic" else Bottleneck).to(device)
    print(f"{'ResNet-20' if args.block == 'basic' else 'ResNet-29 (bottleneck)'}: "
          f"{common.count_parameters(model):,} parameters")
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                          weight_decay=args.weight_decay)
    scheduler = CosineAnnealingLR(optimizer, T_max=args.epochs)
    metrics = common.fit(model, data, optimizer, nn.CrossEntropyLoss(), args, device, scheduler)
    print(f"final: test accuracy {metrics['test_accuracy']:.2f} %")
    return metrics


if __name__ == "__main__":
    main()
