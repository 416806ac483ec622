"""The base of the image datasets, as torchvision's VisionDataset."""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import numpy as np

from gradflow.utils.data.dataset import Dataset


class VisionDataset(Dataset):
    """Labelled images: `.data` holds the split's images, `.targets` its int64 labels, and
    `dataset[i]` is `(image, label)`, each passed through `transform` / `target_transform`
    when given. Subclasses fill `data` and `targets`, and may override `image(i)` to convert
    a stored image.

    >>> from gradflow.datasets.vision import VisionDataset
    >>> ds = VisionDataset(train=True, target_transform=lambda t: t * 10)
    >>> ds.data, ds.targets = np.zeros((2, 3, 3), np.uint8), np.array([1, 2])
    >>> len(ds), ds[1][0].shape, ds[1][1]
    (2, (3, 3), 20)
    """

    data: np.ndarray
    targets: np.ndarray

    def __init__(self, train: bool, transform: Optional[Callable] = None,
                 target_transform: Optional[Callable] = None) -> None:
        self.train = train
        self.transform = transform
        self.target_transform = target_transform

    def __len__(self) -> int:
        return len(self.data)

    def image(self, index: int) -> Any:
        """The stored image `index`, before `transform`."""
        return self.data[index]

    def __getitem__(self, index: int) -> Tuple[Any, Any]:
        img, target = self.image(index), int(self.targets[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target
