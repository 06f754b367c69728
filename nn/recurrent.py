"""Recurrent layers with PyTorch's signatures, parameter names and layouts (issue 16):
``RNNCell``, ``LSTMCell``, ``RNN``, ``LSTM``.

A weight is stored as PyTorch stores it, ``weight_ih`` (gates·H, I) and ``weight_hh`` (gates·H,
H), used as ``x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh``; an LSTM's gates are stacked in PyTorch's order
i, f, g, o. Every parameter starts from U(−1/√H, 1/√H), PyTorch's default. ``RNN`` and ``LSTM``
take sequence-first inputs (T, B, F), as PyTorch's default and the course, and unroll the
recurrence over T: the graph of T steps shares the weights, so backpropagation through time is
the chain rule over that graph, and each step's terms print once. The final states are
returned for truncated BPTT (pass them back in as the next window's initial states).

>>> import symdiff as sd
>>> from symdiff import nn
>>> lstm = nn.LSTM(8, 16, num_layers=2)
>>> [name for name, _ in lstm.named_parameters()][:4]
['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']
>>> out, (h, c) = lstm(sd.tensor("x", (5, "B", 8), "float32"))
>>> out.shape, h.shape, c.shape
((5, B, 16), (2, B, 16), (2, B, 16))
"""

from __future__ import annotations

import math

import symdiff as sd

from . import init
from .module import Module, Parameter

NONLINEARITIES = {"tanh": sd.tanh, "relu": sd.relu}


def _positive(layer, **values):
    for name, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{layer}: {name} must be a positive int, got {v!r}")


def _weights(owner, suffix, gates, input_size, hidden_size, bias, dtype):
    """PyTorch's parameters of one cell: weight_ih, weight_hh, bias_ih, bias_hh (+ suffix)."""
    bound = 1.0 / math.sqrt(hidden_size)
    rows = gates * hidden_size
    for name, short, shape in (("weight_ih", "W_ih", (rows, input_size)), ("weight_hh", "W_hh", (rows, hidden_size)),
                               ("bias_ih", "b_ih", (rows,)), ("bias_hh", "b_hh", (rows,))):
        if name.startswith("bias") and not bias:
            setattr(owner, name + suffix, None)
            continue
        # attributes named as PyTorch's state_dict (weight_ih_l0); leaves W_ih₁, W_ih₂, ... per layer
        setattr(owner, name + suffix, Parameter(init.uniform(shape, -bound, bound, dtype), short))


def _affine(x, h, owner, suffix):
    """x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh."""
    out = x @ getattr(owner, "weight_ih" + suffix).leaf.T + h @ getattr(owner, "weight_hh" + suffix).leaf.T
    for name in ("bias_ih", "bias_hh"):
        b = getattr(owner, name + suffix)
        if b is not None:
            out = out + b.leaf
    return out


def _input_projection(x, owner, suffix):
    """x·W_ihᵀ + b_ih + b_hh for every step at once: a scan's body then multiplies only h (the
    input's product is one (T·B)×F by F×G GEMM before the loop, its gradients one after it, as
    PyTorch's and cuDNN's RNNs do)."""
    out = x @ getattr(owner, "weight_ih" + suffix).leaf.T
    for name in ("bias_ih", "bias_hh"):
        b = getattr(owner, name + suffix)
        if b is not None:
            out = out + b.leaf
    return out


def _recurrent(projected, h, owner, suffix):
    """One step's pre-activation from its projected input: (x_t·W_ihᵀ + b) + h·W_hhᵀ."""
    return projected + h @ getattr(owner, "weight_hh" + suffix).leaf.T


def _lstm_gates(a, c):
    i, f, g, o = sd.split(a, 4, axis=-1)  # PyTorch's gate order
    c = sd.sigmoid(f) * c + sd.sigmoid(i) * sd.tanh(g)
    return sd.sigmoid(o) * sd.tanh(c), c


def _lstm_step(x, h, c, owner, suffix):
    return _lstm_gates(_affine(x, h, owner, suffix), c)


def _check_input(layer, x, features, sequence=True):
    want = "(T, B, F)" if sequence else "(B, F)"
    rank = 3 if sequence else 2
    if x.ndim != rank or (isinstance(x.shape[-1], int) and x.shape[-1] != features):
        raise sd.ShapeError(f"{layer} takes inputs of shape {want} with F = {features} (sequence first, as "
                            f"PyTorch's default), got {tuple(x.shape)}")


def _zeros(shape, dtype):
    return sd.broadcast_to(sd.constant(0.0, dtype), shape)


