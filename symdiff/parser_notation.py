"""What the matrix notation of ``sd.pretty`` means, for :mod:`symdiff.parser` to read it back.

The printer (:mod:`symdiff.printing.notation`) writes vectors as columns, ``·`` for matrix
products (and for a scalar factor), ``ᵀ`` for a transpose, ``I`` for an identity whose size its
neighbour gives, ``onehot(y)`` without its number of classes and ``v·1ᵀ`` for a column spread
along rows. The functions here build the graph those forms stand for; an identity, a one-hot or a
row of ones whose size is not written yet is a :class:`Pending` until an operand next to it says
it (``I·A`` takes A's rows; ``softmax(Z) − onehot(y)`` takes the softmax's columns).

>>> import symdiff as sd
>>> a, b = sd.tensor("a", (3,)), sd.tensor("b", (4,))
>>> product(a, transposed(b)).shape
(3, 4)
>>> pending = identity_pending()
>>> product(pending, sd.tensor("A", (2, 5))).shape
(2, 5)
"""

from __future__ import annotations

import inspect

from . import shapes
from .node import Node, constant, make
from .ops.registry import FUNCTIONS, OPS

SUBSCRIPT_DIGITS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")
SUPERSCRIPT_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
SUBSCRIPT_LETTERS = dict(zip("ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ", "aehijklmnoprstuvx"))
MAX_PENDING_STEPS = 200  # operations on a size-less I before its size is known (each one a closure)
# function names as the printer writes them -> the registered function they call
ALIASES = {"σ": "sigmoid", "tr": "trace", "CE": "softmax_cross_entropy", "onehot": "one_hot"}


class NotationError(ValueError):
    """A form that reads but cannot be built; the parser adds the position."""


class Pending:
    """An identity, one-hot or row of ones whose size its neighbours give.

    ``cols(k)`` builds it with k columns, ``rows(k)`` with k rows (None where the rows do not
    fix it: a one-hot's rows are its labels)."""

    def __init__(self, what, cols, rows=None, steps=0):
        if steps > MAX_PENDING_STEPS:
            raise NotationError(f"more than {MAX_PENDING_STEPS} operations on {what} before its size is known")
        self.what, self.cols, self.rows, self.steps = what, cols, rows, steps

    def map(self, fn):
        """This pending value with ``fn`` applied once it is built."""
        cols, rows = self.cols, self.rows
        return Pending(self.what, lambda k: fn(cols(k)), None if rows is None else (lambda k: fn(rows(k))),
                       self.steps + 1)

    def transposed(self):
        cols, rows = self.cols, self.rows
        return Pending(self.what, (lambda k: transposed(rows(k))) if rows is not None else (lambda k: transposed(cols(k))),
                       lambda k: transposed(cols(k)), self.steps + 1)

    def unresolved(self):
        return NotationError(f"the size of {self.what} is not given by what is next to it; write it "
                             "out (I₃, Iₙ, onehot(y, k))")


def identity_pending():
    build = FUNCTIONS["eye"]
    return Pending("I", build, build)


def one_hot_pending(labels):
    return Pending(f"onehot({getattr(labels, 'name', '…')})", lambda k: FUNCTIONS["one_hot"](labels, k))


def ones_row_pending():
    return Pending("1ᵀ", lambda k: FUNCTIONS["broadcast_to"](constant(1.0), (1, k)))


def _is_scalar(value):
    return not isinstance(value, Node) or shapes.numel(value.shape) == 1


def product(a, b):
    """``a·b``: a product with a scalar factor multiplies; otherwise a matrix product, where a
    vector on the left of a row is a column (a·bᵀ is the outer product)."""
    if isinstance(a, Pending) and isinstance(b, Pending):
        raise NotationError(f"the sizes of {a.what} and {b.what} are not given by what is next to them")
    if isinstance(a, Pending):
        if isinstance(b, Node) and b.ndim >= 1 and not _is_scalar(b):
            return product(a.cols(b.shape[-2] if b.ndim >= 2 else b.shape[0]), b)
        return a.map(lambda built: product(built, b))
    if isinstance(b, Pending):
        if isinstance(a, Node) and a.ndim >= 1 and not _is_scalar(a) and b.rows is not None:
            return product(a, b.rows(a.shape[-1]))
        return b.map(lambda built: product(a, built))
    if _is_scalar(a) or _is_scalar(b):
        return a * b
    if a.ndim == 2 and a.shape[0] == 1 and a.op.name == "reshape" and a.inputs[0].ndim == 1:
        a = a.inputs[0]  # vᵀ·M is numpy's v·M: a vector again, as the printer writes it
    if a.ndim == 1 and b.ndim == 2 and b.shape[0] == 1:
        a = FUNCTIONS["reshape"](a, (a.shape[0], 1))
    return FUNCTIONS["matmul"](a, b)


