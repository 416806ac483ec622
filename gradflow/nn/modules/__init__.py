"""gradflow.nn.modules: PyTorch's module paths (torch.nn.modules.rnn.LSTM,
torch.nn.modules.conv.Conv2d, ...) over gradflow's layers, so that code and checkpoints which
name a class by its path resolve. Each submodule re-exports the classes PyTorch keeps there;
the classes themselves live in gradflow.nn's family files."""

from gradflow.nn.modules import (  # noqa: F401
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
from gradflow.nn.modules.activation import *  # noqa: F401,F403
from gradflow.nn.modules.batchnorm import *  # noqa: F401,F403
from gradflow.nn.modules.container import *  # noqa: F401,F403
from gradflow.nn.modules.conv import *  # noqa: F401,F403
from gradflow.nn.modules.dropout import *  # noqa: F401,F403
from gradflow.nn.modules.flatten import *  # noqa: F401,F403
from gradflow.nn.modules.fold import *  # noqa: F401,F403
from gradflow.nn.modules.instancenorm import *  # noqa: F401,F403
from gradflow.nn.modules.linear import *  # noqa: F401,F403
from gradflow.nn.modules.loss import *  # noqa: F401,F403
from gradflow.nn.modules.module import *  # noqa: F401,F403
from gradflow.nn.modules.normalization import *  # noqa: F401,F403
from gradflow.nn.modules.padding import *  # noqa: F401,F403
from gradflow.nn.modules.pixelshuffle import *  # noqa: F401,F403
from gradflow.nn.modules.pooling import *  # noqa: F401,F403
from gradflow.nn.modules.rnn import *  # noqa: F401,F403
from gradflow.nn.modules.sparse import *  # noqa: F401,F403
from gradflow.nn.modules.transformer import *  # noqa: F401,F403
from gradflow.nn.modules.upsampling import *  # noqa: F401,F403
