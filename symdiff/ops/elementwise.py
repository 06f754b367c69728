"""Elementwise ops, each declared by its sympy scalar form.

The scalar form is the single source of truth: derivatives come from
``sympy.diff`` of it (unless a better form through the op's own output is
declared), the cost from its operation count, and kernels from sympy's C
printer. The numpy function is the reference evaluation; a test checks it
against the scalar form.

Building an elementwise node inserts explicit ``astype`` and ``broadcast_to``
nodes, so every elementwise node's inputs share one shape and dtype:

>>> import symdiff as sd
>>> X = sd.tensor("X", ("m", 3))
>>> (X + 1.0).inputs[1].op.name
'broadcast_to'
"""

from __future__ import annotations

import functools
import math

import numpy as np
import sympy
from sympy.codegen.cfunctions import log1p as _sym_log1p

from .. import dtypes, shapes
from ..node import Node, as_node, constant, make
from . import registry, sympy_functions
from .movement import broadcast_to, stop_gradient  # above movement: apply makes broadcasting explicit
from .registry import OPS, Infix, Op, Shown, function

x, y = sympy.symbols("x y", real=True)
c = sympy.Symbol("c")  # a boolean condition


class ElementwiseOp(Op):
    """An op applied element by element; ``scalar`` is its sympy form in ``params``.

    ``derivatives`` overrides ``sympy.diff`` of the scalar form where a form through the op's
    own output ``out`` (or a convention at a kink) is better: per param, a sympy expression in
    the params and ``out``, or a function of (input nodes..., out node). ``stable`` is a scalar
    form that does not overflow where the op does not (what kernels compute). Symbolic mode
    scalarizes the family from the scalar form, so no per-op rule is needed there."""

    kind = "elementwise"

    def __init__(self, name, scalar, numpy_fn, *, params=(x,), result="same", compute="promote",
                 domain=None, differentiable=True, derivatives=None, stable=None, doc="", **properties):
        self.scalar = scalar
        self.params = params
        self.arity = len(params)
        self.result = result  # "same" or "bool": output dtype
        self.compute = compute  # how input dtypes combine: "promote", "float", "cast"
        self.numpy_fn = numpy_fn
        # per-argument sampling interval for tests (the op's domain)
        self.domain = domain or ((-2.0, 2.0),) * self.arity
        self.derivatives = derivatives
        self.stable = stable if stable is not None else scalar
        ops_per_element = max(1, int(sympy.count_ops(scalar))) if isinstance(scalar, sympy.Basic) else 1
        self.ops_per_element = ops_per_element
        super().__init__(name, infer=self._infer_elementwise, evaluate=self._evaluate_elementwise,
                         flops=lambda node: ops_per_element * shapes.numel(node.shape),
                         differentiable=differentiable, doc=doc, symbolic=False, **properties)
        # every elementwise op differentiates through its partials (astype declares its own)
        self.jvp, self.vjp = self._jvp_from_partials, self._vjp_from_partials

    def _jvp_from_partials(self, node, tangents, nb):
        return _elementwise_jvp(node, tangents, nb)

    def _vjp_from_partials(self, node, ct, nb, needed=None):
        return _elementwise_vjp(node, ct, nb, needed)

    def _infer_elementwise(self, inputs, attrs):
        if len(inputs) != self.arity:
            raise TypeError(f"{self.name} takes {self.arity} inputs, got {len(inputs)}")
        out_shape = inputs[0].shape
        for i in inputs[1:]:
            if len(i.shape) != len(out_shape) or not all(map(shapes.same_dim, i.shape, out_shape)):
                listed = " and ".join(shapes.format_shape(j.shape) for j in inputs)
                raise shapes.ShapeError(f"{self.name}: inputs must have one shape, got {listed}")
        if self.name == "astype":
            return out_shape, attrs["dtype"]
        data = inputs[1:] if self.name == "where" else inputs
        if self.name == "where" and inputs[0].dtype != "bool":
            raise TypeError(f"where: the condition must be bool, got {inputs[0].dtype}")
        dts = {i.dtype for i in data}
        if len(dts) != 1:
            raise TypeError(f"{self.name}: inputs must have one dtype, got {sorted(dts)}")
        dtype = dts.pop()
        if self.compute == "float" and not dtypes.is_float(dtype):
            raise TypeError(f"{self.name}: needs float inputs, got {dtype}")
        return out_shape, ("bool" if self.result == "bool" else dtype)

    def _evaluate_elementwise(self, values, attrs, out_shape, bindings):
        if self.name == "astype":
            return values[0].astype(attrs["dtype"])
        return self.numpy_fn(*values)


