"""symdiff.nn: networks whose whole training step is one lowered program.

Modules build symbolic graphs from ``symdiff`` ops; the training step (loss,
reverse-mode gradients, optimizer update) is compiled by ``symdiff.lowering``.
It imports the core and lowering; neither imports it.

>>> from symdiff import nn
>>> nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
Sequential(
  Linear(784, 256)
  ReLU()
  Linear(256, 10)
)
"""

from . import checkpoint, data, init, optim
from .layers import (
                     BatchNorm1d,
                     Dropout,
                     Flatten,
                     Identity,
                     LayerNorm1d,
                     Linear,
                     ReLU,
                     Residual,
                     Sequential,
                     Sigmoid,
                     Tanh,
)
from .loss import MSELoss, SoftmaxLoss
from .module import Buffer, Module, Parameter, from_config, trace
from .trainer import Trainer, TrainingError

__all__ = ["BatchNorm1d", "Buffer", "Dropout", "Flatten", "Identity", "LayerNorm1d", "Linear", "MSELoss", "Module",
           "Parameter", "ReLU", "Residual", "Sequential", "Sigmoid", "SoftmaxLoss", "Tanh", "Trainer",
           "TrainingError", "checkpoint", "data", "from_config", "init", "optim", "trace"]
