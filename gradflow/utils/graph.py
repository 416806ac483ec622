"""draw_graph(tensor): the autograd graph behind a tensor as Graphviz DOT text (or a file).

Every recorded op is a Context node (``tensor.grad_fn``); its ``_edges`` hold, per forward
argument, None (no gradient wanted), the leaf tensor itself, or (producing node, output
index). Walking those edges from the tensor's node reaches every op and leaf the gradient
flows to. Arrows point the way data flowed in the forward pass: input -> op.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Dict, List, Mapping, Optional, Tuple, Union

from gradflow.autograd.function import Context
from gradflow.tensor import Tensor

PathLike = Union[str, "os.PathLike[str]"]
_TEXT_FORMATS = ("dot", "gv")


def _quote(lines: List[str]) -> str:
    """A DOT string literal whose lines are `lines`."""
    escaped = [s.replace("\\", "\\\\").replace('"', '\\"') for s in lines]
    return '"' + "\\n".join(escaped) + '"'


def _shape(shape: Tuple[int, ...]) -> str:
    return str(tuple(int(d) for d in shape))


def _op_label(node: Context) -> List[str]:
    """The op's name (its grad_fn name without 'Backward') and the shape of each output."""
    name = node.name()
    name = name[: -len("Backward")] if name.endswith("Backward") else name
    shapes = [_shape(tuple(meta[0])) for meta in node._outputs_meta if meta is not None]
    return [name, ", ".join(shapes)]


def graph_dot(tensor: Tensor, params: Optional[Mapping[str, Tensor]] = None) -> str:
    """DOT text of the graph that produced `tensor`: one box per op, one ellipse per leaf
    tensor that requires grad (labelled with its name in `params` when present), and the
    tensor's own op filled green."""
    names = {id(t): name for name, t in (params or {}).items()}
    decls: Dict[int, str] = {}  # id(node or leaf) -> declaration line
    ids: Dict[int, str] = {}
    edges: List[Tuple[str, str]] = []

    def leaf_id(t: Tensor) -> str:
        if id(t) not in ids:
            ids[id(t)] = f"n{len(ids)}"
            label = ([names[id(t)]] if id(t) in names else []) + [_shape(tuple(t.shape))]
            decls[id(t)] = (f"  {ids[id(t)]} [label={_quote(label)}, shape=ellipse, "
                            "style=filled, fillcolor=lightblue];")
        return ids[id(t)]

    root = tensor.grad_fn
    if root is None:
        leaf_id(tensor)
    else:
        ids[id(root)] = "n0"
        decls[id(root)] = f"  n0 [label={_quote(_op_label(root))}, fillcolor=palegreen];"
        stack = [root]
        while stack:
            node = stack.pop()
            for edge in node._edges:
                if edge is None:
                    continue
                if isinstance(edge, tuple):
                    child = edge[0]
                    if id(child) not in ids:
                        ids[id(child)] = name = f"n{len(ids)}"
                        decls[id(child)] = f"  {name} [label={_quote(_op_label(child))}];"
                        stack.append(child)
                    edges.append((ids[id(child)], ids[id(node)]))
                else:
                    edges.append((leaf_id(edge), ids[id(node)]))

    lines = ["digraph autograd {",
             '  node [shape=box, style=filled, fillcolor=white, fontname="Helvetica"];']
    lines += decls.values()
    lines += [f"  {src} -> {dst};" for src, dst in edges]
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_graph(tensor: Tensor, path: Optional[PathLike] = None, format: Optional[str] = None,
               *, params: Optional[Mapping[str, Tensor]] = None) -> str:
    """The DOT text of the autograd graph behind `tensor` (see graph_dot); with `path`, also
    write it there.

    `format` defaults to the path's extension: 'dot' or 'gv' writes the text; anything else
    ('svg', 'png', 'pdf', …) is rendered by Graphviz's `dot` program, which must be on PATH.
    Pass `params=dict(model.named_parameters())` to label parameters by name.

    >>> x = gf.tensor([1.0, 2.0], requires_grad=True)
    >>> dot = gf.utils.draw_graph((x * x).sum())
    >>> dot.splitlines()[0], 'label="Mul' in dot
    ('digraph autograd {', True)
    """
    text = graph_dot(tensor, params)
    if path is None:
        return text
    fmt = (format or os.path.splitext(os.fspath(path))[1].lstrip(".") or "dot").lower()
    if fmt in _TEXT_FORMATS:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return text
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(
            f"draw_graph: writing format '{fmt}' needs Graphviz's 'dot' program, which is not "
            "on PATH; install Graphviz, or write the DOT text with a .dot path"
        )
    result = subprocess.run([dot, f"-T{fmt}", "-o", os.fspath(path)], input=text.encode(),
                            capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"draw_graph: dot -T{fmt} failed: "
                           f"{result.stderr.decode(errors='replace').strip()}")
    return text
