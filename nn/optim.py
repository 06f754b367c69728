"""Optimizers whose update is an expression in the training graph.

``optimizer.updates(grads)`` returns ``{leaf: new value}`` for every parameter and every
state tensor (momentum, Adam's moments). The trainer hands it to ``sd.compile(...,
updates=...)``: the update fuses with the backward pass, is written in place, and prints
as a formula. State arrays live here, as numpy arrays fed to the compiled step; Adam's
step counter ``t`` is a scalar input, so one compiled program serves every step.

>>> import symdiff as sd
>>> from symdiff import nn
>>> model = nn.Linear(3, 1, bias=False)
>>> opt = nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
>>> loss = sd.sum(model(sd.tensor("X", ("m", 3), "float32")))
>>> updates = opt.updates(sd.grad(loss, [p.leaf for p in opt.params]))
>>> print(sd.pretty(sd.optimize(list(updates.values()))))
W₁ − 0.1·(0.9v_W₁ + Xᵀ·1)
0.9v_W₁ + Xᵀ·1
"""

from __future__ import annotations

import numpy as np

import symdiff as sd

OPTIMIZERS: dict = {}


class Optimizer:
    """Base: hyperparameters, per-parameter state arrays and a step counter."""

    slots: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        OPTIMIZERS[cls.__name__] = cls

    def __init__(self, params, **hyper):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: no parameters to optimize")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError(f"{type(self).__name__}: a parameter is listed twice")
        for key, value in hyper.items():
            if isinstance(value, float) and (value < 0 or not np.isfinite(value)):
                raise ValueError(f"{type(self).__name__}: {key} must be a finite number >= 0, got {value}")
        self.hyper = hyper
        self.step_count = 0
        self.state = {f"{i}.{slot}": np.zeros(p.shape, p.dtype)
                      for i, p in enumerate(self.params) for slot in self.slots}

    def _slot(self, i, slot):
        p = self.params[i]
        return sd.tensor(f"{slot}_{p.name}", p.shape, p.dtype)

    def leaves(self) -> list:
        """Inputs of the step beyond the parameters, in the order of :meth:`arguments`."""
        return [self._slot(i, slot) for i in range(len(self.params)) for slot in self.slots]

    def arguments(self) -> list:
        return [self.state[f"{i}.{slot}"] for i in range(len(self.params)) for slot in self.slots]

    def begin_step(self) -> None:
        """Called before each run of the step (advances the step counter)."""
        self.step_count += 1

    def updates(self, grads) -> dict:
        """{leaf: new value} for the parameters and the state, given their gradients."""
        grads = list(grads)
        if len(grads) != len(self.params):
            raise ValueError(f"{len(grads)} gradients for {len(self.params)} parameters")
        out = {}
        for i, (p, g) in enumerate(zip(self.params, grads)):
            out.update(self._update(i, p.leaf, g))
        return out

    def config(self) -> dict:
        return {"optimizer": type(self).__name__, **self.hyper}

    def state_dict(self) -> dict:
        return {**{k: v.copy() for k, v in self.state.items()}, "step_count": np.array(self.step_count)}

    def load_state_dict(self, state: dict) -> None:
        for key, target in self.state.items():
            if key not in state:
                raise KeyError(f"optimizer state {key} is missing")
            value = np.asarray(state[key])
            if value.shape != target.shape or value.dtype != target.dtype:
                raise ValueError(f"optimizer state {key} has shape {value.shape} {value.dtype}, "
                                 f"expected {target.shape} {target.dtype}")
            np.copyto(target, value)
        self.step_count = int(state["step_count"])

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self.hyper.items())})"


class SGD(Optimizer):
    """PyTorch's SGD: g ← ∇ + wd·p; v ← μ·v + g; step g (plain), v (momentum) or g + μ·v
    (Nesterov); p ← p − lr·step.

    >>> SGD([], lr=0.1)
    Traceback (most recent call last):
    ...
    ValueError: SGD: no parameters to optimize
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        if nesterov and momentum <= 0:
            raise ValueError("SGD: Nesterov momentum needs momentum > 0")
        self.slots = ("v",) if momentum else ()
        super().__init__(params, lr=float(lr), momentum=float(momentum), nesterov=bool(nesterov),
                         weight_decay=float(weight_decay))

    def _update(self, i, p, g):
        h = self.hyper
        if h["weight_decay"]:
            g = g + h["weight_decay"] * p
        if not h["momentum"]:
            return {p: p - h["lr"] * g}
        v = self._slot(i, "v")
        v_new = h["momentum"] * v + g
        step = g + h["momentum"] * v_new if h["nesterov"] else v_new
        return {p: p - h["lr"] * step, v: v_new}


class Adam(Optimizer):
    """Adam with bias correction: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g²,
    p ← p − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε). ``weight_decay`` adds wd·p to the gradient
    (L2, as torch.optim.Adam) or, with ``decoupled=True`` (:class:`AdamW`), multiplies p by
    (1 − lr·wd) before the step.

    >>> Adam([], lr=1e-3)
    Traceback (most recent call last):
    ...
    ValueError: Adam: no parameters to optimize
    """

    slots = ("m", "v")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled: bool = False):
        b1, b2 = (float(b) for b in betas)
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        super().__init__(params, lr=float(lr), beta1=b1, beta2=b2, eps=float(eps),
                         weight_decay=float(weight_decay), decoupled=bool(decoupled))
        dtype = self.params[0].dtype
        self._t = np.zeros((), dtype)
        self.t = sd.tensor("t", (), dtype)

    def config(self) -> dict:
        h = dict(self.hyper)
        h["betas"] = [h.pop("beta1"), h.pop("beta2")]
        return {"optimizer": type(self).__name__, **h}

    def leaves(self) -> list:
        return super().leaves() + [self.t]

    def arguments(self) -> list:
        return super().arguments() + [self._t]

    def begin_step(self) -> None:
        super().begin_step()
        self._t[...] = self.step_count

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._t[...] = self.step_count

    def _update(self, i, p, g):
        h = self.hyper
        if h["weight_decay"] and not h["decoupled"]:
            g = g + h["weight_decay"] * p
        m, v = self._slot(i, "m"), self._slot(i, "v")
        m_new = h["beta1"] * m + (1.0 - h["beta1"]) * g
        v_new = h["beta2"] * v + (1.0 - h["beta2"]) * sd.square(g)
        m_hat = m_new / (1.0 - h["beta1"] ** self.t)
        v_hat = v_new / (1.0 - h["beta2"] ** self.t)
        base = p * (1.0 - h["lr"] * h["weight_decay"]) if h["weight_decay"] and h["decoupled"] else p
        return {p: base - h["lr"] * m_hat / (sd.sqrt(v_hat) + h["eps"]), m: m_new, v: v_new}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), default wd 0.01."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, decoupled: bool = True):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled)


def from_config(config: dict, params) -> Optimizer:
    """Rebuild an optimizer from :meth:`Optimizer.config` over ``params``."""
    config = dict(config)
    name = config.pop("optimizer", None)
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} in a checkpoint")
    return OPTIMIZERS[name](params, **config)
