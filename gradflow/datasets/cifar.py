"""CIFAR-10 from its binary distribution (never the pickled "python version").

Nothing is downloaded. Put the folder `cifar-10-batches-bin` of the binary archive in
`root`: it holds data_batch_1.bin … data_batch_5.bin (train=True, 50000 images) and
test_batch.bin (train=False, 10000 images).

Binary format: records of 1 + 3072 bytes, back to back: the label (0..9), then the red,
green and blue 32×32 planes, each row-major.
"""

from __future__ import annotations

import os
from typing import Callable, List, Optional, Tuple

import numpy as np

from gradflow.datasets.vision import VisionDataset

_SIDE = 32
_RECORD = 1 + 3 * _SIDE * _SIDE


def read_cifar_bin(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """(images N×32×32×3 uint8, labels N int64) from one CIFAR-10 binary batch file."""
    with open(path, "rb") as f:
        raw = np.frombuffer(f.read(), np.uint8)
    if raw.size == 0 or raw.size % _RECORD:
        raise ValueError(
            f"'{path}' is not a CIFAR-10 binary batch: {raw.size} bytes is not a positive "
            f"multiple of the {_RECORD}-byte record (truncated or corrupted?)"
        )
    records = raw.reshape(-1, _RECORD)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise ValueError(f"'{path}': label {labels.max()} out of range 0..9 (corrupted?)")
    images = records[:, 1:].reshape(-1, 3, _SIDE, _SIDE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


class CIFAR10(VisionDataset):
    """CIFAR-10: 32×32 colour images in 10 classes.

    `dataset[i]` is `(image, label)`: the image a 32×32×3 (H×W×C) uint8 NumPy array
    (ToTensor turns it into a 3×32×32 float tensor in [0, 1]) and the label an int, each passed
    through `transform` / `target_transform` when given. `.data` (N×32×32×3 uint8) and
    `.targets` (N int64) hold the whole split.

    With the files in ~/data (skipped as a doctest, which has no data files); without them, the
    error says where they go:

    >>> train = gf.datasets.CIFAR10("~/data", transform=gf.transforms.ToTensor())  # doctest: +SKIP
    >>> gf.datasets.CIFAR10("no/such/folder", train=False)
    Traceback (most recent call last):
        ...
    FileNotFoundError: CIFAR10 (test split): put the binary distribution's files ...
    """

    base_folder = "cifar-10-batches-bin"
    train_list = [f"data_batch_{i}.bin" for i in range(1, 6)]
    test_list = ["test_batch.bin"]
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]

    def __init__(self, root: str, train: bool = True, transform: Optional[Callable] = None,
                 target_transform: Optional[Callable] = None, download: bool = False) -> None:
        super().__init__(train, transform, target_transform)
        self.root = os.path.expanduser(str(root))
        folder = os.path.join(self.root, self.base_folder)
        names: List[str] = self.train_list if train else self.test_list
        paths = [os.path.join(folder, n) for n in names]
        missing = [p for p in paths if not os.path.isfile(p)]
        if download or missing:
            lead = "gradflow never downloads data; " if download else ""
            raise FileNotFoundError(
                f"CIFAR10 ({'train' if train else 'test'} split): {lead}put the binary "
                f"distribution's files {', '.join(repr(n) for n in names)} in '{folder}'"
                + (f" (missing: {', '.join(repr(p) for p in missing)})" if missing else "")
            )
        parts = [read_cifar_bin(p) for p in paths]
        self.data = np.concatenate([p[0] for p in parts])
        self.targets = np.concatenate([p[1] for p in parts])
