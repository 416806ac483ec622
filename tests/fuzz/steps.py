"""A fuzz case is a few steps, each one public call with its source text.

`Gen` draws the arguments (plausible ones mostly, a junk value now and then, see
`values.Draw`) and builds the steps; a later step can use an earlier step's result through
`Gen.ref`. Each step knows the names an error message may use to say which call failed: the
op's own name (plus aliases) and the names of the arguments it was given.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Optional, Tuple

from .values import Draw, V, lit

# Argument names too generic to say which call failed.
_GENERIC = {"input", "x", "a", "b", "o", "t", "self", "other", "tensor", "data", "obj", "args",
            "kwargs", "value", "f"}


# Names an error may use for an op that is another op's alias or is spelled by a protocol.
ALIASES = {
    "true_divide": ("div",), "concat": ("cat",), "clip": ("clamp",), "clip_": ("clamp_",),
    "expand_as": ("expand",), "broadcast_to": ("expand",), "reshape_as": ("reshape",),
    "view_as": ("view",), "square": ("mul",), "__len__": ("len()",), "zero_": ("fill_",),
    "__int__": ("converted to Scalar",), "__float__": ("converted to Scalar",),
    "__bool__": ("Boolean value",), "__index__": ("converted to an index",),
    "__iter__": ("iteration",), "item": ("converted to Scalar",), "min": ("minimum",),
    "max": ("maximum",), "randint_like": ("randint",),
}


class Ref(V):
    """An earlier step's result, looked up by name when the step runs."""


class Step:
    """One call: `fn(*args, **kwargs)`, or `receiver.fn(...)` when receiver is given."""

    __slots__ = ("code", "fn", "receiver", "args", "kwargs", "names", "var", "indexing",
                 "extra_ok")

    def __init__(self, code: str, fn: Any, receiver: Optional[V], args: tuple, kwargs: dict,
                 names: Tuple[str, ...], var: Optional[str], indexing: bool) -> None:
        self.code, self.fn, self.receiver = code, fn, receiver
        self.args, self.kwargs = args, kwargs
        self.names, self.var, self.indexing = names, var, indexing
        self.extra_ok: tuple = ()  # more exception types that are clean here (OSError for I/O)

    def callable(self, env: Dict[str, Any]) -> Callable:
        if self.receiver is None:
            return _value(self.fn, env)
        return getattr(_value(self.receiver, env), self.fn)

    def run(self, env: Dict[str, Any]) -> Any:
        out = self.callable(env)(*(_value(a, env) for a in self.args),
                                 **{k: _value(v, env) for k, v in self.kwargs.items()})
        if self.var is not None:
            env[self.var] = out
        return out

    def source(self) -> str:
        return f"{self.var} = {self.code}" if self.var else self.code

    def accepted_names(self, env: Dict[str, Any]) -> Tuple[str, ...]:
        """The op's names and the names of the arguments passed (those not too generic)."""
        args = list(self.kwargs)
        try:
            args += list(inspect.signature(self.callable(env)).parameters)[: len(self.args)]
        except (TypeError, ValueError, AttributeError, KeyError):
            pass
        return self.names + tuple(n for n in args if n.lower() not in _GENERIC)


def _value(v: Any, env: Dict[str, Any]) -> Any:
    if isinstance(v, Ref):
        return env[v.code]
    return v.value if isinstance(v, V) else v


class Gen(Draw):
    """Draw plus the step builders the targets use."""

    def __init__(self, seed: str, junk_p: float = 0.08) -> None:
        super().__init__(seed, junk_p)
        self.steps: list = []

    def ref(self, name: str) -> Ref:
        return Ref(name, None)

    def call(self, fn_code: str, fn: Callable, *args, names: Tuple[str, ...] = (),
             var: Optional[str] = None, indexing: bool = False, junk: bool = True,
             **kwargs) -> "Gen":
        """Add the step `fn(*args, **kwargs)`. Each argument (a V, or a literal) is now and
        then swapped for junk unless junk=False."""
        return self._add(fn_code, fn, None, args, kwargs, names, var, indexing, junk)

    def method(self, receiver: V, name: str, *args, names: Tuple[str, ...] = (),
               var: Optional[str] = None, indexing: bool = False, junk: bool = True,
               **kwargs) -> "Gen":
        """Add the step `receiver.name(*args, **kwargs)`."""
        return self._add(f"{receiver.code}.{name}", name, receiver, args, kwargs, names, var,
                         indexing, junk)

    def expr(self, code: str, fn: Callable, *refs: Ref, names: Tuple[str, ...] = (),
             var: Optional[str] = None) -> "Gen":
        """Add a step written as source text `code`, run as fn(*refs)."""
        self.steps.append(Step(code, fn, None, refs, {}, tuple(names), var, False))
        return self

    def _add(self, fn_code, fn, receiver, args, kwargs, names, var, indexing, junk) -> "Gen":
        args = tuple(self._arg(a, junk) for a in args)
        kwargs = {k: self._arg(v, junk) for k, v in kwargs.items()}
        if junk and self.chance(0.01):
            kwargs["bogus"] = lit(1)
        text = ", ".join([a.code for a in args] + [f"{k}={v.code}" for k, v in kwargs.items()])
        own = fn_code.rsplit(".", 1)[-1]
        inplace = (own[:-1],) if own.endswith("_") and not own.endswith("__") else ()
        names = (own,) + inplace + ALIASES.get(own, ()) + tuple(names)
        self.steps.append(Step(f"{fn_code}({text})", fn, receiver, args, kwargs, names, var,
                               indexing))
        return self

    def _arg(self, a: Any, junk: bool) -> V:
        a = a if isinstance(a, V) else lit(a)
        return self.maybe(a) if junk and not isinstance(a, Ref) else a
