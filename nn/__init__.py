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

from . import checkpoint, data, init, optim, transforms
from .attention import MultiheadAttention, PositionalEmbedding, TransformerEncoderLayer
from .conv import AdaptiveAvgPool2d, AvgPool2d, Conv2d, MaxPool2d
from .language_model import CharLSTM, CharTransformer
from .layers import (
                     BatchNorm1d,
                     BatchNorm2d,
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
from .models import ConvBN, LeNet5, ResNet9
from .module import Buffer, Module, Parameter, from_config, trace
from .recurrent import LSTM, RNN, LSTMCell, RNNCell
from .sequence import GELU, Embedding, LayerNorm
from .trainer import Trainer, TrainingError

__all__ = [
                     "GELU",
                     "LSTM",
                     "RNN",
                     "AdaptiveAvgPool2d",
                     "AvgPool2d",
                     "BatchNorm1d",
                     "BatchNorm2d",
                     "Buffer",
                     "CharLSTM",
                     "CharTransformer",
                     "Conv2d",
                     "ConvBN",
                     "Dropout",
                     "Embedding",
                     "Flatten",
                     "Identity",
                     "LSTMCell",
                     "LayerNorm",
                     "LayerNorm1d",
                     "LeNet5",
                     "Linear",
                     "MSELoss",
                     "MaxPool2d",
                     "Module",
                     "MultiheadAttention",
                     "Parameter",
                     "PositionalEmbedding",
                     "RNNCell",
                     "ReLU",
                     "ResNet9",
                     "Residual",
                     "Sequential",
                     "Sigmoid",
                     "SoftmaxLoss",
                     "Tanh",
                     "Trainer",
                     "TrainingError",
                     "TransformerEncoderLayer",
                     "checkpoint",
                     "data",
                     "from_config",
                     "init",
                     "optim",
                     "trace",
                     "transforms",
]
