"""gradflow.nn: Modules, layers, losses and initialisation, shaped like torch.nn."""

from gradflow.nn import (
    functional,
    init,
    modules,
    parallel,
    utils,
)
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
from gradflow.nn.containers import (
    ModuleDict,
    ModuleList,
    ParameterDict,
    ParameterList,
    Sequential,
)
from gradflow.nn.conv import Conv1d, Conv2d, ConvTranspose2d, Fold, Unfold
from gradflow.nn.dropout import Dropout, Dropout2d
from gradflow.nn.flatten import Flatten, Unflatten
from gradflow.nn.linear import Identity, Linear
from gradflow.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from gradflow.nn.module import Module
from gradflow.nn.normalization import (
    BatchNorm1d,
    BatchNorm2d,
    GroupNorm,
    InstanceNorm2d,
    LayerNorm,
)
from gradflow.nn.padding import (
    CircularPad1d,
    CircularPad2d,
    CircularPad3d,
    ConstantPad1d,
    ConstantPad2d,
    ConstantPad3d,
    ReflectionPad1d,
    ReflectionPad2d,
    ReflectionPad3d,
    ReplicationPad1d,
    ReplicationPad2d,
    ReplicationPad3d,
    ZeroPad1d,
    ZeroPad2d,
    ZeroPad3d,
)
from gradflow.nn.parameter import Parameter
from gradflow.nn.pixelshuffle import PixelShuffle, PixelUnshuffle
from gradflow.nn.pooling import (
    AdaptiveAvgPool2d,
    AdaptiveMaxPool2d,
    AvgPool2d,
    MaxPool2d,
    MaxUnpool2d,
    Upsample,
)
from gradflow.nn.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase
from gradflow.nn.sparse import Embedding
from gradflow.nn.sync_batchnorm import SyncBatchNorm
from gradflow.nn.transformer import (
    Transformer,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = [
    "functional", "init", "parallel", "utils", "modules", "Module", "Parameter", "Sequential",
    "ModuleList",
    "ModuleDict", "Linear", "Identity", "Flatten", "Unflatten", "Conv2d", "ConvTranspose2d",
    "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "MaxUnpool2d",
    "Upsample", "BatchNorm1d", "BatchNorm2d", "SyncBatchNorm", "LayerNorm", "GroupNorm",
    "InstanceNorm2d",
    "Dropout", "Dropout2d", "Embedding", "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "GELU",
    "SiLU", "Sigmoid", "Tanh", "Softplus", "Softmax", "LogSoftmax", "CrossEntropyLoss",
    "NLLLoss", "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss",
    "BCEWithLogitsLoss", "KLDivLoss", "RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase",
    "RNNCell", "LSTMCell", "GRUCell", "PixelShuffle", "PixelUnshuffle",
    "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
    "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d",
    "ReplicationPad2d", "ReplicationPad3d", "CircularPad1d", "CircularPad2d", "CircularPad3d",
    "MultiheadAttention", "Transformer", "TransformerEncoder", "TransformerEncoderLayer",
    "TransformerDecoder", "TransformerDecoderLayer",
    "Conv1d", "Unfold", "Fold", "ParameterList", "ParameterDict",
]
