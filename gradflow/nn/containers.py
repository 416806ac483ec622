"""Containers: Sequential (a pipeline), ModuleList and ModuleDict (registered collections),
ParameterList and ParameterDict."""

from __future__ import annotations

import operator
from collections import OrderedDict
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple, TypeVar, Union

from gradflow.nn.module import Module
from gradflow.nn.parameter import Parameter
from gradflow.tensor import Tensor

__all__ = ["ModuleDict", "ModuleList", "ParameterDict", "ParameterList", "Sequential"]


def _index(i: int, n: int, kind: str) -> int:
    try:
        i = operator.index(i)
    except TypeError:
        raise TypeError(f"{kind} indices must be integers or slices, not "
                        f"{type(i).__name__}") from None
    if not -n <= i < n:
        raise IndexError(f"index {i} is out of range for {kind} of length {n}")
    return i % n


_Self = TypeVar("_Self", bound="_ModuleSequence")


class _ModuleSequence(Module):
    """What Sequential and ModuleList share: modules in order, under the names "0", "1", ..."""

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def append(self: _Self, module: Module) -> _Self:
        self.add_module(str(len(self)), module)
        return self

    def extend(self: _Self, modules: Iterable[Module]) -> _Self:
        for m in modules:
            self.append(m)
        return self

    def _renumber(self, modules: List[Optional[Module]]) -> None:
        """Register `modules` afresh as "0".."n-1" (after a deletion or an insertion, as
        PyTorch renumbers)."""
        self._modules.clear()
        for i, m in enumerate(modules):
            self.add_module(str(i), m)


class Sequential(_ModuleSequence):
    """Sequential(m1, m2, …) or Sequential(OrderedDict(name=module)): forward feeds each
    module's output to the next.

    >>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> model(gf.ones(3, 4)).shape, model[1]
    (gradflow.Size([3, 2]), ReLU())
    """

    def __init__(self, *args: Any) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def __getitem__(self, idx: Union[int, slice]) -> Any:
        items = list(self._modules.items())
        if isinstance(idx, slice):
            return type(self)(OrderedDict(items[idx]))
        return items[_index(idx, len(items), "Sequential")][1]

    def __setitem__(self, idx: int, module: Module) -> None:
        key = list(self._modules)[_index(idx, len(self), "Sequential")]
        setattr(self, key, module)

    def __delitem__(self, idx: Union[int, slice]) -> None:
        keys = list(self._modules)
        for key in keys[idx] if isinstance(idx, slice) else [keys[_index(idx, len(keys),
                                                                         "Sequential")]]:
            del self._modules[key]
        self._renumber(list(self._modules.values()))

    def insert(self, index: int, module: Module) -> "Sequential":
        items = list(self._modules.values())
        index = index if index >= 0 else index + len(items)
        items.insert(index, module)
        self._renumber(items)
        return self

    def forward(self, input: Any) -> Any:
        for module in self._modules.values():
            input = module(input)
        return input


class ModuleList(_ModuleSequence):
    """A list of modules whose parameters belong to the owner (indexing like a list).

    >>> blocks = nn.ModuleList(nn.Linear(2, 2) for _ in range(3))
    >>> len(blocks), len(list(blocks.parameters())), blocks[-1]
    (3, 6, Linear(in_features=2, out_features=2, bias=True))
    """

    def __init__(self, modules: Optional[Iterable[Module]] = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx: Union[int, slice]) -> Any:
        values = list(self._modules.values())
        if isinstance(idx, slice):
            return type(self)(values[idx])
        return values[_index(idx, len(values), "ModuleList")]

    def __setitem__(self, idx: int, module: Module) -> None:
        setattr(self, str(_index(idx, len(self), "ModuleList")), module)

    def __delitem__(self, idx: Union[int, slice]) -> None:
        values = list(self._modules.values())
        del values[idx]
        self._renumber(values)

    def __iadd__(self, modules: Iterable[Module]) -> "ModuleList":
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> "ModuleList":
        return ModuleList(list(self) + list(other))

    def insert(self, index: int, module: Module) -> None:
        values = list(self._modules.values())
        values.insert(index, module)
        self._renumber(values)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleList has no forward; iterate over it instead")


class _Mapping(Module):
    """What ModuleDict and ParameterDict share: a dict's length, iteration, membership, keys
    and update over `_keys`, the container's keys in insertion order (a dict)."""

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def keys(self) -> Iterable[str]:
        return self._keys.keys()

    def update(self, entries: Any) -> None:
        pairs = entries.items() if isinstance(entries, (dict, type(self))) else entries
        for key, value in pairs:
            self[key] = value


