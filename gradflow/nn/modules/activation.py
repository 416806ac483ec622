"""torch.nn.modules.activation's classes, for code and checkpoints that name them by path."""

from gradflow.nn.activation import (
    ELU,
    GELU,
    LeakyReLU,
    LogSoftmax,
    PReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from gradflow.nn.attention import MultiheadAttention

__all__ = [
    "ELU", "GELU", "LeakyReLU", "LogSoftmax", "MultiheadAttention", "PReLU", "ReLU", "ReLU6",
    "SiLU", "Sigmoid", "Softmax", "Softplus", "Tanh"
]
