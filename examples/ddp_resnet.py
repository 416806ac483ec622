"""ResNet-20 trained data-parallel over MPI: DistributedDataParallel + DistributedSampler.

Every process holds the whole model and trains on its own share of each epoch
(DistributedSampler); DistributedDataParallel averages the gradients over the processes
during backward, so all processes take the same SGD steps: the global batch is
--batch-size times the number of processes. --sync-bn makes BatchNorm use the statistics of
the global batch (SyncBatchNorm). The test set is split over the processes too and the
metrics summed with all_reduce. Without --data the bundled Digits stand in for CIFAR-10.

    mpiexec -n 2 python examples/ddp_resnet.py --epochs 5
    python -m gradflow.distributed.run -n 2 examples/ddp_resnet.py --data ~/data/cifar10
"""

from __future__ import annotations

from typing import Dict, List, Optional

import common
from cifar_resnet import BasicBlock, CifarResNet

import gradflow as gf
import gradflow.distributed as dist
import gradflow.nn as nn
from gradflow import optim
from gradflow import transforms as T
from gradflow.nn.parallel import DistributedDataParallel as DDP
from gradflow.optim.lr_scheduler import CosineAnnealingLR
from gradflow.utils.data import DataLoader, DistributedSampler


def global_mean(total: float, count: int) -> float:
    """sum(total) / sum(count) over all processes."""
    both = gf.tensor([total, float(count)], dtype=gf.float64)
    dist.all_reduce(both)
    return both[0].item() / max(both[1].item(), 1.0)


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: optim.Optimizer,
                criterion: nn.Module, device: gf.device) -> float:
    model.train()
    total, count = 0.0, 0
    for inputs, labels in loader:
        loss = criterion(model(inputs.to(device)), labels.to(device))
        optimizer.zero_grad()
        loss.backward()  # returns with the gradients averaged over the processes
        optimizer.step()
        total += loss.item() * len(inputs)
        count += len(inputs)
    return global_mean(total, count)


@gf.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, criterion: nn.Module,
             device: gf.device) -> Dict[str, float]:
    """Loss and accuracy over the processes' shares of the test set together (the sampler
    repeats up to processes - 1 samples so that the shares are equal)."""
    model.eval()
    loss, correct, count = 0.0, 0.0, 0
    for inputs, labels in loader:
        outputs = model(inputs.to(device))
        labels = labels.to(device)
        loss += criterion(outputs, labels).item() * len(inputs)
        correct += (outputs.argmax(1) == labels).sum().item()
        count += len(inputs)
    return {"test_loss": global_mean(loss, count),
            "test_accuracy": 100.0 * global_mean(correct, count)}


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    p = common.parser(__doc__, "ddp_resnet", epochs=30, batch_size=64, lr=0.1,
                      data_help=common.CIFAR_HELP)
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    p.add_argument("--weight-decay", type=float, default=5e-4, help="SGD weight decay (L2)")
    p.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm instead of BatchNorm")
    args = p.parse_args(argv)
    if not dist.is_initialized():
        dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = common.setup(args, kernels=("conv2d", "batch_norm_train", "adaptive_avg_pool2d"))

    augment = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()]
    train_set, test_set = common.cifar10(args.data, augment, args.smoke)
    sampler = DistributedSampler(train_set, seed=args.seed)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, sampler=sampler)
    test_loader = DataLoader(test_set, batch_size=max(args.batch_size, 256),
                             sampler=DistributedSampler(test_set, shuffle=False))
    model = CifarResNet(BasicBlock)
    if args.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = DDP(model.to(device))  # copies rank 0's initial weights to every process
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                          weight_decay=args.weight_decay)
    scheduler = CosineAnnealingLR(optimizer, T_max=args.epochs)
    criterion = nn.CrossEntropyLoss()
    if rank == 0:
        print(f"ResNet-20 on {world} processes, {args.batch_size} samples each per step "
              f"(global batch {args.batch_size * world})")
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)  # a new shuffle each epoch, the same on every process
        metrics = {"train_loss": train_epoch(model, train_loader, optimizer, criterion, device)}
        metrics.update(evaluate(model, test_loader, criterion, device))
        scheduler.step()
        if rank == 0:
            print(f"epoch {epoch + 1}/{args.epochs}: train loss {metrics['train_loss']:.4f}, "
                  f"test loss {metrics['test_loss']:.4f}, "
                  f"test accuracy {metrics['test_accuracy']:.2f} %", flush=True)
    if rank == 0:
        common.write_json(args.out, "metrics.json", {"final": metrics, "processes": world})
    if args.checkpoint and rank == 0:
        common.save_checkpoint(args.checkpoint, model.module, optimizer, epoch=args.epochs,
                               metrics=metrics, args=vars(args))
    return metrics


if __name__ == "__main__":
    main()
