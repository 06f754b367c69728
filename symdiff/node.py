"""The one node type of symdiff graphs, hash-consed.

A :class:`Node` is ``(op, inputs, attributes)`` with a shape and a dtype. Nodes
are immutable and built only through :func:`make`, which returns the existing
node when the same ``(op, inputs, attributes)`` was built before: identical
subexpressions are one object, so common subexpressions are shared by
construction.

This module is the bottom of the core: it imports only :mod:`~symdiff.dtypes`,
:mod:`~symdiff.shapes` and the two source ops (:mod:`symdiff.ops.sources`: leaves and
constants). Every op family imports it to build its nodes, so it can import none of them;
what makes a node an expression in Python (``x + y``, ``X.T``, ``X[1:]``, ``X.sum()``,
``print(X)``) needs the families and the printers, and is defined above them all, in
:mod:`symdiff.expr`, which installs those methods on :class:`Node` when ``symdiff`` is
imported.

>>> import symdiff as sd
>>> x, y = sd.symbols("x y")
>>> (x * y) is (x * y)
True
>>> sd.tensor("X", (2, 3)) is sd.tensor("X", (2, 3))
True
"""

from __future__ import annotations

import keyword
import numbers
import weakref

import numpy as np
import sympy

from . import dtypes, shapes
from .ops import sources
from .ops.registry import Op

_interned: "weakref.WeakValueDictionary[tuple, Node]" = weakref.WeakValueDictionary()


class Node:
    """An immutable, hash-consed graph node. Users see it as an expression (``Expr``)."""

    # _structure_key: symdiff.rewrite.structure_key memoized on the node, so the memo dies with it
    __slots__ = ("op", "inputs", "_attrs", "shape", "dtype", "_structure_key", "__weakref__")
    __array_ufunc__ = None  # make numpy defer to our reflected operators

    op: Op
    inputs: tuple
    shape: tuple
    dtype: str

    def __init__(self):
        raise TypeError("build expressions with sd.symbols, sd.tensor and sd.* functions")

    # -- identity ---------------------------------------------------------------------------
    __hash__ = object.__hash__

    def __bool__(self):
        raise TypeError(
            "an expression has no truth value; compare numbers with sd.evaluate(...) "
            "or build a comparison node with sd.less/sd.equal"
        )

    def __reduce__(self):
        raise TypeError("symdiff expressions are not picklable; rebuild them from source")

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self

    # -- introspection ----------------------------------------------------------------------
    @property
    def attrs(self) -> dict:
        return dict(self._attrs)

    def attr(self, key, default=None):
        for k, v in self._attrs:
            if k == key:
                return v
        return default

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self):
        return shapes.numel(self.shape)

    @property
    def is_leaf(self) -> bool:
        return self.op.name == "leaf"

    @property
    def is_constant(self) -> bool:
        return self.op.name == "constant"

    @property
    def name(self):
        """A leaf's name (``None`` for other nodes)."""
        return self.attr("name")

    # operators (x + y, X.T, X[1:], X.sum()) and printing: installed by symdiff.expr


Expr = Node


def _freeze(value):
    """Make an attribute value hashable and canonical."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def make(op, inputs, **attrs) -> Node:
    """Return the node ``op(*inputs, **attrs)``, building it only if it does not exist.

    The op's shape and dtype rules run (and may raise) before anything is created.
    """
    inputs = tuple(inputs)
    frozen = tuple(sorted((k, _freeze(v)) for k, v in attrs.items()))
    key = (op.name, tuple(id(i) for i in inputs), _attr_key(frozen))
    node = _interned.get(key)
    if node is not None:
        return node
    shape, dtype = op.infer(inputs, dict(frozen))
    node = object.__new__(Node)
    object.__setattr__(node, "op", op)
    object.__setattr__(node, "inputs", inputs)
    object.__setattr__(node, "_attrs", frozen)
    object.__setattr__(node, "shape", tuple(shape))
    object.__setattr__(node, "dtype", dtype)
    _interned[key] = node
    return node


def _attr_key(frozen):
    # arrays are keyed by content; everything else is already hashable
    return tuple(
        (k, ("ndarray", v.dtype.str, v.shape, v.tobytes())) if isinstance(v, np.ndarray) else (k, v)
        for k, v in frozen
    )


def _setattr_blocked(self, name, value):
    raise AttributeError("symdiff expressions are immutable")


Node.__setattr__ = _setattr_blocked
Node.__delattr__ = _setattr_blocked


# -- leaves and constants -----------------------------------------------------------------


def check_name(name) -> str:
    """A leaf name must be a plain identifier: it is printed, parsed and kept out of C++."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"symbol name {name!r} is not a valid identifier")
    if keyword.iskeyword(name) or name.startswith("__"):
        raise ValueError(f"symbol name {name!r} is reserved")
    return name


