"""Turning a list of samples into one batch (default_collate) and samples into tensors
(default_convert), with PyTorch's rules:

- tensors are stacked along a new first dimension;
- NumPy arrays and NumPy scalars are stacked and become tensors of their dtype (a uint8
  image stays uint8); dtypes gradflow lacks map as `gradflow.types.from_numpy_dtype` says
  (uint16/32/64 -> int64, float16 -> float32);
- Python floats become a float64 tensor, ints an int64 tensor, bools a bool tensor;
- strings and bytes are returned as given (a sequence);
- dicts, namedtuples, tuples and lists are collated field by field (tuples come back as lists).
"""

from __future__ import annotations

import collections.abc
from typing import Any, List, Sequence

import numpy as np

from gradflow.types import from_numpy_dtype

_BAD_TYPE = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)


def _is_tensor(x: Any) -> bool:
    from gradflow.tensor import Tensor

    return isinstance(x, Tensor)


def _array_to_tensor(a: np.ndarray):
    import gradflow

    if a.dtype.kind in "OUSVMm":
        raise TypeError(_BAD_TYPE.format(a.dtype))
    target = from_numpy_dtype(a.dtype).np
    return gradflow.from_numpy(np.ascontiguousarray(a, dtype=target))


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch (see the module docstring for the rules).

    >>> batch = gf.utils.data.default_collate([(gf.ones(2), 0), (gf.zeros(2), 1)])
    >>> batch
    [tensor([[1., 1.],
            [0., 0.]]), tensor([0, 1])]
    """
    import gradflow

    elem = batch[0]
    if _is_tensor(elem):
        return gradflow.stack(list(batch), 0)
    if isinstance(elem, (np.ndarray, np.generic)) and not isinstance(elem, (np.str_, np.bytes_)):
        return _array_to_tensor(np.stack([np.asarray(b) for b in batch]))
    if isinstance(elem, float):
        return gradflow.from_numpy(np.array(batch, dtype=np.float64))
    if isinstance(elem, bool):
        return gradflow.from_numpy(np.array(batch, dtype=np.bool_))
    if isinstance(elem, int):
        return gradflow.from_numpy(np.array(batch, dtype=np.int64))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        collated = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(collated)
        except TypeError:
            return collated
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(s) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError(
                "default_collate: each element in list of batch should be of equal size"
            )
        fields: List[Any] = [default_collate(s) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return fields
        try:
            return type(elem)(fields)
        except TypeError:
            return fields
    raise TypeError(_BAD_TYPE.format(type(elem)))


def default_convert(data: Any) -> Any:
    """Without batching (`batch_size=None`): NumPy arrays become tensors, containers are
    converted field by field, everything else is returned as is.

    >>> gf.utils.data.default_convert(np.array([1.0, 2.0]))
    tensor([1., 2.], dtype=gradflow.float64)
    """
    if isinstance(data, np.ndarray) and data.dtype.kind not in "OUSVMm":
        return _array_to_tensor(data)
    if isinstance(data, collections.abc.Mapping):
        converted = {k: default_convert(v) for k, v in data.items()}
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data
