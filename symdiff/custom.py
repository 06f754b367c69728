"""User-defined ops: ``sd.elementwise`` from a sympy scalar form, ``sd.custom_vjp`` with a hand-written rule.

``sd.elementwise(name, form)`` declares an elementwise op exactly as the built-in ones are
declared (symdiff.ops.elementwise): derivatives from ``sympy.diff``, C kernels from sympy's
printer, printing by name. ``sd.custom_vjp(fn, vjp)`` is JAX's ``custom_vjp``: the forward is
``fn``'s own graph, marked by an identity node (``custom_vjp_call``, an elementwise identity, so
lowering needs no new kernel) whose reverse rule is ``vjp(inputs, output, cotangent)``. Forward
mode (and symbolic mode) differentiate ``fn``'s own graph; ``sd.check_grads`` compares the two.

>>> import sympy, symdiff as sd
>>> t = sympy.Symbol("t", real=True)
>>> softsign = sd.elementwise("softsign", t / (1 + sympy.Abs(t)))
>>> x = sd.symbols("x")
>>> print(softsign(x), sd.grad(softsign(x), x) is not None)
softsign(x) True
>>> float(sd.evaluate(softsign(x), {x: 1.0}))
0.5
"""

from __future__ import annotations

import keyword
import re

import numpy as np
import sympy

from .node import Node, as_node, make
from .ops.elementwise import ElementwiseOp, _public, x
from .ops.movement import stack
from .ops.registry import FUNCTIONS, OPS, function

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_C_RESERVED = {"int", "float", "double", "char", "long", "short", "void", "auto", "const", "static", "return",
               "if", "else", "for", "while", "do", "switch", "case", "break", "continue", "struct", "union",
               "enum", "sizeof", "typedef", "goto", "default", "extern", "register", "signed", "unsigned",
               "volatile", "inline", "restrict", "bool", "true", "false", "class", "namespace", "template",
               "new", "delete", "this", "operator", "private", "public", "protected", "virtual", "main"}


def _scalar_form(name, form):
    if callable(form) and not isinstance(form, sympy.Basic):
        form = form(x)
    form = sympy.sympify(form)
    symbols = sorted(form.free_symbols, key=lambda s: s.name)
    if len(symbols) != 1:
        raise ValueError(f"elementwise {name!r}: the form must be a function of one symbol, got {form} "
                         f"(symbols: {[s.name for s in symbols]})")
    return form.xreplace({symbols[0]: x})


@function
def elementwise(name: str, form):
    """Register an elementwise op ``name`` from a sympy scalar form (an expression in one symbol,
    or a function of a sympy symbol); return the function that builds its nodes (also ``sd.parse``-able).

    Re-declaring a name with the same form returns the same op; a different form, or the name
    of an existing op or function, is a ValueError.
    """
    if not isinstance(name, str) or not _NAME.match(name) or keyword.iskeyword(name) or name in _C_RESERVED:
        raise ValueError(f"elementwise: {name!r} is not a safe op name (letters, digits and _, starting with "
                         "a letter; not a Python or C++ keyword)")
    scalar = _scalar_form(name, form)
    existing = OPS.get(name)
    if existing is not None:
        if getattr(existing, "user_defined", False) and existing.scalar == scalar:
            return FUNCTIONS[name]
        raise ValueError(f"elementwise: {name!r} is already an op"
                         + (f" with form {existing.scalar}, not {scalar}" if getattr(existing, "user_defined", False)
                            else " of symdiff"))
    if name in FUNCTIONS:
        raise ValueError(f"elementwise: {name!r} is already a symdiff function")
    fn = sympy.lambdify(x, scalar, "numpy")

    def numpy_fn(a):
        return np.asarray(fn(a), dtype=a.dtype) * np.ones_like(a)

    op = ElementwiseOp(name, scalar, numpy_fn, compute="float",
                       doc=f"user-defined elementwise op {name}(x) = {scalar}")
    op.user_defined = True
    from .onnx import rules as onnx_rules  # core to core: no ONNX package needed

    onnx_rules.NOT_EXPORTABLE.setdefault(op, onnx_rules.USER_DEFINED_REASON)
    build = _public(op)
    function(build, name=name)
    return build


