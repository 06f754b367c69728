"""symdiff: a symbolic-math-first differentiation engine.

Write a function once as a symbolic graph; derive, print, compare and compile
its derivatives.

>>> import symdiff as sd
>>> x, y = sd.symbols("x y")
>>> f = sd.sin(x) * sd.exp(y) + x**2
>>> round(float(sd.evaluate(f, {x: 1.0, y: 0.0})), 6)
1.841471
"""

# Imports go one way, bottom-up (symdiff.expr draws the layers). The op families register their
# ops when imported, in this order; expr then gives Node its operators and printing.
from .ops import sources as _sources, movement as _movement, padding as _padding  # noqa: F401
from .ops import elementwise as _elementwise  # noqa: F401
from .ops import nn as _nn, reduce as _reduce, linalg as _linalg  # noqa: F401  (registration)
from .ops import matrix as _matrix  # noqa: F401  (registration: inv, det, solve, kron, norm, ...)
from .ops import conv as _conv, pooling as _pooling  # noqa: F401  (registration)
from . import expr as _expr  # x + y, X.T, X[1:], X.sum(), print(X)
from . import sparsity as _sparsity  # registers sparsity (patterns and colouring)
from . import custom as _custom  # registers elementwise, custom_vjp
from . import autodiff as _autodiff  # registers grad, jvp, vjp, jacobian, hessian, hvp
from . import scan as _scan  # registers scan (its rules are the body's own, through autodiff)
from .autodiff import DifferentiationError
from . import numeric as _numeric  # registers numeric_grad, check_grads
from . import compare as _compare  # registers compare
from . import rewrite as _rewrite  # registers optimize
from . import names as _names  # registers name
from . import pretty as _pretty  # registers pretty, latex
from . import onnx  # noqa: F401  sd.onnx.export, sd.onnx.load (the onnx package is imported on first use)
from .compare import Report
from .compile import compile_ as compile
from .dtypes import DTYPES
from .evaluate import evaluate
from .graph import cost, count_ops, toposort, tree_size
from .node import Expr, Node, as_node, constant, symbols, tensor
from .ops.registry import FUNCTIONS, OPS
from .parser import ParseError, parse
from .shapes import ShapeError

globals().update(FUNCTIONS)  # sd.exp, sd.sum, sd.matmul, ... : one name per registered function

__version__ = "0.1.0"

__all__ = [
    "DTYPES", "DifferentiationError", "compile", "Expr", "ParseError", "Report", "FUNCTIONS", "Node", "OPS", "ShapeError", "as_node", "constant", "cost",
    "count_ops", "evaluate", "parse", "symbols", "tensor", "toposort", "tree_size", *sorted(FUNCTIONS),
]