def elementwise(fn, a, b):
    """``fn(a, b)`` for an elementwise binary op: a pending operand takes the other's columns."""
    if isinstance(a, Pending) and isinstance(b, Pending):
        raise NotationError(f"the sizes of {a.what} and {b.what} are not given by what is next to them")
    for pending, other, first in ((a, b, True), (b, a, False)):
        if isinstance(pending, Pending):
            if isinstance(other, Node) and other.ndim >= 1:
                built = pending.cols(other.shape[-1])
                return fn(built, other) if first else fn(other, built)
            return pending.map(lambda built, o=other, f=first: fn(built, o) if f else fn(o, built))
    return fn(a, b)


def transposed(a):
    """``aᵀ``: the last two axes swapped; a vector's is the row (1, n), a scalar's itself."""
    if isinstance(a, Pending):
        return a.transposed()
    if not isinstance(a, Node) or a.ndim == 0:
        return a
    if a.ndim == 1:
        return FUNCTIONS["reshape"](a, (1, a.shape[0]))
    axes = tuple(range(a.ndim - 2)) + (a.ndim - 1, a.ndim - 2)
    return FUNCTIONS["transpose"](a, axes)


def inverse(a, transpose=False):
    """``A⁻¹`` (``A⁻ᵀ``) of a square matrix: sd.inv, the notation of symdiff.printing.linalg_notation."""
    if "inv" not in FUNCTIONS:
        raise NotationError("A⁻¹ of a matrix needs sd.inv, which this build does not have")
    result = FUNCTIONS["inv"](a)
    return transposed(result) if transpose else result


def diag(v):
    """``diag(v)``: the diagonal matrix of a vector, of each row of a batch of vectors (the
    printer writes sd.diag_embed as diag(v), and the diagonal of a matrix as diagonal(A))."""
    if not isinstance(v, Node) or v.ndim == 0:  # diag(1): a constant vector printed as its value
        return identity_pending().map(lambda eye: eye * v)
    for name in ("diag_embed", "diag"):
        if name in FUNCTIONS:
            return FUNCTIONS[name](v)
    if not isinstance(v, Node) or v.ndim != 1:
        raise NotationError(f"diag(v) takes a vector, got shape {getattr(v, 'shape', ())}")
    return FUNCTIONS["eye"](v.shape[0]) * v


def norm(x, frobenius=False):
    """``‖x‖`` (``‖X‖_F``): sd.norm where it exists, else √Σ(x ⊙ x)."""
    if "norm" in FUNCTIONS:
        return FUNCTIONS["norm"](x)
    return FUNCTIONS["sqrt"](FUNCTIONS["sum"](x * x))


def summed(x, axes):
    """``Σ(x)`` over everything, ``Σ₀,₁(x)`` over the axes written below."""
    return FUNCTIONS["sum"](x) if axes is None else FUNCTIONS["sum"](x, axis=axes)


def indicator(condition):
    """``1[c]``: a boolean used as a number."""
    if not isinstance(condition, Node) or condition.dtype != "bool":
        raise NotationError("1[…] holds a comparison (a boolean)")
    return FUNCTIONS["astype"](condition, "float64")


def check_shape(value, dims, dim_of):
    """The shape a line declares (``∈ ℝ^(m×n)``) against the shape of what it computes."""
    want = tuple(dim_of(d) for d in dims)
    got = tuple(value.shape) if isinstance(value, Node) else ()
    if got != want:
        raise NotationError(f"the formula's shape is {shapes.format_shape(got)}, the line says "
                            f"{shapes.format_shape(want)}")


def internal_op(name, args, kwargs):
    """An op without a public function that prints as a call, ``max_pool2d_scatter(Z, C,
    kernel_size=2, stride=2)``: the op ``<function>_<role>`` takes its attributes as the public
    ``<function>`` normalizes them (kernel_size=2 is (2, 2)), from the same keywords; None where
    ``name`` is no such op."""
    if not is_internal(name) or not args:
        return None
    op, public = OPS[name], name.rsplit("_", 1)[0]
    accepted = inspect.signature(FUNCTIONS[public]).parameters
    try:
        sibling = FUNCTIONS[public](args[0], **{k: v for k, v in kwargs.items() if k in accepted})
        attrs = {shown.name: sibling.attr(shown.name) for shown in op.print_attrs if shown.name in accepted}
        pairs = any(isinstance(a, tuple) and len(a) == 2 for a in attrs.values())
        for shown in op.print_attrs:  # its own attributes, a pair printed as one number (size=4)
            if shown.name not in accepted and shown.name in kwargs:
                value = kwargs[shown.name]
                attrs[shown.name] = (value, value) if pairs and isinstance(value, int) else value
    except (TypeError, KeyError) as problem:
        raise NotationError(f"bad arguments to {name}: {problem}") from None
    return make(op, tuple(args), **attrs)


def is_internal(name) -> bool:
    """Whether ``name`` is an op of that kind: no function of its own, one of the op catalogue
    (never a transformation such as scan) before its last ``_``, attributes it prints."""
    op, public = OPS.get(name), name.rsplit("_", 1)[0]
    return (op is not None and name not in FUNCTIONS and bool(op.print_attrs)
            and FUNCTIONS.get(public) is not None and FUNCTIONS[public].__module__.startswith(f"{__package__}.ops."))
