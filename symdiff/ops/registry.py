"""The op registry: every op is declared once, as one :class:`Op` object.

An op bundles everything symdiff knows about it: how its output shape and dtype
follow from its inputs, how to evaluate it with numpy (the reference, which
symbolic mode also runs on object arrays of sympy expressions), what it costs
(FLOPs and bytes as sympy expressions in the dimensions), its properties (how it
prints, whether it is a view, commutative, which kernel lowers it) and its
JVP/VJP rules, registered beside its declaration with ``@op.defjvp`` and
``@op.defvjp``. Rules and properties live on the op object and are looked up
through it, never by a string; groups of ops ("all views", "all commutative
ops") are derived from the registry with :func:`ops_with`.

``OPS`` maps op names to ops (for tests and tools that walk the registry);
``FUNCTIONS`` maps public function names (``sd.exp``, ``sd.sum``, ...) to the
Python functions that build nodes: it is the namespace of the parser too.

>>> OPS["exp"].name, OPS["exp"].kind
('exp', 'elementwise')
>>> [op.name for op in ops_with(view=True)]
['broadcast_to', 'reshape', 'transpose', 'flip', 'getitem', 'stop_gradient', 'scan_part']
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import sympy

from .. import dtypes, shapes

OPS: dict[str, "Op"] = {}
FUNCTIONS: dict[str, Callable] = {}


@dataclasses.dataclass(frozen=True)
class Infix:
    """How the text printer writes a binary op between its operands: ``a + b``.

    ``precedence`` is one of the levels below; ``assoc`` is "left", "right" or "none"."""

    symbol: str
    precedence: int
    assoc: str = "left"


# How tightly each printed construct binds, loosest first: the one precedence ladder of every
# printer (symdiff.printing). An Infix names COMPARISON, SUM, PRODUCT or POWER; ⊙ binds looser
# than a product, so (A ⊙ B)·C keeps its parentheses, and unary minus looser than ** : (-x)**2.
COMPARISON, SUM, HADAMARD, PRODUCT, UNARY, POWER, POSTFIX, ATOM = range(1, 9)


NO_DEFAULT = object()


@dataclasses.dataclass(frozen=True)
class Shown:
    """An attribute the text printer shows in ``op(inputs, ...)``: ``name=value``, or the value
    alone when ``positional``; left out where it equals ``default`` (a value, or a function of
    the node giving it; ``NO_DEFAULT`` shows it always)."""

    name: str
    positional: bool = False
    default: Any = NO_DEFAULT

    def is_default(self, node) -> bool:
        if self.default is NO_DEFAULT:
            return False
        want = self.default(node) if callable(self.default) else self.default
        return node.attr(self.name) == want


class Op:
    """One primitive operation. Instances are registered in ``OPS`` by name.

    Properties (all keyword arguments, declared where the op is):

    - ``kernel``: the kind of kernel that lowers it ("gemm", "reduce", "softmax", ...), None for
      an op lowered as a loop of its own or not materialized at all;
    - ``view``: it only reinterprets its input's buffer (numpy makes a view): no copy, no memory;
    - ``fuses_inputs``: it reads an elementwise input inside its own loops, so a producer with
      this one consumer fuses into it instead of being materialized;
    - ``index_function``: its value is a function of the indices alone (no buffer to read);
    - ``has_identity``: a reduction over no elements has a value (False for max, argmax);
    - ``commutative``: ``op(a, b) == op(b, a)`` (the rewrites sort its arguments);
    - ``implicit``: printed as its input, as numpy leaves broadcasting implicit;
    - ``infix``: an :class:`Infix` for binary ops the text printer writes between operands;
    - ``print_attrs``: the attributes the text printer shows, as :class:`Shown` entries;
    - ``pretty_attrs``: the Unicode and LaTeX printers show them too (``conv2d(X, W, stride=2)``),
      where they change what the call means;
    - ``symbolic``: symbolic mode runs ``evaluate`` on object arrays of sympy expressions
      (False: it cannot); ``@op.defsymbolic`` registers a sympy-specific rule instead.
      Elementwise ops scalarize through their scalar form and need neither.
    """

    kind = "structural"

    def __init__(
        self,
        name: str,
        *,
        infer: Callable,
        evaluate: Callable,
        flops: Callable | None = None,
        differentiable: bool = True,
        doc: str = "",
        kernel: str | None = None,
        view: bool = False,
        fuses_inputs: bool = False,
        index_function: bool = False,
        has_identity: bool = True,
        commutative: bool = False,
        implicit: bool = False,
        infix: Infix | None = None,
        print_attrs: tuple = (),
        pretty_attrs: bool = False,
        symbolic: bool = True,
    ):
        if name in OPS:
            raise ValueError(f"op {name!r} is declared twice")
        self.name = name
        self._infer = infer
        self.evaluate = evaluate  # (values, attrs, out_shape, dim bindings) -> ndarray
        self._flops = flops
        self.differentiable = differentiable
        self.doc = doc
        self.kernel = kernel
        self.view = view
        self.fuses_inputs = fuses_inputs
        self.index_function = index_function
        self.has_identity = has_identity
        self.commutative = commutative
        self.implicit = implicit
        self.infix = infix
        self.print_attrs = tuple(Shown(a) if isinstance(a, str) else a for a in print_attrs)
        self.pretty_attrs = pretty_attrs
        # (values, attrs, out_shape, bindings) -> object array, or None where symbolic mode cannot
        self.symbolic = evaluate if symbolic else None
        self.jvp = None  # (node, tangents, nb) -> tangent of the output; set by @op.defjvp
        self.vjp = None  # (node, cotangent, nb, needed) -> cotangents of the inputs; @op.defvjp
        OPS[name] = self

    def __repr__(self):
        return f"<op {self.name}>"

    def defjvp(self, rule: Callable) -> Callable:
        """Register ``rule(node, tangents, nb)`` as this op's forward-mode rule (a decorator)."""
        self.jvp = rule
        return rule

    def defvjp(self, rule: Callable) -> Callable:
        """Register ``rule(node, ct, nb, needed=None)`` as this op's reverse-mode rule (a decorator)."""
        self.vjp = rule
        return rule

    def defsymbolic(self, rule: Callable) -> Callable:
        """Register ``rule(values, attrs, out_shape, bindings)``, this op on object arrays of sympy
        expressions, where running ``evaluate`` on them would not do (max, logsumexp, softmax)."""
        self.symbolic = rule
        return rule

    def infer(self, inputs, attrs) -> tuple:
        """(shape, dtype) of the node ``self(*inputs, **attrs)``; raises on bad input."""
        return self._infer(inputs, attrs)

    def flops(self, node):
        """Floating-point operations of one evaluation of ``node`` (sympy in the dims)."""
        if self._flops is None:
            return sympy.Integer(0)
        return sympy.sympify(self._flops(node))

    def bytes(self, node):
        """Bytes read and written by one evaluation of ``node`` (no caching assumed)."""
        total = shapes.numel(node.shape) * dtypes.itemsize(node.dtype)
        for i in node.inputs:
            total = total + shapes.numel(i.shape) * dtypes.itemsize(i.dtype)
        return sympy.sympify(total)


def ops_with(**properties) -> tuple:
    """The registered ops whose properties have these values, in declaration order: the groups
    of ops ("all views") derived from the registry rather than kept as lists of names.

    >>> import symdiff as sd
    >>> [op.name for op in ops_with(commutative=True)]
    ['add', 'multiply', 'maximum', 'minimum', 'equal', 'not_equal']
    """
    return tuple(op for op in OPS.values()
                 if all(getattr(op, k) == v for k, v in properties.items()))


def function(fn=None, *, name: str | None = None):
    """Register a public function under ``name`` (default: its own name, trailing _ dropped)."""

    def register(f):
        key = name or f.__name__.rstrip("_")
        if key in FUNCTIONS:
            raise ValueError(f"function {key!r} is registered twice")
        FUNCTIONS[key] = f
        return f

    return register(fn) if fn is not None else register
