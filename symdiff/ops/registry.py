"""The op registry: every op is declared once, as one :class:`Op` object.

An op bundles everything symdiff knows about it: how its output shape and dtype
follow from its inputs, how to evaluate it with numpy (the reference), what it
costs (FLOPs and bytes as sympy expressions in the dimensions), and — filled in
by the differentiation and lowering layers — its JVP/VJP rules and lowering.
Rules are looked up by the op object, never by a string.

``OPS`` maps op names to ops (for tests and tools that walk the registry);
``FUNCTIONS`` maps public function names (``sd.exp``, ``sd.sum``, ...) to the
Python functions that build nodes: it is the namespace of the parser too.

>>> OPS["exp"].name, OPS["exp"].kind
('exp', 'elementwise')
"""

from __future__ import annotations

from typing import Callable

import sympy

from .. import dtypes, shapes

OPS: dict[str, "Op"] = {}
FUNCTIONS: dict[str, Callable] = {}


class Op:
    """One primitive operation. Instances are registered in ``OPS`` by name."""

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
    ):
        if name in OPS:
            raise ValueError(f"op {name!r} is declared twice")
        self.name = name
        self._infer = infer
        self.evaluate = evaluate  # (values, attrs, out_shape, dim bindings) -> ndarray
        self._flops = flops
        self.differentiable = differentiable
        self.doc = doc
        # filled in by later layers (differentiation, lowering)
        self.jvp = None
        self.vjp = None
        self.lower = None
        OPS[name] = self

    def __repr__(self):
        return f"<op {self.name}>"

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


def function(fn=None, *, name: str | None = None):
    """Register a public function under ``name`` (default: its own name, trailing _ dropped)."""

    def register(f):
        key = name or f.__name__.rstrip("_")
        if key in FUNCTIONS:
            raise ValueError(f"function {key!r} is registered twice")
        FUNCTIONS[key] = f
        return f

    return register(fn) if fn is not None else register
