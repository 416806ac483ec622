"""Loss modules: each holds its options and calls the functional form in gradflow.ops.loss."""

from __future__ import annotations

from typing import Optional

from gradflow.nn import functional as F
from gradflow.nn.module import Module
from gradflow.ops.loss import legacy_reduction
from gradflow.tensor import Tensor

__all__ = [
    "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "HuberLoss", "KLDivLoss", "L1Loss",
    "MSELoss", "NLLLoss", "SmoothL1Loss"
]


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = legacy_reduction(size_average, reduce, reduction)


class _WeightedLoss(_Loss):
    def __init__(self, weight: Optional[Tensor] = None, size_average=None, reduce=None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """Softmax cross-entropy against class indices or class probabilities.

    >>> logits, target = gf.tensor([[2.0, 0.0], [0.0, 2.0]]), gf.tensor([0, 1])
    >>> nn.CrossEntropyLoss()(logits, target)
    tensor(0.1269)
    """

    def __init__(self, weight: Optional[Tensor] = None, size_average=None,
                 ignore_index: int = -100, reduce=None, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.cross_entropy(input, target, weight=self.weight,
                               ignore_index=self.ignore_index, reduction=self.reduction,
                               label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities against class indices.

    >>> nn.NLLLoss()(gf.tensor([[-0.5, -1.0]]), gf.tensor([0]))
    tensor(0.5000)
    """

    def __init__(self, weight: Optional[Tensor] = None, size_average=None,
                 ignore_index: int = -100, reduce=None, reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error, (x - y)^2 reduced by `reduction`.

    >>> nn.MSELoss()(gf.tensor([1.0, 2.0]), gf.tensor([1.0, 4.0]))
    tensor(2.)
    """
    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error, |x - y| reduced by `reduction`.

    >>> nn.L1Loss()(gf.tensor([1.0, 2.0]), gf.tensor([1.0, 4.0]))
    tensor(1.)
    """
    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """0.5 (x - y)^2 / beta where |x - y| < beta, |x - y| - 0.5 beta elsewhere.

    >>> nn.SmoothL1Loss()(gf.tensor([0.0, 0.0]), gf.tensor([0.5, 3.0]))
    tensor(1.3125)
    """
    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 beta: float = 1.0) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """0.5 (x - y)^2 where |x - y| < delta, delta (|x - y| - 0.5 delta) elsewhere.

    >>> nn.HuberLoss(delta=2.0)(gf.tensor([0.0, 0.0]), gf.tensor([1.0, 4.0]))
    tensor(3.2500)
    """
    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities: -(y log p + (1 - y) log(1 - p)).

    >>> nn.BCELoss()(gf.tensor([0.5, 0.9]), gf.tensor([1.0, 1.0]))
    tensor(0.3993)
    """
    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy(input, target, weight=self.weight,
                                      reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """BCELoss of sigmoid(x), computed stably from the logits x; `pos_weight` scales positives.

    >>> nn.BCEWithLogitsLoss()(gf.tensor([0.0, 2.0]), gf.tensor([1.0, 1.0]))
    tensor(0.4100)
    """
    def __init__(self, weight: Optional[Tensor] = None, size_average=None, reduce=None,
                 reduction: str = "mean", pos_weight: Optional[Tensor] = None) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  pos_weight=self.pos_weight,
                                                  reduction=self.reduction)


class KLDivLoss(_Loss):
    """KL divergence sum y (log y - x) of log-probabilities x from targets y (or log y, with
    log_target=True).

    >>> x = gf.tensor([[0.5, 0.5]]).log()
    >>> nn.KLDivLoss(reduction="batchmean")(x, gf.tensor([[0.25, 0.75]]))
    tensor(0.1308)
    """
    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 log_target: bool = False) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)
