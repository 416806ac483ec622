"""gradflow.optim: optimizers and learning-rate schedulers, shaped like torch.optim."""

from gradflow.optim import lr_scheduler
from gradflow.optim.adadelta import Adadelta
from gradflow.optim.adagrad import Adagrad
from gradflow.optim.adam import Adam, AdamW
from gradflow.optim.adamax import Adamax
from gradflow.optim.lbfgs import LBFGS
from gradflow.optim.nadam import NAdam
from gradflow.optim.optimizer import Optimizer
from gradflow.optim.radam import RAdam
from gradflow.optim.rmsprop import RMSprop
from gradflow.optim.sgd import SGD

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adadelta",
           "Adamax", "NAdam", "RAdam", "LBFGS", "lr_scheduler"]
