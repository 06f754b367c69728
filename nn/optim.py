"""Optimizers whose update is an expression in the training graph.

``optimizer.updates(grads)`` returns ``{leaf: new value}`` for every parameter and every
state tensor (momentum, Adam's moments). The trainer hands it to ``sd.compile(...,
updates=...)``: the update fuses with the backward pass, is written in place, and prints
as a formula. State arrays live here, as numpy arrays fed to the compiled step. The
learning rate ``lr`` and Adam's step counter ``t`` are scalar inputs, so one compiled
program serves every step and every rate: a schedule (:class:`MultiStepLR`,
:class:`CosineAnnealingLR`) sets ``optimizer.lr`` between steps without recompiling.
``clip_norm=c`` scales every gradient by min(1, c / (‖g‖₂ + 1e-6)), ‖g‖₂ over all the
parameters' gradients together (PyTorch's ``clip_grad_norm_`` before the step), inside the
same compiled step.

>>> import symdiff as sd
>>> from symdiff import nn
>>> model = nn.Linear(3, 1, bias=False)
>>> opt = nn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
>>> loss = sd.sum(model(sd.tensor("X", ("m", 3), "float32")))
>>> updates = opt.updates(sd.grad(loss, [p.leaf for p in opt.params]))
>>> print(sd.pretty(sd.optimize(list(updates.values()))))
W₁ − lr·(0.9·v_W₁ + Xᵀ·1)
0.9·v_W₁ + Xᵀ·1
>>> opt.lr = 0.01  # the next run of the compiled step uses it
>>> opt.arguments()[-1], opt.config()["lr"]
(array(0.01, dtype=float32), 0.1)
"""

from __future__ import annotations

import math

import numpy as np

import symdiff as sd

OPTIMIZERS: dict = {}


class Optimizer:
    """Base: hyperparameters, per-parameter state arrays and a step counter."""

    slots: tuple = ()

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        OPTIMIZERS[cls.__name__] = cls

    def __init__(self, params, clip_norm: float | None = None, **hyper):
        if clip_norm is not None:
            clip_norm = float(clip_norm)
            if not (np.isfinite(clip_norm) and clip_norm > 0):
                raise ValueError(f"{type(self).__name__}: clip_norm must be a finite number > 0, got {clip_norm}")
            hyper["clip_norm"] = clip_norm  # absent when off: older configs and reprs stay as they were
        self.clip_norm = clip_norm
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: no parameters to optimize")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError(f"{type(self).__name__}: a parameter is listed twice")
        for key, value in hyper.items():
            if isinstance(value, float) and (value < 0 or not np.isfinite(value)):
                raise ValueError(f"{type(self).__name__}: {key} must be a finite number >= 0, got {value}")
        self.hyper = hyper  # as constructed: config() rebuilds the optimizer from them
        self.step_count = 0
        self.state = {f"{i}.{slot}": np.zeros(p.shape, p.dtype)
                      for i, p in enumerate(self.params) for slot in self.slots}
        dtype = self.params[0].dtype
        self._lr = np.array(hyper.get("lr", 0.0), dtype)  # the rate the next step uses
        self.lr_leaf = sd.tensor("lr", (), dtype)

    @property
    def lr(self) -> float:
        """The learning rate of the next step; setting it needs no recompilation (it is an
        input of the step, ``hyper["lr"]`` stays the initial rate)."""
        return float(self._lr)

    @lr.setter
    def lr(self, value) -> None:
        value = float(value)
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"{type(self).__name__}: lr must be a finite number >= 0, got {value}")
        self._lr[...] = value

    def _slot(self, i, slot):
        p = self.params[i]
        return sd.tensor(f"{slot}_{p.name}", p.shape, p.dtype)

    def leaves(self) -> list:
        """Inputs of the step beyond the parameters, in the order of :meth:`arguments`."""
        return [self._slot(i, slot) for i in range(len(self.params)) for slot in self.slots] + [self.lr_leaf]

    def arguments(self) -> list:
        return [self.state[f"{i}.{slot}"] for i in range(len(self.params)) for slot in self.slots] + [self._lr]

    def begin_step(self) -> None:
        """Called before each run of the step (advances the step counter)."""
        self.step_count += 1

    def updates(self, grads) -> dict:
        """{leaf: new value} for the parameters and the state, given their gradients."""
        grads = list(grads)
        if len(grads) != len(self.params):
            raise ValueError(f"{len(grads)} gradients for {len(self.params)} parameters")
        if self.clip_norm is not None:
            grads = clip_by_global_norm(grads, self.clip_norm)
        out = {}
        for i, (p, g) in enumerate(zip(self.params, grads)):
            out.update(self._update(i, p.leaf, g))
        return out

    def config(self) -> dict:
        return {"optimizer": type(self).__name__, **self.hyper}

    def state_dict(self) -> dict:
        return {**{k: v.copy() for k, v in self.state.items()}, "step_count": np.array(self.step_count),
                "lr": self._lr.copy()}

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
        # checkpoints written before the rate was an input have none: the initial rate holds
        self.lr = float(state["lr"]) if "lr" in state else self.hyper["lr"]

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v}' for k, v in self.hyper.items())})"


def clip_by_global_norm(grads, max_norm: float) -> list:
    """Each gradient times min(1, c / (‖g‖₂ + 1e-6)), ‖g‖₂ the norm of all of them together
    (``torch.nn.utils.clip_grad_norm_``); the step prints it as ``minimum(1, c / (1e-06 + √(…)))``.

    >>> import symdiff as sd
    >>> g = [sd.tensor("a", (2,), "float64"), sd.tensor("b", (3,), "float64")]
    >>> out = clip_by_global_norm(g, 1.0)
    >>> [round(float(v), 6) for v in sd.evaluate(out, {g[0]: [3.0, 0.0], g[1]: [0.0, 4.0, 0.0]})[0]]
    [0.6, 0.0]
    """
    grads = list(grads)
    norm = sd.sqrt(sum(sd.sum(sd.square(g)) for g in grads))
    scale = sd.minimum(1.0, max_norm / (norm + 1e-6))
    return [g * scale for g in grads]


