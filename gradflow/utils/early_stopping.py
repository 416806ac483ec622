"""EarlyStopping: stop training once a validation metric stops improving, keeping the best
weights.

Call ``step(metric, model)`` once per epoch. A metric improves when it beats the best so far
by more than ``min_delta`` (lower in mode "min", higher in mode "max"). After ``patience``
epochs in a row without improvement (Keras' and Lightning's rule) ``step`` returns True, and
with ``restore_best`` the model gets the best epoch's weights back. Once it has said stop,
``step`` keeps returning True and records nothing more.
"""

from __future__ import annotations

import math
from typing import Dict, Optional

from gradflow.nn import Module
from gradflow.tensor import Tensor


class EarlyStopping:
    """Watch a metric per epoch; `step` returns True when training should stop.

    Attributes: `best` (best metric so far, None before the first step), `best_epoch`
    (0-based index of the step that set it), `counter` (steps since the last improvement),
    `should_stop`, and `best_state` (a copy of the model's state_dict at the best step, kept
    whenever `step` is given the model). A NaN metric never counts as an improvement.

    >>> stopper = gf.utils.EarlyStopping(patience=2)
    >>> [stopper.step(loss) for loss in [1.0, 0.8, 0.9, 0.85]]
    [False, False, False, True]
    >>> stopper.best, stopper.best_epoch
    (0.8, 1)
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0, mode: str = "min",
                 restore_best: bool = True) -> None:
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience should be >= 0, got {patience}")
        if min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta should be >= 0, got {min_delta}")
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode should be 'min' or 'max', got {mode!r}")
        self.patience = patience
        self.min_delta = min_delta
        self.mode = mode
        self.restore_best = restore_best
        self.best: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self.best_state: Optional[Dict[str, Tensor]] = None
        self.counter = 0
        self.should_stop = False
        self._epoch = -1

    def _improved(self, metric: float) -> bool:
        if math.isnan(metric):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return metric < self.best - self.min_delta
        return metric > self.best + self.min_delta

    def step(self, metric: float, model: Optional[Module] = None) -> bool:
        """Record this epoch's `metric` (a number or a one-element tensor); True means stop.

        On an improvement the model's state_dict is copied (its tensors cloned, so later
        training does not change the copy); on stop it is loaded back when `restore_best`.
        """
        if self.should_stop:
            return True
        metric = float(metric.item() if isinstance(metric, Tensor) else metric)
        self._epoch += 1
        if self._improved(metric):
            self.best, self.best_epoch, self.counter = metric, self._epoch, 0
            if model is not None:
                self.best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            self.counter += 1
            if self.counter >= self.patience:
                self.should_stop = True
                if self.restore_best and self.best_state is not None and model is not None:
                    self.restore(model)
        return self.should_stop

    def restore(self, model: Module) -> None:
        """Load the best epoch's weights into `model`."""
        if self.best_state is None:
            raise RuntimeError("EarlyStopping.restore: no best state recorded yet (call "
                               "step(metric, model) with the model first)")
        model.load_state_dict(self.best_state)
