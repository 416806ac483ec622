"""Utilities; the data-loading tools live in gradflow.utils.data."""

from gradflow.utils import data  # noqa: F401  (so `gradflow.utils.data` works after import)