def tensor(name: str, shape=(), dtype: str = "float64") -> Node:
    """A named input tensor (a leaf). Dimensions may be ints or symbol names.

    >>> import symdiff as sd
    >>> X = sd.tensor("X", ("m", "n"))
    >>> X.shape, X.dtype
    ((m, n), 'float64')
    """
    return make(
        sources.leaf, (), name=check_name(name), shape=shapes.shape(shape), dtype=dtypes.check_dtype(dtype)
    )


def symbols(names: str, dtype: str = "float64"):
    """Scalar symbols, named as in sympy: one name gives one symbol, several a tuple.

    >>> import symdiff as sd
    >>> x, y = sd.symbols("x y")
    >>> sd.symbols("x") is x
    True
    """
    parts = [p for p in names.replace(",", " ").split() if p]
    if not parts:
        raise ValueError("symbols() needs at least one name")
    made = tuple(tensor(p, (), dtype) for p in parts)
    return made[0] if len(parts) == 1 and "," not in names else made


def constant(value, dtype: str | None = None) -> Node:
    """A constant: a number, an array, or a sympy expression in dimensions (``m``).

    >>> import symdiff as sd
    >>> sd.constant(2.0).dtype
    'float64'
    """
    if isinstance(value, Node):
        raise TypeError("constant() takes a number or an array, not an expression")
    if isinstance(value, sympy.Basic):
        value = sympy.sympify(value)
        if value.is_Number:
            value = int(value) if value.is_Integer else float(value)
        else:
            bad = [s for s in value.free_symbols if not (s.is_integer and s.is_positive)]
            if bad:
                raise ValueError(f"constant {value} uses symbols that are not dimensions: {bad}")
            return make(sources.constant, (), value=value, shape=(), dtype=dtypes.check_dtype(dtype or "float64"))
    if isinstance(value, (bool, np.bool_)):
        return make(sources.constant, (), value=bool(value), shape=(), dtype=dtype and dtypes.check_dtype(dtype) or "bool")
    if isinstance(value, numbers.Integral):
        d = dtypes.check_dtype(dtype or "int64")
        return make(sources.constant, (), value=_cast_scalar(int(value), d), shape=(), dtype=d)
    if isinstance(value, numbers.Real):
        d = dtypes.check_dtype(dtype or "float64")
        return make(sources.constant, (), value=_cast_scalar(float(value), d), shape=(), dtype=d)
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"constant() cannot hold values of dtype {array.dtype}")
    d = dtypes.check_dtype(dtype or (array.dtype if array.dtype.kind != "u" else "int64"))
    if array.ndim == 0:
        return constant(array.item(), d)
    if array.dtype.kind == "u" and d == "int64" and array.size and int(array.max()) > INT64_MAX:
        raise OverflowError(f"constant {int(array.max())} does not fit int64 (from -2**63 to 2**63 - 1)")
    array = np.ascontiguousarray(array, dtype=d)
    array.setflags(write=False)
    return make(sources.constant, (), value=array, shape=array.shape, dtype=d)


INT64_MIN, INT64_MAX = -2**63, 2**63 - 1


def _cast_scalar(value, dtype):
    if dtype == "bool":
        return bool(value)
    if dtype == "int64":
        if isinstance(value, float) and not value.is_integer():
            raise TypeError(f"constant {value} does not fit dtype int64")
        if not INT64_MIN <= value <= INT64_MAX:  # compared exactly: float(2**63 - 1) is 2**63
            raise OverflowError(f"constant {_digits(value)} does not fit int64 (from -2**63 to 2**63 - 1)")
        return int(value)
    try:
        return float(np.float32(value)) if dtype == "float32" else float(value)
    except OverflowError:
        raise OverflowError(f"constant {_digits(value)} does not fit {dtype}") from None


def _digits(value):
    return f"with {len(str(abs(value)))} digits" if isinstance(value, int) and value.bit_length() > 200 else value


def as_node(value, like: Node | None = None) -> Node:
    """Turn a Python number into a constant; numbers are *weak*: they take ``like``'s dtype.

    >>> import symdiff as sd
    >>> x = sd.tensor("x", (), "float32")
    >>> as_node(2.0, like=x).dtype
    'float32'
    """
    if isinstance(value, Node):
        return value
    if isinstance(value, (bool, np.bool_)):
        return constant(bool(value))
    if isinstance(value, (numbers.Real, np.number)) and not isinstance(value, np.ndarray):
        kind = like.dtype if like is not None else None
        if isinstance(value, numbers.Integral):
            if kind in ("int64", "float32", "float64"):
                return constant(int(value), kind)
            return constant(int(value), "int64")
        if kind in dtypes.FLOAT_DTYPES:
            return constant(float(value), kind)
        return constant(float(value), "float64")
    if isinstance(value, sympy.Basic):
        kind = like.dtype if like is not None and dtypes.is_float(like.dtype) else "float64"
        return constant(value, kind)
    if isinstance(value, (np.ndarray, list, tuple)):
        return constant(value)
    raise TypeError(f"cannot use {type(value).__name__} {value!r} in a symdiff expression")