class ModuleDict(_Mapping):
    """A dict of modules whose parameters belong to the owner (insertion ordered).

    >>> layers = nn.ModuleDict({"fc": nn.Linear(2, 2), "act": nn.ReLU()})
    >>> list(layers), len(list(layers.parameters()))
    (['fc', 'act'], 2)
    """

    def __init__(self, modules: Optional[Union[Dict[str, Module],
                                               Iterable[Tuple[str, Module]]]] = None) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    @property
    def _keys(self) -> Dict[str, Any]:
        return self._modules

    def clear(self) -> None:
        self._modules.clear()

    def pop(self, key: str) -> Module:
        return self._modules.pop(key)

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleDict has no forward; index it instead")


def _as_parameter(value: Any) -> Any:
    """A plain Tensor becomes a Parameter (as PyTorch's containers do); other values stay."""
    return Parameter(value) if isinstance(value, Tensor) and not isinstance(value,
                                                                            Parameter) else value


class ParameterList(Module):
    """A list of parameters registered with the owner under the names "0", "1", ...
    (so state_dict keys read "params.0"). Tensors are wrapped in Parameter.

    >>> import gradflow
    >>> params = gradflow.nn.ParameterList([gradflow.nn.Parameter(gradflow.ones(2))])
    >>> params.append(gradflow.zeros(3))
    ParameterList(
        (0): Parameter containing: [gradflow.FloatTensor of size 2]
        (1): Parameter containing: [gradflow.FloatTensor of size 3]
    )
    >>> list(params.state_dict())
    ['0', '1']
    """

    def __init__(self, values: Optional[Iterable[Any]] = None) -> None:
        super().__init__()
        object.__setattr__(self, "_size", 0)
        if values is not None:
            self.extend(values)

    def __getitem__(self, idx: Union[int, slice]) -> Any:
        if isinstance(idx, slice):
            return type(self)([self[i] for i in range(len(self))[idx]])
        return getattr(self, str(_index(idx, len(self), "ParameterList")))

    def __setitem__(self, idx: int, param: Any) -> None:
        setattr(self, str(_index(idx, len(self), "ParameterList")), _as_parameter(param))

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[Any]:
        return (self[i] for i in range(len(self)))

    def __iadd__(self, values: Iterable[Any]) -> "ParameterList":
        return self.extend(values)

    def append(self, value: Any) -> "ParameterList":
        object.__setattr__(self, "_size", self._size + 1)
        self[self._size - 1] = value
        return self

    def extend(self, values: Iterable[Any]) -> "ParameterList":
        for v in values:
            self.append(v)
        return self

    def extra_repr(self) -> str:
        return "\n".join(f"({i}): {_describe(v)}" for i, v in enumerate(self))

    def __repr__(self) -> str:
        lines = self.extra_repr().split("\n") if len(self) else []
        return type(self).__name__ + "(\n" + "".join(f"    {x}\n" for x in lines) + ")"

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ParameterList has no forward; iterate over it instead")


class ParameterDict(_Mapping):
    """A dict of parameters registered with the owner under their keys (state_dict keys read
    "params.<key>"), in insertion order. Tensors are wrapped in Parameter.

    >>> import gradflow
    >>> params = gradflow.nn.ParameterDict({"scale": gradflow.nn.Parameter(gradflow.ones(2))})
    >>> params["shift"] = gradflow.zeros(2)
    >>> list(params.state_dict())
    ['scale', 'shift']
    """

    def __init__(self, parameters: Any = None) -> None:
        super().__init__()
        object.__setattr__(self, "_keys", {})
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(key)
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ParameterDict: keys must be strings, got {type(key).__name__}")
        value = _as_parameter(value)
        if isinstance(value, Parameter):
            self.register_parameter(key, value)
        else:
            setattr(self, key, value)
        self._keys[key] = None

    def __delitem__(self, key: str) -> None:
        del self._keys[key]
        delattr(self, key)

    def values(self) -> Iterable[Any]:
        return [self[k] for k in self._keys]

    def items(self) -> Iterable[Tuple[str, Any]]:
        return [(k, self[k]) for k in self._keys]

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def pop(self, key: str) -> Any:
        value = self[key]
        del self[key]
        return value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def clear(self) -> None:
        for key in list(self._keys):
            del self[key]

    def copy(self) -> "ParameterDict":
        """A new ParameterDict holding the same parameters (not copies of them)."""
        return ParameterDict(self.items())

    def extra_repr(self) -> str:
        return "\n".join(f"({k}): {_describe(v)}" for k, v in self.items())

    def __repr__(self) -> str:
        lines = self.extra_repr().split("\n") if len(self) else []
        return type(self).__name__ + "(\n" + "".join(f"    {x}\n" for x in lines) + ")"

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ParameterDict has no forward; index it instead")


def _describe(value: Any) -> str:
    """PyTorch's one-line summary of a container entry."""
    if not isinstance(value, Tensor):
        return f"Object of type: {type(value).__name__}"
    size = "x".join(str(s) for s in value.shape)
    kind = "Parameter containing: " if isinstance(value, Parameter) else ""
    return f"{kind}[{value.type()} of size {size}]"
