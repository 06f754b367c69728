"""``Module`` and ``Parameter``: networks as the course wrote them (needle / PyTorch style),
whose ``forward`` builds symbolic graph nodes from ``sd`` ops.

A :class:`Parameter` owns a numpy array (its value) and stands in the graph as a leaf
(``sd.tensor``). Leaves are named when the outermost module is called — ``W1, b1, W2, …``
by order of appearance — so printed formulas read like the textbook. A :class:`Buffer` is
state that is not trained (BatchNorm's running statistics): it is an input of the compiled
step, and modules may give it a new value through :func:`current_trace`, which becomes an
in-place ``updates=`` entry of the step.

>>> import symdiff as sd
>>> from symdiff import nn
>>> model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
>>> print(sd.pretty(model(sd.tensor("X", ("m", 4), "float32"))))
Z₁ = X·W₁ + b₁
A₁ = relu(Z₁)
Z₂ = A₁·W₂ + b₂
>>> [name for name, _ in model.named_parameters()]
['layers.0.weight', 'layers.0.bias', 'layers.2.weight', 'layers.2.bias']
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools

import numpy as np

import symdiff as sd

MODULES: dict = {}  # the nn classes that a checkpoint's model description may name


class State:
    """A named array that enters graphs as a leaf (base of :class:`Parameter` and :class:`Buffer`)."""

    trainable = True

    def __init__(self, data, short: str = "p"):
        array = np.asarray(data)
        if array.dtype.kind not in "fi":
            raise TypeError(f"{type(self).__name__} data must be numeric, got dtype {array.dtype}")
        self.data = np.array(array, order="C", copy=True)
        self.short = short
        self.name = short  # renamed (W1, b1, ...) when the outermost module is called

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self) -> str:
        return self.data.dtype.name

    @property
    def leaf(self):
        """This state as a graph leaf: ``sd.tensor(name, shape, dtype)``."""
        return sd.tensor(self.name, self.data.shape, self.data.dtype.name)

    def __repr__(self):
        return f"{type(self).__name__}({self.name}, shape={self.data.shape}, dtype={self.dtype})"


class Parameter(State):
    """A trained value (weights, biases, scales)."""


class Buffer(State):
    """Module state that is not trained, such as running statistics."""

    trainable = False


@dataclasses.dataclass
class Trace:
    """What building a training graph asked for beyond parameters: Dropout masks (extra
    inputs, one leaf each) and new values of buffers (``updates=`` entries)."""

    masks: list = dataclasses.field(default_factory=list)  # (leaf, keep probability)
    updates: dict = dataclasses.field(default_factory=dict)  # buffer leaf -> expression


_traces: list = []
_depth = [0]


@contextlib.contextmanager
def trace():
    """Collect the masks and buffer updates of the graphs built inside.

    >>> import symdiff as sd
    >>> from symdiff import nn
    >>> with nn.trace() as t:
    ...     y = nn.Dropout(0.5)(sd.tensor("X", ("m", 3), "float32"))
    >>> [(leaf.name, p) for leaf, p in t.masks]
    [('mask1', 0.5)]
    """
    t = Trace()
    _traces.append(t)
    try:
        yield t
    finally:
        _traces.pop()


def current_trace() -> Trace | None:
    return _traces[-1] if _traces else None


class Module:
    """Base class: subclasses set attributes (parameters, modules, lists of them) in
    ``__init__`` and build graph nodes in ``forward``."""

    training = True

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("symdiff.nn"):
            MODULES[cls.__name__] = cls
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        @functools.wraps(init)
        def recording_init(self, *args, **kwargs):
            # the outermost constructor records how to rebuild the module (checkpoints)
            self.__dict__.setdefault("_config", (type(self).__name__, args, kwargs))
            init(self, *args, **kwargs)

        cls.__init__ = recording_init

    def __init__(self):
        self.training = True

    def forward(self, *args):
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def __call__(self, *args):
        if _depth[0] == 0:
            self.name_leaves()
        _depth[0] += 1
        try:
            return self.forward(*args)
        finally:
            _depth[0] -= 1

    # -- discovery ----------------------------------------------------------------------------

    def _members(self):
        for key, value in vars(self).items():
            if key == "_config":
                continue
            if isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if isinstance(item, (Module, State)):
                        yield f"{key}.{i}", item
            elif isinstance(value, (Module, State)):
                yield key, value

    def named_modules(self, prefix: str = ""):
        """(path, module) for this module and every submodule, each once, in attribute order."""
        seen = set()

        def walk(module, path):
            if id(module) in seen:
                return
            seen.add(id(module))
            yield path, module
            for key, value in module._members():
                if isinstance(value, Module):
                    yield from walk(value, f"{path}.{key}" if path else key)

        yield from walk(self, prefix)

    def named_states(self):
        seen = set()
        for path, module in self.named_modules():
            for key, value in module._members():
                if isinstance(value, State) and id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{path}.{key}" if path else key), value

    def named_parameters(self):
        return [(k, v) for k, v in self.named_states() if v.trainable]

    def named_buffers(self):
        return [(k, v) for k, v in self.named_states() if not v.trainable]

    def parameters(self) -> list:
        """The trained values, each once, in a fixed order (for optimizers)."""
        self.name_leaves()
        return [v for _, v in self.named_parameters()]

    def buffers(self) -> list:
        self.name_leaves()
        return [v for _, v in self.named_buffers()]

    def children(self):
        return [v for _, v in self._members() if isinstance(v, Module)]

    def name_leaves(self) -> None:
        """Name every state by its short name and order of appearance: W1, b1, W2, ..."""
        counts: dict = {}
        for _, state in self.named_states():
            counts[state.short] = counts.get(state.short, 0) + 1
            state.name = f"{state.short}{counts[state.short]}"

    # -- modes and state ----------------------------------------------------------------------

    def train(self, mode: bool = True):
        for _, module in self.named_modules():
            module.training = mode
        return self

    def eval(self):
        return self.train(False)

    def state_dict(self) -> dict:
        """path -> copy of the array, for parameters and buffers."""
        return {path: state.data.copy() for path, state in self.named_states()}

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy arrays into the existing ones (in place: compiled steps keep working)."""
        own = dict(self.named_states())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing {missing}, unexpected {unexpected}")
        for key, target in own.items():
            if key not in state:
                continue
            value = np.asarray(state[key])
            if value.shape != target.data.shape or value.dtype != target.data.dtype:
                raise ValueError(f"load_state_dict: {key} has shape {value.shape} and dtype {value.dtype}, "
                                 f"the model expects {target.data.shape} {target.data.dtype}")
            np.copyto(target.data, value)

    def feed(self) -> dict:
        """{leaf: array} for every parameter and buffer (the values ``sd.evaluate`` needs)."""
        self.name_leaves()
        return {state.leaf: state.data for _, state in self.named_states()}

    def config(self):
        """A JSON-able description that :func:`from_config` rebuilds (None for modules it cannot)."""
        try:
            return _config_of(self)
        except TypeError:
            return None

    def export_onnx(self, path, example_input_shape, **options):
        """Write this model's inference graph (eval mode, parameters as initializers) to ``path``
        as ONNX: :func:`symdiff.nn.onnx_export.export_module`, whose example runs it."""
        from .onnx_export import export_module

        return export_module(self, path, example_input_shape, **options)

    def extra_repr(self) -> str:
        _, args, kwargs = self.__dict__.get("_config", (type(self).__name__, (), {}))
        parts = [repr(a) for a in args if not isinstance(a, Module)]
        parts += [f"{k}={v!r}" for k, v in kwargs.items() if not isinstance(v, Module)]
        return ", ".join(parts)

    def __repr__(self):
        children = self.children()
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        inner = "\n".join("  " + line for c in children for line in repr(c).splitlines())
        return f"{type(self).__name__}(\n{inner}\n)"