def elementwise(name, scalar, numpy_fn, **kw) -> ElementwiseOp:
    return ElementwiseOp(name, scalar, numpy_fn, **kw)


def apply(op: ElementwiseOp, *args) -> Node:
    """Build ``op(*args)`` with numpy promotion and broadcasting made explicit."""
    like = next((a for a in args if isinstance(a, Node)), None)
    if like is None:
        raise TypeError(f"{op.name}: at least one argument must be an expression")
    data_args = args[1:] if op.name == "where" else args
    data_like = next((a for a in data_args if isinstance(a, Node)), like)
    nodes = [as_node(a, like=data_like) for a in args]
    data = nodes[1:] if op.name == "where" else nodes
    common = dtypes.promote(*[n.dtype for n in data])
    if op.compute == "float":
        common = dtypes.to_float(common)
    elif op.compute == "promote" and common == "bool" and op.result != "bool":
        common = "int64"  # arithmetic on booleans counts
    data = [astype(n, common) for n in data]
    if op.name == "where":
        if nodes[0].dtype != "bool":
            raise TypeError(f"where: the condition must be bool, got {nodes[0].dtype}")
        nodes = [nodes[0], *data]
    else:
        nodes = data
    out_shape = shapes.broadcast_shapes(op.name, *[n.shape for n in nodes])
    nodes = [broadcast_to(n, out_shape) for n in nodes]
    return make(op, nodes)


# -- numpy references that need care -------------------------------------------------------


def _sigmoid(a):
    e = np.exp(-np.abs(a))
    return np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)


def _relu(a):
    return np.maximum(a, a.dtype.type(0))


def _softplus(a):
    return (np.maximum(a, a.dtype.type(0)) + np.log1p(np.exp(-np.abs(a)))).astype(a.dtype, copy=False)


def _erf(a):
    """numpy has no erf: math.erf per element (the reference; kernels call the C library's)."""
    if a.size == 0:
        return a.copy()
    return np.vectorize(math.erf, otypes=[a.dtype])(a)


def _erfc(a):
    if a.size == 0:
        return a.copy()
    return np.vectorize(math.erfc, otypes=[a.dtype])(a)


def _gelu(a):
    return (a * _erfc(-a / np.sqrt(a.dtype.type(2))) / 2).astype(a.dtype, copy=False)


def _power(a, b):
    if a.dtype.kind in "iu" and (b < 0).any():
        raise ValueError("power: integers to negative integer powers are not allowed")
    return np.power(a, b)


def _divide(a, b):
    return np.true_divide(a, b)


def _indicator(cond, like):
    return astype(cond, like.dtype)


def _power_dx(a, b, result):
    k = scalar_value(b)
    if k is not None:
        if k == 2:
            return a * 2
        return a ** (k - 1) * k
    return b * a ** (b - 1)


POSITIVE = (0.2, 3.0)
out = sympy.Symbol("out", real=True)  # the op's own output, in declared derivatives


def _compare(symbol):
    return Infix(f" {symbol} ", registry.COMPARISON, "none")


# -- the catalogue: one line per op --------------------------------------------------------
add = elementwise("add", x + y, np.add, params=(x, y), commutative=True, infix=Infix(" + ", registry.SUM))
subtract = elementwise("subtract", x - y, np.subtract, params=(x, y), infix=Infix(" - ", registry.SUM))
multiply = elementwise("multiply", x * y, np.multiply, params=(x, y), commutative=True,
                       infix=Infix("*", registry.PRODUCT))
divide = elementwise("divide", x / y, _divide, params=(x, y), compute="float",
                     domain=((-2.0, 2.0), (0.5, 2.0)), derivatives=[1 / y, -out / y],
                     infix=Infix(" / ", registry.PRODUCT))
power = elementwise("power", x**y, _power, params=(x, y), domain=(POSITIVE, (-2.0, 2.0)),
                    derivatives=[_power_dx, out * sympy.log(x)], infix=Infix("**", registry.POWER, "right"))
