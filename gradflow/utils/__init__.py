"""Utilities: model summary, autograd graph drawing, early stopping, training diagnostics;
the data-loading tools live in gradflow.utils.data."""

from gradflow.utils import data  # noqa: F401  (so `gradflow.utils.data` works after import)
from gradflow.utils.diagnostics import Monitor
from gradflow.utils.early_stopping import EarlyStopping
from gradflow.utils.graph import draw_graph
from gradflow.utils.summary import LayerSummary, ModelSummary, summary

__all__ = ["EarlyStopping", "LayerSummary", "ModelSummary", "Monitor", "draw_graph",
           "summary"]
