"""Digits: the 1797 8×8 handwritten digits of the UCI "Optical Recognition of Handwritten
Digits" collection (its test part; the set scikit-learn bundles), shipped with gradflow.

Each image counts the "on" pixels of a 4×4 block of a 32×32 bitmap, so pixels are integers
0..16. The file digits.npz beside this module holds `images` (1797×8×8 uint8) and `labels`
(1797 uint8), written once from scikit-learn's copy of the data; gradflow does not depend on
scikit-learn. Source: E. Alpaydin, C. Kaynak, UCI Machine Learning Repository (CC BY 4.0).
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Tuple

import numpy as np

from gradflow.datasets.vision import VisionDataset

_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "digits.npz")
# The file is ordered by writer, so a contiguous split would test on unseen writers only; every
# 5th sample is a test sample instead: 1438 train / 359 test, the same every time.
TEST_EVERY = 5


def load_digits() -> Tuple[np.ndarray, np.ndarray]:
    """(images 1797×8×8 uint8 in 0..16, labels 1797 int64 in 0..9), in the original order."""
    with np.load(_PATH, allow_pickle=False) as f:
        return f["images"], f["labels"].astype(np.int64)


class Digits(VisionDataset):
    """The bundled 8×8 digits; train=False gives every 5th sample (359), train=True the
    other 1438, so both splits mix all writers.

    `dataset[i]` is `(image, label)`: the image an 8×8 float32 NumPy array in [0, 1] (pixel
    count / 16; ToTensor makes it 1×8×8, `Resize(32)` 32×32 for LeNet) and the label an int,
    each passed through `transform` / `target_transform` when given. `.data` holds the split's
    raw 0..16 uint8 images, `.targets` its int64 labels. `root` is accepted, for the same
    call shape as the file-based datasets, and ignored: the data ships with gradflow.

    >>> train, test = gf.datasets.Digits(), gf.datasets.Digits(train=False)
    >>> len(train), len(test), train[0][0].shape, train[0][1]
    (1438, 359, (8, 8), 0)
    """

    classes = [str(d) for d in range(10)]

    def __init__(self, root: Optional[str] = None, train: bool = True,
                 transform: Optional[Callable] = None,
                 target_transform: Optional[Callable] = None) -> None:
        images, labels = load_digits()
        is_test = np.arange(len(labels)) % TEST_EVERY == TEST_EVERY - 1
        part = ~is_test if train else is_test
        super().__init__(train, transform, target_transform)
        self.data = images[part]
        self.targets = labels[part]

    def image(self, index: int) -> np.ndarray:
        """Image `index` as float32 in [0, 1]: pixel count / 16."""
        return self.data[index].astype(np.float32) / np.float32(16)
