"""API coverage: the names issue 16 asks for, and the docstrings of the whole public API.

For each name of issue 16's list it checks three things:
  exists     the dotted path resolves from `gradflow` (`gradflow.linalg.norm`,
             `gradflow.Tensor.scatter_`, `gradflow.nn.functional.conv1d`, `gradflow.float16`);
  docstring  the object has its own non-empty `__doc__` (a property's is its getter's; a dtype,
             which is not callable, counts as documented when its class is);
  tested     the name exists and some file under tests/ uses its last part as an attribute
             (`.topk`) or calls it (`topk(`); a capitalised name (`LSTM`) counts wherever it
             appears as a word; a dotted name (`linalg.norm`) must appear as written.
The test check is a plain text search, by design simple and predictable: it says a test mentions
the name, not that the test is good, and it over-counts where another library's name is the
same (`np.sort(` counts for `sort`).

It then counts the public API overall: every public callable (no leading underscore, defined in
gradflow, modules excluded) reachable from gradflow's namespaces below (their `__all__` where
they have one; the argument-checking helpers of gradflow.ops.common and ops.inplace, which some
modules import, never count), and the public methods and properties of `Tensor`, each object
once; a callable is documented when it has its own docstring, and has an example when that
docstring holds a `>>>` line.

Prints both tables and writes runs/benchmark_api_coverage/api_coverage.json (or --out DIR).

    python benchmarks/api_coverage.py [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import gradflow as gf
from gradflow.utils.cli import add_out_argument, write_json

TESTS = Path(__file__).resolve().parent.parent / "tests"

TOP_LEVEL = ("einsum topk sort argsort cumsum cumprod isclose allclose unique tril triu roll "
             "meshgrid outer diag addmm baddbmm cdist nonzero masked_select numel normal "
             "multinomial inference_mode linalg.norm linalg.vector_norm linalg.matrix_norm "
             "linalg.inv linalg.solve linalg.det float16 bfloat16 from_dlpack")
TENSOR_METHODS = ("scatter scatter_ index_add_ new_zeros new_ones new_tensor type int half "
                  "bfloat16 argsort topk sort cumsum unique masked_select nonzero allclose "
                  "fill_diagonal_ narrow data_ptr is_xpu is_cpu is_cuda is_mps is_meta "
                  "is_sparse is_quantized is_floating_point")
NN = ("Conv1d functional.conv1d ParameterList ParameterDict RNN LSTM GRU MultiheadAttention "
      "TransformerEncoderLayer TransformerEncoder functional.scaled_dot_product_attention "
      "functional.cosine_similarity functional.unfold functional.fold")
OPTIM = "NAdam RAdam Adamax LBFGS lr_scheduler.CosineAnnealingWarmRestarts"
AUTOGRAD_FUNCTIONAL = "vjp jvp jacobian hessian hvp vhp"

# Issue 16's names, each as a dotted path from gradflow.
ISSUE_16 = (TOP_LEVEL.split()
            + [f"Tensor.{name}" for name in TENSOR_METHODS.split()]
            + [f"nn.{name}" for name in NN.split()]
            + [f"optim.{name}" for name in OPTIM.split()]
            + ["utils.data.WeightedRandomSampler"]
            + [f"autograd.functional.{name}" for name in AUTOGRAD_FUNCTIONAL.split()])

# The namespaces whose public callables make up "the public API".
NAMESPACES = ("gradflow gradflow.linalg gradflow.autograd gradflow.autograd.functional "
              "gradflow.nn gradflow.nn.functional gradflow.nn.init gradflow.nn.utils "
              "gradflow.nn.parallel gradflow.optim gradflow.optim.lr_scheduler gradflow.utils "
              "gradflow.utils.data gradflow.datasets gradflow.transforms gradflow.serialization "
              "gradflow.cuda gradflow.accelerator gradflow.distributed gradflow.config").split()

# Helpers that namespaces without __all__ import for their own use, not API.
INTERNAL_MODULES = ("gradflow.ops.common", "gradflow.ops.inplace")

_MISSING = object()


def resolve(path: str) -> Any:
    """The object at gradflow.`path`, importing submodules on the way; _MISSING if none."""
    obj: Any = gf
    for part in path.split("."):
        if inspect.isclass(obj):
            found = inspect.getattr_static(obj, part, _MISSING)
        else:
            found = getattr(obj, part, _MISSING)
            if found is _MISSING and inspect.ismodule(obj):
                found = _import(f"{obj.__name__}.{part}")
        if found is _MISSING:
            return _MISSING
        obj = found
    return obj


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return _MISSING


def docstring(obj: Any) -> Optional[str]:
    """The object's own docstring (a property's getter's; a staticmethod's function's)."""
    if isinstance(obj, property):
        obj = obj.fget
    elif isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    doc = getattr(obj, "__doc__", None)
    return doc if doc and doc.strip() else None


