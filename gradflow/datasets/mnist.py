"""MNIST and Fashion-MNIST from the IDX files of their standard distributions.

Nothing is downloaded. Put the four files (gzipped or not) in `root`, or in
`root/MNIST/raw` (`root/FashionMNIST/raw`), torchvision's layout:

    train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]   (train=True, 60000 images)
    t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]    (train=False, 10000 images)

IDX format: a big-endian header — two zero bytes, a type code (0x08 = unsigned byte) and the
number of dimensions d — then d big-endian uint32 sizes, then the values in row-major order.
"""

from __future__ import annotations

import gzip
import os
import zlib
from typing import Callable, List, Optional, Tuple

import numpy as np

from gradflow.datasets.vision import VisionDataset

_IDX_UBYTE = 0x08


def read_idx(path: str, expected_ndim: int) -> np.ndarray:
    """The uint8 array stored in an IDX file (gzipped when the name ends in .gz)."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:  # gzip's errors for truncated/corrupt files
        raise ValueError(f"cannot read IDX file '{path}': {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"'{path}' is not an IDX file (bad magic number)")
    if raw[2] != _IDX_UBYTE:
        raise ValueError(f"'{path}': IDX type code 0x{raw[2]:02x} is not unsigned byte (0x08)")
    ndim = raw[3]
    if ndim != expected_ndim:
        raise ValueError(f"'{path}': expected {expected_ndim} dimensions, the header says {ndim}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"'{path}' is truncated: the header needs {header} bytes")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    size = int(np.prod(shape, dtype=np.int64))
    if len(raw) - header != size:
        raise ValueError(
            f"'{path}': shape {shape} needs {size} data bytes, the file has {len(raw) - header}"
            " (truncated or corrupted)"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape).copy()


def _find(dirs: List[str], name: str) -> Optional[str]:
    for d in dirs:
        for candidate in (name, name + ".gz"):
            path = os.path.join(d, candidate)
            if os.path.isfile(path):
                return path
    return None


class MNIST(VisionDataset):
    """MNIST handwritten digits: 28×28 grayscale images, labels 0..9.

    `dataset[i]` is `(image, label)`: the image a 28×28 uint8 NumPy array (ToTensor turns it
    into a 1×28×28 float tensor in [0, 1]) and the label an int, each passed through
    `transform` / `target_transform` when given. `.data` (N×28×28 uint8) and `.targets`
    (N int64) hold the whole split.

    With the files in ~/data (skipped as a doctest, which has no data files); without them, the
    error says where they go:

    >>> train = gf.datasets.MNIST("~/data", transform=gf.transforms.ToTensor())  # doctest: +SKIP
    >>> gf.datasets.MNIST("no/such/folder")
    Traceback (most recent call last):
        ...
    FileNotFoundError: MNIST (train split): put the files 'train-images-idx3-ubyte' and ...
    """

    classes = [f"{d} - {w}" for d, w in enumerate(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])]
    _folder = "MNIST"

    def __init__(self, root: str, train: bool = True, transform: Optional[Callable] = None,
                 target_transform: Optional[Callable] = None, download: bool = False) -> None:
        super().__init__(train, transform, target_transform)
        self.root = os.path.expanduser(str(root))
        images, labels = self._paths(train)
        dirs = self._dirs()
        found = [_find(dirs, images), _find(dirs, labels)]
        if None in found:
            lead = "gradflow never downloads data; " if download else ""
            raise FileNotFoundError(lead + self._missing_message(root, train))
        self.data = read_idx(found[0], 3)
        self.targets = read_idx(found[1], 1).astype(np.int64)
        if len(self.data) != len(self.targets):
            raise ValueError(
                f"{type(self).__name__}: {found[0]} has {len(self.data)} images but "
                f"{found[1]} has {len(self.targets)} labels"
            )

    @staticmethod
    def _paths(train: bool) -> Tuple[str, str]:
        prefix = "train" if train else "t10k"
        return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"

    def _dirs(self) -> List[str]:
        return [self.root, os.path.join(self.root, self._folder, "raw")]

    def _missing_message(self, root: str, train: bool) -> str:
        images, labels = self._paths(train)
        root = os.path.expanduser(str(root))
        raw = os.path.join(root, self._folder, "raw")
        return (
            f"{type(self).__name__} ({'train' if train else 'test'} split): put the files "
            f"'{images}' and '{labels}' (each may be gzipped, '.gz') in '{root}' or in '{raw}'"
        )


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando): MNIST's format and file names, 10 clothing classes.

    >>> gf.datasets.FashionMNIST("no/such/folder", train=False)
    Traceback (most recent call last):
        ...
    FileNotFoundError: FashionMNIST (test split): put the files 't10k-images-idx3-ubyte' and ...
    """

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
    _folder = "FashionMNIST"
