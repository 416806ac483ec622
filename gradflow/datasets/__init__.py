"""Datasets read from local files (MNIST, FashionMNIST, CIFAR10) or bundled (Digits)."""

from gradflow.datasets.cifar import CIFAR10
from gradflow.datasets.digits import Digits
from gradflow.datasets.mnist import MNIST, FashionMNIST

__all__ = ["CIFAR10", "Digits", "FashionMNIST", "MNIST"]