maximum = elementwise("maximum", sympy.Max(x, y), np.maximum, params=(x, y), commutative=True,
                      derivatives=[lambda a, b, r: _indicator(apply(greater_equal, a, b), a),
                                   lambda a, b, r: _indicator(apply(less, a, b), a)])
minimum = elementwise("minimum", sympy.Min(x, y), np.minimum, params=(x, y), commutative=True,
                      derivatives=[lambda a, b, r: _indicator(apply(less_equal, a, b), a),
                                   lambda a, b, r: _indicator(apply(greater, a, b), a)])
negative = elementwise("negative", -x, np.negative)
abs_ = elementwise("abs", sympy.Abs(x), np.abs,
                   derivatives=[lambda a, result: apply(sign, a)])  # abs'(0) = 0
square = elementwise("square", x**2, np.square)
reciprocal = elementwise("reciprocal", 1 / x, np.reciprocal, compute="float", domain=((0.5, 2.0),),
                         derivatives=[-(out**2)])
exp = elementwise("exp", sympy.exp(x), np.exp, compute="float", derivatives=[out])
log = elementwise("log", sympy.log(x), np.log, compute="float", domain=(POSITIVE,))
log1p = elementwise("log1p", _sym_log1p(x), np.log1p, compute="float", domain=((-0.5, 2.0),))
sqrt = elementwise("sqrt", sympy.sqrt(x), np.sqrt, compute="float", domain=(POSITIVE,),
                   derivatives=[1 / (2 * out)])
sin = elementwise("sin", sympy.sin(x), np.sin, compute="float")
cos = elementwise("cos", sympy.cos(x), np.cos, compute="float")
tan = elementwise("tan", sympy.tan(x), np.tan, compute="float", domain=((-1.2, 1.2),),
                  derivatives=[1 + out**2])
tanh = elementwise("tanh", sympy.tanh(x), np.tanh, compute="float", derivatives=[1 - out**2])
sigmoid = elementwise("sigmoid", 1 / (1 + sympy.exp(-x)), _sigmoid, compute="float",
                      derivatives=[out * (1 - out)])
# log(1 + exp(x)) overflows where softplus does not: max(x, 0) + log1p(exp(-|x|)) is what kernels compute
softplus = elementwise("softplus", sympy.log(1 + sympy.exp(x)), _softplus, compute="float",
                       stable=sympy.Max(x, 0) + _sym_log1p(sympy.exp(-sympy.Abs(x))),
                       derivatives=[lambda a, result: apply(sigmoid, a)])
relu = elementwise("relu", sympy.Max(x, 0), _relu,
                   derivatives=[lambda a, result: _indicator(apply(greater, a, 0), a)])  # relu'(0) = 0
sign = elementwise("sign", sympy.sign(x), np.sign, differentiable=False)
erf = elementwise("erf", sympy.erf(x), _erf, compute="float")
erfc = elementwise("erfc", sympy.erfc(x), _erfc, compute="float")  # 1 − erf(x), without the cancellation
# PyTorch's GELU (approximate="none"): x·Φ(x) with Φ(x) = erfc(−x/√2)/2 the standard normal CDF
# (the form (1 + erf(x/√2))/2 cancels to 0 for x < −6, where Φ does not)
gelu = elementwise("gelu", x * sympy_functions.normal_cdf(x), _gelu, compute="float")
less = elementwise("less", sympy.StrictLessThan(x, y), np.less, params=(x, y), result="bool",
                   differentiable=False, infix=_compare("<"))
less_equal = elementwise("less_equal", sympy.LessThan(x, y), np.less_equal, params=(x, y),
                         result="bool", differentiable=False, infix=_compare("<="))
greater = elementwise("greater", sympy.StrictGreaterThan(x, y), np.greater, params=(x, y), result="bool",
                      differentiable=False, infix=_compare(">"))
greater_equal = elementwise("greater_equal", sympy.GreaterThan(x, y), np.greater_equal,
                            params=(x, y), result="bool", differentiable=False, infix=_compare(">="))
equal = elementwise("equal", sympy.Eq(x, y, evaluate=False), np.equal, params=(x, y),
                    result="bool", differentiable=False, commutative=True, infix=_compare("=="))
not_equal = elementwise("not_equal", sympy.Ne(x, y, evaluate=False), np.not_equal, params=(x, y),
                        result="bool", differentiable=False, commutative=True, infix=_compare("!="))
