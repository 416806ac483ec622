"""Differentiable ops by family. Each module holds its Functions and the functional API."""

from gradflow.ops import elementwise, index, inplace, linalg, reduce, shape  # noqa: F401