class SGD(Optimizer):
    """PyTorch's SGD: g ← ∇ + wd·p; v ← μ·v + g; step g (plain), v (momentum) or g + μ·v
    (Nesterov); p ← p − lr·step.

    >>> SGD([], lr=0.1)
    Traceback (most recent call last):
    ...
    ValueError: SGD: no parameters to optimize
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, clip_norm: float | None = None):
        if nesterov and momentum <= 0:
            raise ValueError("SGD: Nesterov momentum needs momentum > 0")
        self.slots = ("v",) if momentum else ()
        super().__init__(params, clip_norm, lr=float(lr), momentum=float(momentum), nesterov=bool(nesterov),
                         weight_decay=float(weight_decay))

    def _update(self, i, p, g):
        h = self.hyper
        if h["weight_decay"]:
            g = g + h["weight_decay"] * p
        if not h["momentum"]:
            return {p: p - self.lr_leaf * g}
        v = self._slot(i, "v")
        v_new = h["momentum"] * v + g
        step = g + h["momentum"] * v_new if h["nesterov"] else v_new
        return {p: p - self.lr_leaf * step, v: v_new}


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
                 weight_decay: float = 0.0, decoupled: bool = False, clip_norm: float | None = None):
        b1, b2 = (float(b) for b in betas)
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        super().__init__(params, clip_norm, lr=float(lr), beta1=b1, beta2=b2, eps=float(eps),
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
        lr = self.lr_leaf
        base = p * (1.0 - lr * h["weight_decay"]) if h["weight_decay"] and h["decoupled"] else p
        return {p: base - lr * m_hat / (sd.sqrt(v_hat) + h["eps"]), m: m_new, v: v_new}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), default wd 0.01."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, decoupled: bool = True, clip_norm: float | None = None):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled, clip_norm)


class MultiStepLR:
    """A step decay of the learning rate, as PyTorch's ``MultiStepLR``: epoch ``e`` (counted
    from 0) trains at ``initial · gamma^k``, k the number of milestones ≤ e. The trainer sets
    ``optimizer.lr`` from it before each epoch; the compiled step is not rebuilt.

    >>> schedule = MultiStepLR([8], gamma=0.1)  # x0.1 after epoch 8: epochs 9, 10, ... at 0.005
    >>> [round(schedule.lr(0.05, e), 6) for e in (0, 7, 8, 14)]
    [0.05, 0.05, 0.005, 0.005]
    """

    def __init__(self, milestones, gamma: float = 0.1):
        milestones = [int(m) for m in milestones]
        if not milestones or any(m < 1 for m in milestones) or sorted(set(milestones)) != milestones:
            raise ValueError(f"MultiStepLR: milestones must be increasing epoch counts >= 1, got {milestones}")
        if not (np.isfinite(gamma) and 0 < gamma):
            raise ValueError(f"MultiStepLR: gamma must be a finite number > 0, got {gamma}")
        self.milestones, self.gamma = milestones, float(gamma)

    def lr(self, initial: float, epoch: int) -> float:
        return initial * self.gamma ** sum(m <= epoch for m in self.milestones)

    def config(self) -> dict:
        return {"schedule": type(self).__name__, "milestones": list(self.milestones), "gamma": self.gamma}

    def __repr__(self):
        return f"MultiStepLR(milestones={self.milestones}, gamma={self.gamma})"


class CosineAnnealingLR:
    """Cosine annealing, as PyTorch's ``CosineAnnealingLR`` stepped once per epoch: epoch ``e``
    (counted from 0) trains at η_min + (initial − η_min)·(1 + cos(π·e/T_max))/2, so epoch T_max
    is at η_min (and the rate rises again after it, as PyTorch's does).

    >>> schedule = CosineAnnealingLR(4, eta_min=0.01)
    >>> [round(schedule.lr(0.1, e), 6) for e in range(5)]
    [0.1, 0.08682, 0.055, 0.02318, 0.01]
    """

    def __init__(self, T_max: int, eta_min: float = 0.0):
        if int(T_max) != T_max or T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be an epoch count >= 1, got {T_max}")
        if not (np.isfinite(eta_min) and eta_min >= 0):
            raise ValueError(f"CosineAnnealingLR: eta_min must be a finite number >= 0, got {eta_min}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)

    def lr(self, initial: float, epoch: int) -> float:
        return self.eta_min + (initial - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2

    def config(self) -> dict:
        return {"schedule": type(self).__name__, "T_max": self.T_max, "eta_min": self.eta_min}

    def __repr__(self):
        return f"CosineAnnealingLR(T_max={self.T_max}, eta_min={self.eta_min})"


SCHEDULES = {"MultiStepLR": MultiStepLR, "CosineAnnealingLR": CosineAnnealingLR}


def schedule_from_config(config):
    """Rebuild a schedule from its ``config()`` (None for none)."""
    if config is None:
        return None
    config = dict(config)
    name = config.pop("schedule", None)
    if name not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {name!r} in a checkpoint")
    return SCHEDULES[name](**config)


def from_config(config: dict, params) -> Optimizer:
    """Rebuild an optimizer from :meth:`Optimizer.config` over ``params``."""
    config = dict(config)
    name = config.pop("optimizer", None)
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} in a checkpoint")
    return OPTIMIZERS[name](params, **config)