where_ = elementwise("where", sympy.Piecewise((x, c), (y, True)), np.where, params=(c, x, y),
                     domain=((0, 1), (-2.0, 2.0), (-2.0, 2.0)))
astype_ = elementwise("astype", x, None, compute="cast", print_attrs=(Shown("dtype", positional=True),))


@astype_.defjvp
def _astype_jvp(node, tangents, nb):
    (t,) = tangents
    return astype(t, node.dtype) if t is not None and dtypes.is_float(node.dtype) else None


@astype_.defvjp
def _astype_vjp(node, ct, nb, needed=None):
    (a,) = node.inputs
    return [astype(ct, a.dtype) if dtypes.is_float(a.dtype) else None]


# -- public functions ----------------------------------------------------------------------


def _public(op):
    def build(*args):
        return apply(op, *args)

    build.__name__ = op.name
    build.__qualname__ = op.name
    build.__doc__ = f"Elementwise ``{op.name}``: the scalar function {op.scalar}, with numpy broadcasting."
    return build


_BINARY_ALIASES = {"sub": "subtract", "mul": "multiply", "div": "divide", "pow": "power",
                   "neg": "negative"}

for _op in list(OPS.values()):
    if isinstance(_op, ElementwiseOp) and _op.name not in ("astype", "where"):
        function(_public(_op), name=_op.name)
for _alias, _target in _BINARY_ALIASES.items():
    function(_public(OPS[_target]), name=_alias)


@function
def clip(a, a_min=None, a_max=None) -> Node:
    """``a`` limited to ``[a_min, a_max]``, numpy's ``clip`` (either bound may be None, a
    number or an expression): ``minimum(maximum(a, a_min), a_max)``. The derivative is 1
    inside and 0 outside; at a bound it is maximum's and minimum's (½ at a tie).

    >>> import symdiff as sd
    >>> v = sd.tensor("v", (3,))
    >>> sd.evaluate(sd.clip(v, -1.0, 1.0), {v: [-3.0, 0.5, 2.0]}).tolist()
    [-1.0, 0.5, 1.0]
    """
    if a_min is None and a_max is None:
        raise ValueError("clip: give a_min, a_max or both")
    out = as_node(a)
    if a_min is not None:
        out = apply(maximum, out, a_min)
    if a_max is not None:
        out = apply(minimum, out, a_max)
    return out


@function
def masked_fill(a, mask, value) -> Node:
    """``a`` with ``value`` where the bool ``mask`` (broadcast to ``a``) is True, as PyTorch's
    ``Tensor.masked_fill``: ``where(mask, value, a)``. With ``-inf`` before a softmax it masks
    attention scores (see :func:`causal_mask`).

    >>> import symdiff as sd
    >>> S = sd.tensor("S", (2, 2))
    >>> sd.evaluate(sd.masked_fill(S, sd.causal_mask(2), -1e9), {S: [[1.0, 2.0], [3.0, 4.0]]}).tolist()
    [[1.0, -1000000000.0], [3.0, 4.0]]
    """
    mask = as_node(mask)
    if mask.dtype != "bool":
        raise TypeError(f"masked_fill: the mask must be bool, got {mask.dtype}")
    a = as_node(a)
    shapes.broadcast_shapes("masked_fill", a.shape, mask.shape)
    return where(mask, value, a)


