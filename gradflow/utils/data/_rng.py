"""Random draws for the data pipeline (shuffling, splits, random transforms).

Every draw comes from an explicit `Generator` or, when none is given, from gradflow's global
CPU generator, so `gradflow.manual_seed(s)` makes shuffles and augmentations reproducible.
"""

from __future__ import annotations

from typing import Optional

import numpy as np


class Generator:
    """A random-number generator (PCG64) the data pipeline can draw from, like torch.Generator.

    `Generator().manual_seed(0)` gives a generator whose draws do not disturb the global one.

    >>> g = gf.Generator().manual_seed(0)
    >>> a = list(gf.utils.data.RandomSampler(range(5), generator=g))
    >>> _ = g.manual_seed(0)
    >>> a == list(gf.utils.data.RandomSampler(range(5), generator=g)), g.initial_seed()
    (True, 0)
    """

    def __init__(self, device: str = "cpu") -> None:
        if str(device) != "cpu":
            raise ValueError(f"Generator: only device='cpu' is supported, got '{device}'")
        self._seed = 67280421310721
        self._rng = np.random.Generator(np.random.PCG64(self._seed))

    def manual_seed(self, seed: int) -> "Generator":
        self._seed = int(seed)
        self._rng = np.random.Generator(np.random.PCG64(self._seed))
        return self

    def initial_seed(self) -> int:
        return self._seed

    def get_state(self) -> dict:
        return self._rng.bit_generator.state

    def set_state(self, state: dict) -> "Generator":
        self._rng.bit_generator.state = state
        return self


def _global_rng() -> np.random.Generator:
    """The NumPy generator behind gradflow.manual_seed on the CPU (looked up on every draw:
    manual_seed replaces it)."""
    from gradflow import backends

    return backends.cpu.generator


def numpy_rng(generator: Optional[Generator]) -> np.random.Generator:
    if generator is None:
        return _global_rng()
    rng = getattr(generator, "_rng", None)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"expected a gradflow Generator or None, got {type(generator).__name__}")
    return rng


def randperm(n: int, generator: Optional[Generator] = None) -> np.ndarray:
    """A random permutation of 0..n-1 (int64)."""
    return numpy_rng(generator).permutation(n).astype(np.int64)


def randint(low: int, high: int, generator: Optional[Generator] = None) -> int:
    """One integer uniform on [low, high)."""
    return int(numpy_rng(generator).integers(low, high))


def rand(generator: Optional[Generator] = None) -> float:
    """One float uniform on [0, 1)."""
    return float(numpy_rng(generator).random())


def seed_cpu_global(seed: int) -> None:
    """Reseed only the global CPU generator (used in worker processes, where touching a GPU
    context inherited through fork would be unsafe)."""
    from gradflow import backends

    backends.cpu.manual_seed(seed)
