"""Module: the base class of every layer, as PyTorch users know it.

A Module owns three ordered dicts that attribute assignment fills in: ``_parameters``
(Parameters), ``_buffers`` (Tensors that are state but not learned, e.g. running means) and
``_modules`` (sub-modules). Everything else (parameters(), state_dict(), to(), train(), …)
walks those dicts. Calling a module runs its hooks around ``forward``.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, namedtuple
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple

import numpy as np

from gradflow.autograd import Function, no_grad
from gradflow.autograd.grad_mode import _GradMode
from gradflow.nn.parameter import Parameter
from gradflow.ops import update
from gradflow.ops.common import as_bool
from gradflow.tensor import Tensor, from_dlpack, parse_to, tensor

__all__ = ["Module"]

# What a parameter, buffer or child module must be, as the errors of assigning one name it.
_REQUIRED = {"parameter": "gradflow.nn.Parameter", "buffer": "gradflow Tensor",
             "child module": "gradflow.nn.Module"}


def _assign_error(value: Any, kind: str, name: str) -> TypeError:
    """The error of assigning a value of the wrong type to a registered name."""
    return TypeError(f"cannot assign '{type(value).__name__}' as {kind} '{name}' "
                     f"({_REQUIRED[kind]} or None expected)")


_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _checkpoint_tensor(value: Any) -> Optional[Tensor]:
    """A state-dict value as a gradflow Tensor: a Tensor as is; another library's tensor or
    array (PyTorch's, NumPy's) through DLPack or __array__; None for anything else."""
    if isinstance(value, Tensor):
        return value
    if hasattr(value, "detach"):  # a PyTorch tensor that requires grad exports only detached
        value = value.detach()
    if hasattr(value, "__dlpack_device__") and value.__dlpack_device__()[0] != 1 and hasattr(
            value, "cpu"):  # a device tensor of another library: its host copy
        value = value.cpu()
    if hasattr(value, "__dlpack__"):
        try:
            return from_dlpack(value)
        except (TypeError, RuntimeError, BufferError):
            pass  # a dtype DLPack cannot give NumPy: try __array__
    if hasattr(value, "__array__"):
        try:
            return tensor(np.asarray(value))
        except (TypeError, ValueError, RuntimeError):
            return None
    return None


class RemovableHandle:
    """Returned by the register_*_hook methods; ``remove()`` unregisters the hook."""

    _next_id = itertools.count()

    def __init__(self, hooks: Dict[int, Callable]) -> None:
        self._hooks = hooks
        self.id = next(RemovableHandle._next_id)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def _add_hook(hooks: Dict[int, Callable], hook: Callable) -> RemovableHandle:
    handle = RemovableHandle(hooks)
    hooks[handle.id] = hook
    return handle


def _indent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    return "\n".join([lines[0]] + [" " * spaces + line for line in lines[1:]])


class Module:
    """Base class for all neural network modules; subclasses define ``forward``.

    >>> class TwoLayer(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.hidden = nn.Linear(4, 8)
    ...         self.out = nn.Linear(8, 2)
    ...     def forward(self, x):
    ...         return self.out(F.relu(self.hidden(x)))
    >>> model = TwoLayer()
    >>> model(gf.ones(3, 4)).shape, [name for name, _ in model.named_parameters()]
    (gradflow.Size([3, 2]), ['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias'])
    """

    training: bool

    def __init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "training", True)
        set_(self, "_parameters", OrderedDict())
        set_(self, "_buffers", OrderedDict())
        set_(self, "_non_persistent_buffers_set", set())
        set_(self, "_modules", OrderedDict())
        set_(self, "_forward_pre_hooks", OrderedDict())
        set_(self, "_forward_hooks", OrderedDict())
        set_(self, "_backward_hooks", OrderedDict())

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation of `module(*args)`; subclasses override it (call the module, not
        forward, so that hooks run)."""
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    # ---------------------------------------------------------------- registration
    def register_parameter(self, name: str, param: Optional[Parameter]) -> None:
        """Add a Parameter (or None: declared, absent) under `name`, as `self.name = p` does.

        >>> m = nn.Module()
        >>> m.register_parameter("scale", nn.Parameter(gf.ones(1)))
        >>> [name for name, _ in m.named_parameters()]
        ['scale']
        """
        self._check_entry(name, "parameter", self._parameters, param, Parameter)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Optional[Tensor], persistent: bool = True) -> None:
        """Add a tensor that is state but not a parameter (e.g. running statistics);
        persistent=False keeps it out of state_dict.

        >>> m = nn.Module()
        >>> m.register_buffer("steps", gf.zeros(1))
        >>> m.register_buffer("cache", gf.zeros(2), persistent=False)
        >>> list(m.state_dict()), [name for name, _ in m.named_buffers()]
        (['steps'], ['steps', 'cache'])
        """
        self._check_entry(name, "buffer", self._buffers, tensor, Tensor)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Optional["Module"]) -> None:
        """Add a child module (or None) under `name`, as `self.name = module` does.

        >>> m = nn.Module()
        >>> m.add_module("fc", nn.Linear(2, 2))
        >>> m
        Module(
          (fc): Linear(in_features=2, out_features=2, bias=True)
        )
        """
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module: {type(module).__name__} is not a Module subclass")
        self._check_name(name, "module", self._modules)
        self._modules[name] = module

    register_module = add_module

    def _check_entry(self, name: str, kind: str, own: dict, value: Any, required: type) -> None:
        """register_parameter's and register_buffer's checks: the name, then the value (an
        instance of `required`, or None)."""
        self._check_name(name, kind, own)
        if value is not None and not isinstance(value, required):
            raise TypeError(
                f"register_{kind}: cannot assign '{type(value).__name__}' object to {kind} "
                f"'{name}' ({_REQUIRED[kind]} or None required)"
            )

    def _check_name(self, name: str, kind: str, own: dict) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {kind} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if name == "" or "." in name:
            raise ValueError(f'{kind} name can\'t be empty or contain ".", got "{name}"')
        if hasattr(self, name) and name not in own:
            raise ValueError(f"{kind} name '{name}': attribute '{name}' already exists")

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._drop(name, keep=self._parameters)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise _assign_error(value, "parameter", name)
            params[name] = None
        elif isinstance(value, Module):
            if params is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._drop(name, keep=self._modules)
            self._modules[name] = value
        elif name in self.__dict__.get("_modules", {}):
            if value is not None:
                raise _assign_error(value, "child module", name)
            self._modules[name] = None
        elif name in self.__dict__.get("_buffers", {}):
            if value is not None and not isinstance(value, Tensor):
                raise _assign_error(value, "buffer", name)
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _drop(self, name: str, keep: dict) -> None:
        """Forget `name` everywhere but the store `keep` it is being assigned into, so that it
        is registered in exactly one place and a reassignment keeps its position there (as
        PyTorch: `model.conv1 = Conv2d(...)` stays first in children() and state_dict())."""
        self.__dict__.pop(name, None)
        for d in (self._parameters, self._buffers, self._modules):
            if d is not keep:
                d.pop(name, None)
        self._non_persistent_buffers_set.discard(name)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> List[str]:
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    # ---------------------------------------------------------------- traversal
    def named_modules(self, memo: Optional[Set["Module"]] = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[Tuple[str, "Module"]]:
        """(dotted name, module) for this module ('' ) and every module under it, each once.

        >>> model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU()))
        >>> [name for name, _ in model.named_modules()]
        ['', '0', '1', '1.0']
        """
        if memo is None:
            memo = set()
        if remove_duplicate:
            if self in memo:
                return
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(memo, prefix + ("." if prefix else "") + name,
                                                remove_duplicate)

    def modules(self) -> Iterator["Module"]:
        """This module and every module under it, each once.

        >>> len(list(nn.Sequential(nn.Linear(2, 2), nn.ReLU()).modules()))
        3
        """
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        """(name, module) for the direct children.

        >>> [name for name, _ in nn.Sequential(nn.Linear(2, 2), nn.ReLU()).named_children()]
        ['0', '1']
        """
        seen = set()
        for name, module in self._modules.items():
            if module is not None and module not in seen:
                seen.add(module)
                yield name, module

    def children(self) -> Iterator["Module"]:
        """The direct child modules.

        >>> list(nn.Sequential(nn.Linear(2, 2), nn.ReLU()).children())
        [Linear(in_features=2, out_features=2, bias=True), ReLU()]
        """
        for _, m in self.named_children():
            yield m

    def _named_members(self, store: str, prefix: str, recurse: bool,
                       remove_duplicate: bool = True) -> Iterator[Tuple[str, Any]]:
        seen = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) \
            if recurse else [(prefix, self)]
        for mod_prefix, module in modules:
            for name, value in getattr(module, store).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield mod_prefix + ("." if mod_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[Tuple[str, Parameter]]:
        """(dotted name, parameter) for every parameter, each once; recurse=False: own only.

        >>> [(name, tuple(p.shape)) for name, p in nn.Linear(3, 2).named_parameters()]
        [('weight', (2, 3)), ('bias', (2,))]
        """
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter (for an optimizer), each once; recurse=False: this module's own.

        >>> sum(p.numel() for p in nn.Linear(3, 2).parameters())
        8
        """
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[Tuple[str, Tensor]]:
        """(dotted name, buffer) for every buffer, each once.

        >>> [name for name, _ in nn.BatchNorm1d(2).named_buffers()]
        ['running_mean', 'running_var', 'num_batches_tracked']
        """
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """Every buffer (running statistics and the like), each once.

        >>> [tuple(b.shape) for b in nn.BatchNorm1d(2).buffers()]
        [(2,), (2,), ()]
        """
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> "Module":
        """The module at a dotted path such as "0.1" or "encoder.layers.0".

        >>> nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU())).get_submodule("1.0")
        ReLU()
        """
        if not isinstance(target, str):
            raise TypeError(f"get_submodule: target must be a str, got {type(target).__name__}")
        module = self
        for item in target.split(".") if target else []:
            if item not in module._modules:
                raise AttributeError(f"{module._get_name()} has no attribute `{item}`")
            module = module._modules[item]
        return module

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at a dotted path such as "0.weight".

        >>> nn.Sequential(nn.Linear(3, 2)).get_parameter("0.bias").shape
        gradflow.Size([2])
        """
        if not isinstance(target, str):
            raise TypeError(f"get_parameter: target must be a str, got {type(target).__name__}")
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in module._parameters:
            raise AttributeError(f"{module._get_name()} has no parameter `{name}`")
        return module._parameters[name]

    # ---------------------------------------------------------------- modes and grads
    def train(self, mode: bool = True) -> "Module":
        """Set training mode (mode=True) on this module and every one under it; returns self.

        >>> model = nn.Sequential(nn.Dropout()).train()
        >>> model.training, model[0].training
        (True, True)
        """
        if not isinstance(mode, bool):
            raise ValueError(f"train: training mode is expected to be boolean, got {mode!r}")
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        """train(False): dropout off, batch norm on its running statistics; returns self.

        >>> model = nn.Sequential(nn.Dropout()).eval()
        >>> model.training, model[0].training
        (False, False)
        """
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Set requires_grad on every parameter (False freezes the module); returns self.

        >>> fc = nn.Linear(2, 2).requires_grad_(False)
        >>> [p.requires_grad for p in fc.parameters()]
        [False, False]
        """
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's .grad: to None (set_to_none=True, the default) or to zeros.

        >>> fc = nn.Linear(2, 1)
        >>> fc(gf.ones(1, 2)).sum().backward()
        >>> fc.zero_grad()
        >>> fc.weight.grad is None
        True
        """
        update.zero_grad(self.parameters(), as_bool(set_to_none, "zero_grad", "set_to_none"))

    # ---------------------------------------------------------------- conversion
    def apply(self, fn: Callable[["Module"], None]) -> "Module":
        """fn(m) for every sub-module (children first), then for self.

        >>> def init_weights(m):
        ...     if isinstance(m, nn.Linear):
        ...         nn.init.zeros_(m.bias)
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.ReLU()).apply(init_weights)
        >>> model[0].bias
        Parameter containing:
        tensor([0., 0.], requires_grad=True)
        """
        if not callable(fn):
            raise TypeError(f"apply: fn must be a function of a Module, got {type(fn).__name__}")
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    def _apply(self, fn: Callable[[Tensor], Tensor]) -> "Module":
        """Convert every parameter and buffer with fn; parameters keep their identity (their
        storage is replaced in place), buffers are replaced."""
        for module in self.modules():
            with no_grad():
                for p in module._parameters.values():
                    if p is None:
                        continue
                    p.data = fn(p)
                    if p.grad is not None:
                        p.grad.data = fn(p.grad)
                for name, b in module._buffers.items():
                    if b is not None:
                        module._buffers[name] = fn(b)
        return self

    def to(self, *args: Any, **kwargs: Any) -> "Module":
        """to(device), to(dtype), to(device, dtype), to(tensor): floating-point parameters and
        buffers take the dtype; all take the device.

        >>> fc = nn.Linear(2, 2).to(gf.float64)
        >>> fc.weight.dtype, fc.to("cpu").weight.device
        (gradflow.float64, device(type='cpu'))
        """
        dtype, device = parse_to(args, kwargs)
        if dtype is not None and not dtype.is_floating_point:
            raise TypeError(f"nn.Module.to only accepts floating point dtypes, but got desired "
                            f"dtype={dtype}")

        def convert(t: Tensor) -> Tensor:
            return t.to(device=device, dtype=dtype if t.is_floating_point() else None)

        return self._apply(convert)

    def float(self) -> "Module":
        """Cast floating-point parameters and buffers to float32; returns self.

        >>> nn.Linear(2, 2).double().float().weight.dtype
        gradflow.float32
        """
        return self._apply(lambda t: t.float() if t.is_floating_point() else t)

    def double(self) -> "Module":
        """Cast floating-point parameters and buffers to float64; returns self.

        >>> nn.Linear(2, 2).double().weight.dtype
        gradflow.float64
        """
        return self._apply(lambda t: t.double() if t.is_floating_point() else t)

    def half(self) -> "Module":
        """Floating-point parameters and buffers to float16 (a CPU storage type)."""
        return self._apply(lambda t: t.half() if t.is_floating_point() else t)

    def bfloat16(self) -> "Module":
        """Floating-point parameters and buffers to bfloat16 (a CPU storage type)."""
        return self._apply(lambda t: t.bfloat16() if t.is_floating_point() else t)

    def cuda(self, device: Any = None) -> "Module":
        """Move parameters and buffers to the GPU (without one: a RuntimeError that says why);
        returns self.

        >>> fc = nn.Linear(2, 2)
        >>> fc = fc.cuda() if gf.cuda.is_available() else fc
        >>> fc.weight.device.type in ("cpu", "cuda")
        True
        """
        return self._apply(lambda t: t.cuda(device))

    def cpu(self) -> "Module":
        """Move parameters and buffers to the CPU; returns self.

        >>> nn.Linear(2, 2).cpu().weight.device
        device(type='cpu')
        """
        return self._apply(lambda t: t.cpu())

    def type(self, dst_type: Any) -> "Module":
        """Cast floating-point parameters and buffers to dst_type (a dtype); returns self.

        >>> nn.Linear(2, 2).type(gf.float64).bias.dtype
        gradflow.float64
        """
        return self._apply(lambda t: t.to(dst_type))

    # ---------------------------------------------------------------- state dict
    def state_dict(self, *, destination: Optional[dict] = None, prefix: str = "",
                   keep_vars: bool = False) -> "OrderedDict[str, Tensor]":
        """Every parameter and persistent buffer by dotted name (detached, sharing storage).

        >>> sd = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)).state_dict()
        >>> list(sd)
        ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var',
         '1.num_batches_tracked']
        """
        if destination is None:
            destination = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".",
                                  keep_vars=keep_vars)
        return destination

    def _load_own(self, state_dict: dict, prefix: str, missing: List[str],
                  errors: List[str]) -> None:
        own = [(n, p) for n, p in self._parameters.items() if p is not None]
        own += [(n, b) for n, b in self._buffers.items()
                if b is not None and n not in self._non_persistent_buffers_set]
        for name, target in own:
            key = prefix + name
            if key not in state_dict:
                missing.append(key)
                continue
            value = _checkpoint_tensor(state_dict[key])
            if value is None:
                kind = type(state_dict[key])
                errors.append(f'While copying the parameter named "{key}", expected a tensor '
                              f"or array of a dtype gradflow stores from checkpoint but "
                              f"received {kind.__module__}.{kind.__qualname__} "
                              f"{getattr(state_dict[key], 'dtype', '')}".rstrip())
                continue
            if tuple(value.shape) != tuple(target.shape):
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {tuple(value.shape)} "
                    f"from checkpoint, the shape in current model is {tuple(target.shape)}."
                )
                continue
            with no_grad():
                target.copy_(value)

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> _IncompatibleKeys:
        """Copy values into the parameters and buffers; report missing/unexpected keys (an
        error when strict) and always raise on shape mismatches.

        >>> src, dst = nn.Linear(2, 2), nn.Linear(2, 2)
        >>> dst.load_state_dict(src.state_dict())
        IncompatibleKeys(missing_keys=[], unexpected_keys=[])
        >>> gf.equal(dst.weight, src.weight)
        True
        """
        if not isinstance(state_dict, dict):
            raise TypeError(f"load_state_dict: Expected state_dict to be dict-like, got "
                            f"{type(state_dict)}.")
        strict = as_bool(strict, "load_state_dict", "strict")
        missing: List[str] = []
        errors: List[str] = []
        for prefix, module in self.named_modules():
            module._load_own(state_dict, prefix + "." if prefix else "", missing, errors)
        expected = set(self.state_dict(keep_vars=True))
        unexpected = [k for k in state_dict if k not in expected]
        if strict:
            if unexpected:
                errors.insert(0, "Unexpected key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in unexpected) + ". ")
            if missing:
                errors.insert(0, "Missing key(s) in state_dict: "
                              + ", ".join(f'"{k}"' for k in missing) + ". ")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {self._get_name()}:\n\t"
                               + "\n\t".join(errors))
        return _IncompatibleKeys(missing, unexpected)

    # ---------------------------------------------------------------- hooks and calling
    def register_forward_pre_hook(self, hook: Callable) -> RemovableHandle:
        """hook(module, args) -> None or new args (a tuple, or one value).

        >>> fc = nn.Linear(2, 2)
        >>> handle = fc.register_forward_pre_hook(lambda module, args: (args[0] * 0,))
        >>> fc(gf.ones(1, 2)).shape, gf.equal(fc(gf.ones(1, 2)), fc.bias.detach().reshape(1, 2))
        (gradflow.Size([1, 2]), True)
        >>> handle.remove()
        """
        return _add_hook(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook: Callable) -> RemovableHandle:
        """hook(module, args, output) -> None or a replacement output.

        >>> shapes = []
        >>> fc = nn.Linear(2, 3)
        >>> handle = fc.register_forward_hook(lambda module, args, out: shapes.append(out.shape))
        >>> _ = fc(gf.ones(4, 2))
        >>> handle.remove()
        >>> _ = fc(gf.ones(4, 2))
        >>> shapes
        [gradflow.Size([4, 3])]
        """
        return _add_hook(self._forward_hooks, hook)

    def register_full_backward_hook(self, hook: Callable) -> RemovableHandle:
        """hook(module, grad_input, grad_output) -> None or a replacement grad_input; runs once
        the gradients with respect to the module's tensor inputs are computed.

        >>> norms = []
        >>> fc = nn.Linear(2, 1)
        >>> handle = fc.register_full_backward_hook(
        ...     lambda module, grad_in, grad_out: norms.append(grad_out[0].abs().sum().item()))
        >>> fc(gf.ones(3, 2)).sum().backward()
        >>> norms
        [3.0]
        """
        return _add_hook(self._backward_hooks, hook)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        bw = _BackwardHookState(self) if self._backward_hooks and _GradMode.enabled else None
        if bw is not None:
            args = bw.wrap_inputs(args)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        if bw is not None:
            out = bw.wrap_outputs(out)
        return out

    # ---------------------------------------------------------------- printing
    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """One line (or several) of layer settings shown inside the module's repr."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        children = [f"({name}): " + _indent(repr(m), 2) for name, m in self._modules.items()]
        body = lines + children
        if not body:
            return self._get_name() + "()"
        if len(lines) == 1 and not children:
            return f"{self._get_name()}({lines[0]})"
        return self._get_name() + "(\n  " + "\n  ".join(body) + "\n)"


class _HookIdentity(Function):
    """Identity on a group of tensors whose backward passes all their gradients to a callback
    (which may replace them): the seam where module backward hooks see grad_input/output."""

    @staticmethod
    def forward(ctx, on_grads: Callable, *tensors: Tensor):
        ctx.on_grads = on_grads
        return tuple(update.alias(t) for t in tensors)

    @staticmethod
    def backward(ctx, *grads: Tensor):
        return (None,) + tuple(ctx.on_grads(grads))


def _through_hook(values: Sequence, positions: List[int], on_grads: Callable) -> list:
    """`values` with those at `positions` passed together through one _HookIdentity, whose
    backward hands their gradients to on_grads."""
    routed = list(values)
    for i, t in zip(positions, _HookIdentity.apply(on_grads, *(values[i] for i in positions))):
        routed[i] = t
    return routed


class _BackwardHookState:
    """One forward call's bookkeeping for register_full_backward_hook."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.n_inputs = 0
        self.input_slots: List[int] = []  # positions (among tensor args) that require grad
        self.grad_outputs: Tuple = ()

    def wrap_inputs(self, args: tuple) -> tuple:
        tensor_pos = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        self.n_inputs = len(tensor_pos)
        wanted = [i for i in tensor_pos if args[i].requires_grad]
        self.input_slots = [tensor_pos.index(i) for i in wanted]
        if not wanted:
            return args
        return tuple(_through_hook(args, wanted, self._on_input_grads))

    def wrap_outputs(self, out: Any) -> Any:
        single = isinstance(out, Tensor)
        outs = (out,) if single else tuple(out) if isinstance(out, (tuple, list)) else None
        if outs is None:
            return out
        pos = [i for i, o in enumerate(outs) if isinstance(o, Tensor) and o.requires_grad]
        self.n_outputs, self.output_pos = len(outs), pos
        if not pos:
            return out
        routed = _through_hook(outs, pos, self._on_output_grads)
        return routed[0] if single else type(out)(routed)

    def _on_output_grads(self, grads: tuple) -> tuple:
        full: List[Optional[Tensor]] = [None] * self.n_outputs
        for i, g in zip(self.output_pos, grads):
            full[i] = g
        self.grad_outputs = tuple(full)
        if not self.input_slots:
            self._run_hooks((None,) * self.n_inputs)
        return grads

    def _on_input_grads(self, grads: tuple) -> tuple:
        full: List[Optional[Tensor]] = [None] * self.n_inputs
        for i, g in zip(self.input_slots, grads):
            full[i] = g
        full_t = self._run_hooks(tuple(full))
        return tuple(full_t[i] for i in self.input_slots)

    def _run_hooks(self, grad_input: tuple) -> tuple:
        for hook in list(self.module._backward_hooks.values()):
            result = hook(self.module, grad_input, self.grad_outputs)
            if result is not None:
                result = tuple(result) if isinstance(result, (tuple, list)) else (result,)
                if len(result) != len(grad_input):
                    raise RuntimeError(
                        f"backward hook returned {len(result)} gradients, expected "
                        f"{len(grad_input)} (one per tensor input)"
                    )
                grad_input = result
        return grad_input
