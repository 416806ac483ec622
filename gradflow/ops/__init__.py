"""Differentiable ops by family. Each module holds its Functions and the functional API."""

# tensor.py first: it imports the modules below whole, then makes their functions its methods.
from gradflow import tensor  # noqa: F401  # isort: skip
from gradflow.ops import elementwise, index, inplace, linalg, reduce, shape  # noqa: F401
