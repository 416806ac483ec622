"""Docs of the core: every public callable of Tensor, of the ops and of autograd has a
PyTorch-style docstring with an example (test_doctests.py runs the examples). The typing
views of the methods installed from tables (tensor.py's _OP_METHODS, the unary rows) match
the tables."""

import ast
import importlib
import inspect
import sys
from pathlib import Path

import gradflow as gf
from gradflow import op_table
from gradflow.autograd import functional

tensor_module = sys.modules["gradflow.tensor"]  # gradflow.tensor is the function tensor()
elementwise = importlib.import_module("gradflow.ops.elementwise")

# The modules whose docs are checked here (nn, optim, utils, data: tests of their own). The
# examples themselves run in test_doctests.py, which walks the whole package.
CORE = ("gradflow.tensor", "gradflow.ops", "gradflow.autograd", "gradflow.types")


def _doc(obj):
    """An attribute's own docstring (a property's, a function's), not its type's."""
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    return obj.__doc__ if isinstance(obj, property) or callable(obj) else None


def _tensor_members():
    """Tensor's public methods and properties (the data slots, requires_grad and grad, are
    attributes, not callables)."""
    for name in sorted(dir(gf.Tensor)):
        attr = inspect.getattr_static(gf.Tensor, name)
        if not name.startswith("_") and type(attr).__name__ != "member_descriptor":
            yield name, attr


def _top_level_core():
    """gradflow.<name> callables defined in the core modules."""
    for name in sorted(dir(gf)):
        obj = getattr(gf, name)
        if not name.startswith("_") and callable(obj) and (
                getattr(obj, "__module__", "") or "").startswith(CORE):
            yield name, obj


def _autograd_api():
    for name in gf.autograd.__all__:
        obj = getattr(gf.autograd, name)
        if callable(obj):
            yield "autograd." + name, obj
    for name in ("vjp", "jvp", "jacobian", "hessian", "vhp", "hvp"):
        yield "autograd.functional." + name, getattr(functional, name)


def _undocumented(members):
    return [name for name, obj in members if ">>>" not in (_doc(obj) or "")]


def test_tensor_methods_and_properties_have_docstrings_with_examples():
    assert _undocumented(_tensor_members()) == []


def test_top_level_callables_of_the_core_have_docstrings_with_examples():
    names = dict(_top_level_core())
    assert {"tensor", "zeros", "sum", "matmul", "exp", "where", "no_grad", "dtype"} <= set(names)
    assert _undocumented(names.items()) == []


def test_autograd_api_has_docstrings_with_examples():
    assert _undocumented(_autograd_api()) == []



def test_methods_bound_from_ops_are_the_op_functions():
    """x.sum is reduce.sum itself: help(), the signature and the docstring are the op's."""
    for module, names in tensor_module._OP_METHODS.items():
        functions = importlib.import_module("gradflow.ops." + module)
        for name in names:
            assert getattr(gf.Tensor, name) is getattr(functions, name), name
    assert gf.Tensor.sum.__doc__ == gf.sum.__doc__
    assert "The sum over dim" in gf.Tensor.sum.__doc__


def _type_checking_assignments(path: Path, within_class: str = None) -> dict:
    """name -> the dotted value of each `name = a.b.c` under `if TYPE_CHECKING:` (in the
    class `within_class`, or at module level), and each stub `def name(...)` as 'def'."""
    tree = ast.parse(path.read_text())
    body = tree.body
    if within_class:
        body = next(n for n in tree.body if isinstance(n, ast.ClassDef)
                    and n.name == within_class).body
    found = {}
    for node in body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.Assign):
                    found[stmt.targets[0].id] = ast.unparse(stmt.value)
                elif isinstance(stmt, ast.FunctionDef):
                    found[stmt.name] = "def"
    return found


def test_type_checking_view_of_the_op_methods_matches_the_table():
    """tensor.py tells type checkers what _OP_METHODS installs: the same names, each from its
    table's module (clip and broadcast_to are aliases of clamp and expand)."""
    declared = _type_checking_assignments(Path(tensor_module.__file__), "Tensor")
    aliases = {"clip": "clamp", "broadcast_to": "expand"}
    expected = {name: f"_ops.{module}.{aliases.get(name, name)}"
                for module, names in tensor_module._OP_METHODS.items() for name in names}
    # x.float(), x.long(), ... are declared as method stubs; the unary rows' methods x.exp(),
    # x.exp_(), ... by one __getattr__
    expected.update((name, "def") for name in tensor_module._CASTS)
    expected["__getattr__"] = "def"
    for name in op_table.names(op_table.UNARY) + op_table.UNARY_INPLACE:
        expected.pop(name, None)
    assert declared == expected


def test_every_unary_row_has_a_documented_function_method_and_in_place_method():
    assert gf.exp.__doc__.startswith("exp(input) -> Tensor: e ** x.")
    for row in op_table.UNARY:
        function = getattr(elementwise, row.name)
        assert getattr(gf, row.name) is function is getattr(gf.Tensor, row.name)
        assert row.doc.summary in function.__doc__ and row.doc.result in function.__doc__
        if row.dtype != op_table.BOOL:
            inplace = getattr(gf.Tensor, row.name + "_")
            assert f"self = {row.name}(self) in place." in inplace.__doc__


def test_type_checking_view_of_the_generated_functions_matches_the_tables():
    """ops/elementwise.py makes a function per unary row and per comparison (BOOL binary row),
    and declares them to type checkers (every comparison; the unary rows typed code calls)."""
    declared = _type_checking_assignments(Path(elementwise.__file__))
    comparisons = set(op_table.names(op_table.BINARY, op_table.BOOL))
    assert comparisons <= set(declared)
    assert set(declared) <= set(op_table.names(op_table.UNARY)) | comparisons


def test_the_wheel_ships_py_typed():
    assert (Path(gf.__file__).parent / "py.typed").is_file()