class RNNCell(Module):
    """One step of an Elman RNN: h' = tanh(x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh) (or relu), as
    ``torch.nn.RNNCell``; x (B, I), h (B, H) (zeros when not given)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 dtype: str = "float32"):
        super().__init__()
        _positive("RNNCell", input_size=input_size, hidden_size=hidden_size)
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
        _weights(self, "", 1, input_size, hidden_size, bias, dtype)

    def forward(self, x, h=None):
        _check_input(f"RNNCell({self.input_size}, {self.hidden_size})", x, self.input_size, sequence=False)
        h = _zeros((x.shape[0], self.hidden_size), x.dtype) if h is None else h
        return NONLINEARITIES[self.nonlinearity](_affine(x, h, self, ""))


class LSTMCell(Module):
    """One LSTM step as ``torch.nn.LSTMCell``: gates i, f, g, o from x·W_ihᵀ + b_ih + h·W_hhᵀ +
    b_hh; c' = σ(f)⊙c + σ(i)⊙tanh(g), h' = σ(o)⊙tanh(c'). Returns (h', c')."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype: str = "float32"):
        super().__init__()
        _positive("LSTMCell", input_size=input_size, hidden_size=hidden_size)
        self.input_size, self.hidden_size = input_size, hidden_size
        _weights(self, "", 4, input_size, hidden_size, bias, dtype)

    def forward(self, x, state=None):
        _check_input(f"LSTMCell({self.input_size}, {self.hidden_size})", x, self.input_size, sequence=False)
        if state is None:
            zero = _zeros((x.shape[0], self.hidden_size), x.dtype)
            state = (zero, zero)
        h, c = state
        return _lstm_step(x, h, c, self, "")


class _Recurrent(Module):
    gates = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dtype: str = "float32", unroll: bool = False):
        super().__init__()
        self.unroll = bool(unroll)  # False: each layer is one sd.scan (its body compiled once)
        layer = type(self).__name__
        _positive(layer, input_size=input_size, hidden_size=hidden_size, num_layers=num_layers)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        for k in range(num_layers):
            _weights(self, f"_l{k}", self.gates, input_size if k == 0 else hidden_size, hidden_size, bias, dtype)

    def _initial(self, x, given, what):
        shape = (self.num_layers, x.shape[1], self.hidden_size)
        if given is None:
            return [_zeros(shape[1:], x.dtype)] * self.num_layers
        if given.ndim != 3 or given.shape[0] != self.num_layers or given.shape[2] != self.hidden_size:
            raise sd.ShapeError(f"{type(self).__name__}: {what} must be (num_layers, B, H) = "
                                f"({self.num_layers}, B, {self.hidden_size}), got {tuple(given.shape)}")
        return [given[k] for k in range(self.num_layers)]

    def _sequence(self, x):
        _check_input(f"{type(self).__name__}({self.input_size}, {self.hidden_size})", x, self.input_size)
        if not self.unroll:
            return x
        if not isinstance(x.shape[0], int):
            raise sd.ShapeError(f"{type(self).__name__} unrolls over T: the sequence length must be concrete, "
                                f"got {x.shape[0]}")
        return [x[t] for t in range(x.shape[0])]


class RNN(_Recurrent):
    """A stack of Elman RNN layers over (T, B, F) inputs, as ``torch.nn.RNN``. Returns
    ``(output (T, B, H), h_n (num_layers, B, H))``; ``h0`` (num_layers, B, H) defaults to zeros.
    Each layer is one :func:`symdiff.scan` (its step compiled once, whatever T); ``unroll=True``
    builds the course's unrolled graph of T steps instead."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, dtype: str = "float32", unroll: bool = False):
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, dtype, unroll)
        self.nonlinearity = nonlinearity

    def forward(self, x, h0=None):
        steps = self._sequence(x)
        hs = self._initial(x, h0, "h0")
        act = NONLINEARITIES[self.nonlinearity]
        if not self.unroll:  # one scan per layer: h ← act(a_t + h·W_hhᵀ), a = x·W_ihᵀ + b_ih + b_hh
            for k in range(self.num_layers):
                hs[k], steps = sd.scan(lambda h, at, k=k: (act(_recurrent(at, h, self, f"_l{k}")),) * 2,
                                       hs[k], _input_projection(steps, self, f"_l{k}"), names="h")
            return steps, sd.stack(hs)
        for k in range(self.num_layers):
            h, out = hs[k], []
            for xt in steps:
                h = act(_affine(xt, h, self, f"_l{k}"))
                out.append(h)
            hs[k], steps = h, out
        return sd.stack(steps), sd.stack(hs)


class LSTM(_Recurrent):
    """A stack of LSTM layers over (T, B, F) inputs, as ``torch.nn.LSTM`` (gate order i, f, g,
    o). Returns ``(output (T, B, H), (h_n, c_n))``, each state (num_layers, B, H); the initial
    state ``(h0, c0)`` defaults to zeros. Each layer is one :func:`symdiff.scan` carrying (h, c);
    ``unroll=True`` builds the unrolled graph of T steps instead."""

    gates = 4

    def forward(self, x, state=None):
        steps = self._sequence(x)
        h0, c0 = (None, None) if state is None else state
        hs, cs = self._initial(x, h0, "h0"), self._initial(x, c0, "c0")
        if not self.unroll:  # one scan per layer, carrying (h, c); its outputs are the h_t
            for k in range(self.num_layers):
                def step(state, at, k=k):  # at = x_t·W_ihᵀ + b_ih + b_hh, projected before the loop
                    h, c = _lstm_gates(_recurrent(at, state[0], self, f"_l{k}"), state[1])
                    return (h, c), h
                (hs[k], cs[k]), steps = sd.scan(step, (hs[k], cs[k]), _input_projection(steps, self, f"_l{k}"),
                                                names=("h", "c"))
            return steps, (sd.stack(hs), sd.stack(cs))
        for k in range(self.num_layers):
            h, c, out = hs[k], cs[k], []
            for xt in steps:
                h, c = _lstm_step(xt, h, c, self, f"_l{k}")
                out.append(h)
            hs[k], cs[k], steps = h, c, out
        return sd.stack(steps), (sd.stack(hs), sd.stack(cs))
