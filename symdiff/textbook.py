"""Named models from the course notes, for ``symdiff grad --model NAME`` and the demo.

Each builder returns ``(loss, parameters)``: a named scalar loss over symbolic
shapes, and the leaves to differentiate by.

>>> loss, params = MODELS["softmax-regression"]()
>>> [p.name for p in params]
['W']
"""

from __future__ import annotations

from .names import name
from .node import symbols, tensor
from .ops.registry import FUNCTIONS as F


def _data(labels=True):
    X = tensor("X", ("m", "n"))
    y = tensor("y", ("m",), "int64") if labels else tensor("y", ("m",))
    return X, y


def softmax_regression():
    """CE(X·W, y): CMU 10-414 homework 1."""
    X, y = _data()
    W = tensor("W", ("n", "k"))
    return name(F["softmax_cross_entropy"](X @ W, y), "L"), [W]


def mlp2():
    """CE(relu(X·W₁)·W₂, y): the needle homework's two-layer ReLU network."""
    X, y = _data()
    W1, W2 = tensor("W1", ("n", "h")), tensor("W2", ("h", "k"))
    Z1 = name(F["relu"](X @ W1), "Z1")
    return name(F["softmax_cross_entropy"](Z1 @ W2, y), "L"), [W1, W2]


def comp551():
    """CE(σ(X·V)·W, y): COMP 551's two layers with a logistic hidden layer."""
    X, y = _data()
    V, W = tensor("V", ("n", "h")), tensor("W", ("h", "k"))
    Z = name(F["sigmoid"](X @ V), "Z")
    return name(F["softmax_cross_entropy"](Z @ W, y), "L"), [W, V]


def least_squares():
    """mean((X·w − y)²)."""
    X, y = _data(labels=False)
    w = tensor("w", ("n",))
    return name(F["mean"]((X @ w - y) ** 2), "L"), [w]


def logistic_regression():
    """mean(softplus(X·w) − y·X·w): binary cross-entropy with logits."""
    X, y = _data(labels=False)
    w = tensor("w", ("n",))
    z = X @ w
    return name(F["mean"](F["softplus"](z) - y * z), "L"), [w]


def weight_decay():
    """CE(X·W, y) + λ/2·‖W‖²."""
    X, y = _data()
    W, lam = tensor("W", ("n", "k")), symbols("lam")
    return name(F["softmax_cross_entropy"](X @ W, y) + lam / 2 * F["sum"](W * W), "L"), [W]


MODELS = {
    "softmax-regression": softmax_regression,
    "mlp2": mlp2,
    "comp551": comp551,
    "least-squares": least_squares,
    "logistic-regression": logistic_regression,
    "weight-decay": weight_decay,
}