def _test_sources() -> str:
    return "\n".join(path.read_text(errors="replace") for path in sorted(TESTS.rglob("*.py")))


def _pattern(path: str) -> "re.Pattern[str]":
    parts = path.split(".")
    if parts[0] in ("Tensor", "nn", "optim", "utils", "autograd"):
        parts = parts[1:]
    if parts[0] in ("functional", "data", "lr_scheduler") and len(parts) > 1:
        parts = parts[1:]
    if len(parts) > 1:  # linalg.norm: as written
        return re.compile(r"\b" + re.escape(".".join(parts)) + r"\b")
    name = re.escape(parts[0])
    if parts[0][0].isupper():
        return re.compile(rf"\b{name}\b")
    return re.compile(rf"\.{name}\b|(?<![\w.]){name}\(")


def check(names: List[str] = ISSUE_16) -> List[Dict[str, Any]]:
    """One row per name: exists, has a docstring, mentioned by a test (see the module's
    docstring for how each is decided)."""
    sources = _test_sources()
    rows = []
    for name in names:
        obj = resolve(name)
        exists = obj is not _MISSING
        rows.append({"name": name, "exists": exists,
                     "docstring": exists and docstring(obj) is not None,
                     "tested": exists and bool(_pattern(name).search(sources))})
    return rows


def _public_callables() -> Iterator[Tuple[str, Any]]:
    for namespace in NAMESPACES:
        module = _import(namespace)
        if module is _MISSING:
            continue
        names = getattr(module, "__all__", None) or dir(module)
        for name in names:
            obj = getattr(module, name, None)
            home = str(getattr(obj, "__module__", ""))
            if (name.startswith("_") or inspect.ismodule(obj) or not callable(obj)
                    or not home.startswith("gradflow") or home in INTERNAL_MODULES):
                continue
            yield f"{namespace}.{name}", obj
    for name, obj in vars(gf.Tensor).items():
        if not name.startswith("_"):
            yield f"gradflow.Tensor.{name}", obj


def overall() -> Dict[str, Any]:
    """Public callables (each object once), how many have a docstring and how many an example;
    per namespace, and the undocumented names."""
    seen = set()
    per: Dict[str, Dict[str, int]] = {}
    undocumented = []
    for path, obj in _public_callables():
        key = id(obj.fget if isinstance(obj, property) else obj)
        if key in seen:
            continue
        seen.add(key)
        namespace = path.rsplit(".", 1)[0]
        counts = per.setdefault(namespace, {"callables": 0, "docstring": 0, "example": 0})
        doc = docstring(obj)
        counts["callables"] += 1
        counts["docstring"] += doc is not None
        counts["example"] += doc is not None and ">>>" in doc
        if doc is None:
            undocumented.append(path)
    total = {key: sum(c[key] for c in per.values()) for key in ("callables", "docstring",
                                                                 "example")}
    return {"total": total, "namespaces": per, "undocumented": undocumented}


def _mark(flag: bool) -> str:
    return "yes" if flag else "-"


def print_tables(rows: List[Dict[str, Any]], api: Dict[str, Any]) -> None:
    width = max(len(row["name"]) for row in rows)
    print(f"{'issue 16 name':<{width}}  exists  docstring  tested")
    for row in rows:
        print(f"{row['name']:<{width}}  {_mark(row['exists']):>6}  {_mark(row['docstring']):>9}"
              f"  {_mark(row['tested']):>6}")
    for key in ("exists", "docstring", "tested"):
        print(f"{key}: {sum(row[key] for row in rows)} / {len(rows)}")
    print()
    width = max(len(name) for name in api["namespaces"])
    print(f"{'namespace':<{width}}  callables  docstring  example")
    for name, counts in api["namespaces"].items():
        print(f"{name:<{width}}  {counts['callables']:>9}  {counts['docstring']:>9}"
              f"  {counts['example']:>7}")
    total = api["total"]
    print(f"public API: {total['docstring']} of {total['callables']} callables have a docstring "
          f"({100 * total['docstring'] / total['callables']:.0f} %), "
          f"{total['example']} an example")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_out_argument(parser, "benchmark_api_coverage")
    args = parser.parse_args()
    rows = check()
    api = overall()
    print_tables(rows, api)
    write_json(args.out, "api_coverage.json", {"issue16": rows, "public_api": api})


if __name__ == "__main__":
    main()
