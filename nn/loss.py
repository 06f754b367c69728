"""Losses: modules taking (prediction, target) graph nodes to a scalar node.

>>> import numpy as np
>>> import symdiff as sd
>>> from symdiff import nn
>>> p, t = sd.tensor("p", ("m", 2)), sd.tensor("t", ("m", 2))
>>> float(sd.evaluate(nn.MSELoss()(p, t), {p: np.ones((2, 2)), t: np.zeros((2, 2))}))
1.0
"""

from __future__ import annotations

import symdiff as sd

from .module import Module


class SoftmaxLoss(Module):
    """Softmax cross-entropy with integer labels, averaged over the batch."""

    classification = True

    def forward(self, logits, labels):
        return sd.softmax_cross_entropy(logits, labels)


class MSELoss(Module):
    """Mean of squared differences over every element."""

    classification = False

    def forward(self, prediction, target):
        return sd.mean(sd.square(prediction - target))