@function
def causal_mask(n) -> Node:
    """The (n, n) mask of a causal (autoregressive) attention: True above the diagonal, where
    position ``i`` would see a later position ``j > i`` (PyTorch's
    ``torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)``, the mask
    ``nn.Transformer.generate_square_subsequent_mask`` fills with -inf).

    >>> import symdiff as sd
    >>> sd.evaluate(sd.causal_mask(3), {}).astype(int).tolist()
    [[0, 1, 1], [0, 0, 1], [0, 0, 0]]
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"causal_mask: n must be a positive int, got {n!r}")
    return constant(np.triu(np.ones((int(n), int(n)), dtype=bool), k=1))


@function
def where(condition, a, b) -> Node:
    """``a`` where ``condition`` holds, else ``b`` (numpy broadcasting).

    >>> import symdiff as sd
    >>> x = sd.symbols("x")
    >>> float(sd.evaluate(sd.where(x > 0, x, 0.0), {x: -2.0}))
    0.0
    """
    return apply(where_, condition, a, b)


@function
def astype(a, dtype) -> Node:
    """``a`` converted to ``dtype`` (no node when it already has it).

    >>> import symdiff as sd
    >>> sd.astype(sd.symbols("x"), "float32").dtype
    'float32'
    """
    a = as_node(a)
    dtype = dtypes.check_dtype(dtype)
    if a.dtype == dtype:
        return a
    if a.is_constant and a.shape == ():
        return constant(a.attr("value"), dtype)
    return make(astype_, (a,), dtype=dtype)


# -- derivatives ---------------------------------------------------------------------------
# Partial derivatives come from sympy.diff of the scalar form, except where the op declares
# ``derivatives`` (through its own output ``out``, or a convention at a kink).


def scalar_value(node):
    """The Python number a (broadcast or reshaped) scalar constant holds, else None."""
    while node.op.name in ("broadcast_to", "reshape") and node.inputs[0].size == 1:
        node = node.inputs[0]
    if node.is_constant and node.shape == () and not isinstance(node.attr("value"), sympy.Basic):
        return node.attr("value")
    return None


# -- sympy scalar forms back to graphs -----------------------------------------------------
# The partial derivatives (below) are sympy expressions in the params and ``out``; scalar_graph
# builds them as elementwise nodes. symdiff.ops.from_sympy extends it to the stable functions of
# vectors (logsumexp, softmax) for symbolic mode: their ops belong to families above this one.


class UnsupportedSympy(TypeError):
    pass


@functools.cache
def _functions() -> dict:
    """sympy function -> elementwise op. A unary stable function maps to the registered op whose
    scalar form is its exp/log form: found in the registry, not listed here by name."""
    table = {
        sympy.exp: exp, sympy.log: log, sympy.sin: sin, sympy.cos: cos, sympy.tan: tan,
        sympy.tanh: tanh, sympy.Abs: abs_, sympy.sign: sign, _sym_log1p: log1p, sympy.erf: erf,
        sympy.erfc: erfc,
    }
    for fn in sympy_functions.UNARY:
        table[fn] = next(op for op in OPS.values() if isinstance(op, ElementwiseOp) and op.arity == 1
                         and op.scalar == fn(op.params[0]).naive())
    return table


_RELATIONS = {sympy.StrictLessThan: less, sympy.LessThan: less_equal, sympy.StrictGreaterThan: greater,
              sympy.GreaterThan: greater_equal, sympy.Equality: equal, sympy.Unequality: not_equal}


def scalar_graph(expr, mapping: dict, like: Node | None = None, memo: dict | None = None, extra=None) -> Node:
    """The graph of sympy ``expr`` with symbols replaced by ``mapping``'s nodes.

    ``memo`` (sympy expression -> node) may be shared by calls over expressions with common
    parts, such as the derivatives of one function: each part is then built once. ``extra(x,
    conv)`` may build a sympy function this family does not know (``conv`` builds its
    arguments), or return None.
    """
    like = like if like is not None else next(iter(mapping.values()), None)
    memo = {} if memo is None else memo

    def number(v):
        return as_node(int(v) if v.is_Integer else float(v), like=like)

    def conv(x):
        if x in memo:
            return memo[x]
        memo[x] = node = build(x)
        return node

    def product(factors):
        nodes = [conv(f) for f in factors]
        result = nodes[0]
        for n in nodes[1:]:
            result = result * n
        return result

    def build(x):
        if extra is not None:
            built = extra(x, conv)
            if built is not None:
                return built
        if x.is_Symbol:
            if x in mapping:
                return as_node(mapping[x])
            if x.is_integer and x.is_positive:  # a dimension such as m: a dimension constant
                return constant(x, like.dtype if like is not None and like.dtype.startswith("float") else "float64")
            raise UnsupportedSympy(f"no node for symbol {x}")
        if x.is_Number:
            return number(x)
        if x.is_number and not x.free_symbols and x.is_real:  # π, √2/√π: a constant, to float precision
            return number(sympy.Float(x.evalf(30), 30))
        if x in (sympy.true, sympy.false):
            return as_node(bool(x))
        if x.is_Add:
            terms = sorted(x.args, key=lambda t: (t.could_extract_minus_sign(), sympy.default_sort_key(t)))
            result = None
            for t in terms:
                minus = t.could_extract_minus_sign()
                node = conv(-t if minus else t)
                if result is None:
                    result = -node if minus else node
                else:
                    result = result - node if minus else result + node
            return result
        if x.is_Mul and any(f.is_number and not f.is_Rational for f in x.args):
            # √2·x/(2√π): the irrational constants and the rational ones folded into one number
            c = sympy.Mul(*[f for f in x.args if f.is_number])
            return number(sympy.Float(c.evalf(30), 30)) * conv(sympy.Mul(*[f for f in x.args if not f.is_number]))
        if x.is_Mul or (x.is_Pow and x.exp.is_negative):
            if x.could_extract_minus_sign():
                return -conv(-x)
            num, den = sympy.fraction(x, exact=True)  # exp(−u) stays a factor: 1/exp(u) overflows first
            if den == 1:
                return product(sorted(sympy.Mul.make_args(num), key=lambda f: not f.is_Number))
            bottom = product(sympy.Mul.make_args(den))
            if num == 1:
                return apply(reciprocal, bottom)
            return conv(num) / bottom
        if x.is_Pow:
            base, exponent = x.args
            if exponent == 2:
                return apply(square, conv(base))
            if exponent == sympy.Rational(1, 2):
                return apply(sqrt, conv(base))
            if exponent.is_Integer and 2 < exponent <= 4:
                b = conv(base)
                result = b
                for _ in range(int(exponent) - 1):
                    result = result * b
                return result
            return conv(base) ** conv(exponent)
        if isinstance(x, sympy.Piecewise):
            (a, cond), rest = x.args[0], x.args[1:]
            other = sympy.Piecewise(*rest) if len(rest) > 1 or rest[0][1] != sympy.true else rest[0][0]
            return where(conv(cond), conv(a), conv(other))
        if isinstance(x, (sympy.Max, sympy.Min)):
            op = maximum if isinstance(x, sympy.Max) else minimum
            args = [conv(a) for a in x.args]
            result = args[0]
            for a in args[1:]:
                result = apply(op, result, a)
            return result
        if isinstance(x, sympy.core.relational.Relational):
            return apply(_RELATIONS[type(x)], conv(x.lhs), conv(x.rhs))
        if isinstance(x, sympy_functions.normal_cdf):  # erfc(−x·√½)/2, built as graph ops
            return apply(erfc, -conv(x.args[0]) * (1 / math.sqrt(2))) * 0.5
        if isinstance(x, sympy_functions.stopped):
            return stop_gradient(conv(x.args[0]))
        if isinstance(x, sympy.Heaviside):
            arg = conv(x.args[0])
            return astype(apply(greater, arg, 0), like.dtype if like is not None else "float64")
        functions = _functions()
        if x.func in functions:
            return apply(functions[x.func], *[conv(a) for a in x.args])
        raise UnsupportedSympy(f"cannot build a graph for sympy expression {x} ({x.func.__name__})")

    return conv(sympy.sympify(expr))


def partials(node, needed=None) -> list:
    """Graph nodes of d out / d input_i (None for inputs without a derivative or not needed)."""
    op = node.op
    if not op.differentiable:
        return [None] * len(node.inputs)
    declared = op.derivatives or [sympy.diff(op.scalar, p) for p in op.params]
    mapping = dict(zip(op.params, node.inputs))
    mapping[out] = node
    result = []
    needed = needed or (True,) * len(node.inputs)
    for p, inp, d, want in zip(op.params, node.inputs, declared, needed):
        if p is c or not dtypes.is_float(inp.dtype) or not want:
            result.append(None)
        elif callable(d) and not isinstance(d, sympy.Basic):
            result.append(d(*node.inputs, node))
        else:
            result.append(scalar_graph(d, mapping, like=node))
    return result


def _scale(t, d):
    if scalar_value(t) == 1 and t.shape == d.shape:
        return d
    v = scalar_value(d)
    if v == 1:
        return t
    if v == -1:
        return -t
    return t * d


def _elementwise_jvp(node, tangents, nb):
    total = None
    for d, t in zip(partials(node, [t is not None for t in tangents]), tangents):
        if t is None or d is None:
            continue
        term = _scale(t, d)
        total = term if total is None else total + term
    return total


def _elementwise_vjp(node, ct, nb, needed=None):
    return [None if d is None else _scale(ct, d) for d in partials(node, needed)]


