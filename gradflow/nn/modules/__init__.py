"""gradflow.nn.modules: PyTorch's module paths (torch.nn.modules.rnn.LSTM,
torch.nn.modules.conv.Conv2d, ...) over gradflow's layers, so that code and checkpoints which
name a class by its path resolve. Each submodule re-exports the classes PyTorch keeps there;
the classes themselves live in gradflow.nn's family files. __all__ gathers the submodules'
lists: it is gradflow.nn's list of layers."""

from gradflow.nn.modules import (
    activation,
    batchnorm,
    container,
    conv,
    dropout,
    flatten,
    fold,
    instancenorm,
    linear,
    loss,
    module,
    normalization,
    padding,
    pixelshuffle,
    pooling,
    rnn,
    sparse,
    transformer,
    upsampling,
)
from gradflow.nn.modules.activation import *  # noqa: F403
from gradflow.nn.modules.batchnorm import *  # noqa: F403
from gradflow.nn.modules.container import *  # noqa: F403
from gradflow.nn.modules.conv import *  # noqa: F403
from gradflow.nn.modules.dropout import *  # noqa: F403
from gradflow.nn.modules.flatten import *  # noqa: F403
from gradflow.nn.modules.fold import *  # noqa: F403
from gradflow.nn.modules.instancenorm import *  # noqa: F403
from gradflow.nn.modules.linear import *  # noqa: F403
from gradflow.nn.modules.loss import *  # noqa: F403
from gradflow.nn.modules.module import *  # noqa: F403
from gradflow.nn.modules.normalization import *  # noqa: F403
from gradflow.nn.modules.padding import *  # noqa: F403
from gradflow.nn.modules.pixelshuffle import *  # noqa: F403
from gradflow.nn.modules.pooling import *  # noqa: F403
from gradflow.nn.modules.rnn import *  # noqa: F403
from gradflow.nn.modules.sparse import *  # noqa: F403
from gradflow.nn.modules.transformer import *  # noqa: F403
from gradflow.nn.modules.upsampling import *  # noqa: F403

__all__ = [
    *activation.__all__,
    *batchnorm.__all__,
    *container.__all__,
    *conv.__all__,
    *dropout.__all__,
    *flatten.__all__,
    *fold.__all__,
    *instancenorm.__all__,
    *linear.__all__,
    *loss.__all__,
    *module.__all__,
    *normalization.__all__,
    *padding.__all__,
    *pixelshuffle.__all__,
    *pooling.__all__,
    *rnn.__all__,
    *sparse.__all__,
    *transformer.__all__,
    *upsampling.__all__,
]