# -- custom_vjp ------------------------------------------------------------------------------
class CustomRule:
    """``fn``'s hand-written reverse rule: ``vjp(inputs, output, cotangent) -> input cotangents``."""

    def __init__(self, fn, vjp):
        self.fn, self.vjp = fn, vjp
        self.name = getattr(fn, "__name__", "custom")

    def __repr__(self):  # stable text: the compile fingerprint prints attributes
        return f"CustomRule({self.name})"


_marker = ElementwiseOp("custom_vjp_call", x, lambda a: a.copy(), implicit=True,
                        doc="its input; its reverse rule is the custom_vjp's hand-written one")


def _targets(node):
    rule = node.attr("rule")
    return node.inputs if rule is None else node.attr("primals")


def _marker_vjp(node, ct, nb, needed=None):
    rule = node.attr("rule")
    if rule is None:
        return [ct]
    primals = node.attr("primals")
    if nb:
        lead = ct.shape[:nb]
        if not all(isinstance(d, int) for d in lead):
            raise TypeError(f"custom_vjp {rule.name}: a batched cotangent with symbolic size {lead}; "
                            "use forward mode (sd.jacobian(..., mode='forward'))")
        flat = ct.reshape((int(np.prod(lead)),) + node.shape)
        parts = [_call(rule, primals, node, flat[i]) for i in range(flat.shape[0])]
        return [stack([p[k] for p in parts]).reshape(lead + primals[k].shape) for k in range(len(primals))]
    return _call(rule, primals, node, ct)


def _call(rule, primals, out, ct):
    result = rule.vjp(list(primals), out, ct)
    result = list(result) if isinstance(result, (list, tuple)) else [result]
    if len(result) != len(primals):
        raise ValueError(f"custom_vjp {rule.name}: vjp returned {len(result)} cotangents for {len(primals)} inputs")
    checked = []
    for k, (c, p) in enumerate(zip(result, primals)):
        c = as_node(c, like=p)
        if c.shape != p.shape:
            if c.shape == () and c.is_constant:  # a number (0): the same for every element
                c = c + p * 0
            else:
                raise ValueError(f"custom_vjp {rule.name}: the cotangent of input {k} has shape {c.shape}, "
                                 f"the input {p.shape}")
        checked.append(c)
    return checked


_marker.vjp = _marker_vjp
_marker.vjp_targets = _targets
function(lambda a: make(_marker, (as_node(a),), rule=None, primals=()), name="custom_vjp_call")


@function
def custom_vjp(fn, vjp):
    """``fn`` (inputs -> one expression) with the reverse rule ``vjp(inputs, output, cotangent)``,
    which returns one cotangent expression per input (like ``jax.custom_vjp``). Forward mode is
    derived from ``fn``'s own graph; compiled, the forward is ``fn``'s graph and the backward the
    rule's, so no kernel is new.

    >>> import symdiff as sd
    >>> x = sd.tensor("x", (3,))
    >>> square = sd.custom_vjp(lambda a: a * a, lambda ins, out, ct: [2 * ins[0] * ct])
    >>> g = sd.grad(sd.sum(square(x)), x)
    >>> sd.evaluate(g, {x: [1.0, 2.0, 3.0]}).tolist()
    [2.0, 4.0, 6.0]
    """
    if not callable(fn) or not callable(vjp):
        raise TypeError("custom_vjp(fn, vjp): both must be callables")
    rule = CustomRule(fn, vjp)

    def call(*args):
        primals = tuple(as_node(a) for a in args)
        out = as_node(fn(*primals))
        if not isinstance(out, Node):
            raise TypeError(f"custom_vjp {rule.name}: fn must return one expression")
        return make(_marker, (out,), rule=rule, primals=primals)

    call.__name__ = rule.name
    return call