def _config_of(value):
    if isinstance(value, Module):
        name, args, kwargs = value.__dict__.get("_config", (type(value).__name__, (), {}))
        if MODULES.get(name) is not type(value):
            raise TypeError(f"{name} is not a symdiff.nn module")
        return {"module": name, "args": [_config_of(a) for a in args],
                "kwargs": {k: _config_of(v) for k, v in kwargs.items()}}
    if isinstance(value, (list, tuple)):
        return {"list": [_config_of(v) for v in value]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"cannot describe {type(value).__name__}")


def from_config(config):
    """Rebuild a module from :meth:`Module.config` (only symdiff.nn's own classes).

    >>> from symdiff import nn
    >>> nn.from_config(nn.Sequential(nn.Linear(2, 3), nn.ReLU()).config())
    Sequential(
      Linear(2, 3)
      ReLU()
    )
    """
    if isinstance(config, dict) and "module" in config:
        if config["module"] not in MODULES:
            raise ValueError(f"unknown module {config['module']!r} in a model description")
        return MODULES[config["module"]](*[from_config(a) for a in config["args"]],
                                         **{k: from_config(v) for k, v in config["kwargs"].items()})
    if isinstance(config, dict) and "list" in config:
        return [from_config(v) for v in config["list"]]
    if isinstance(config, dict):
        raise TypeError(f"malformed model description: {sorted(config)}")
    return config
