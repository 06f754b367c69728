"""The op catalogue, split by family: the registry's API (``OPS``, ``FUNCTIONS``, ``Op``, ...).

Each family registers its ops when it is imported, and ``import symdiff`` imports them all, in
the order of their layers: ``sources < movement < elementwise < nn < reduce < linalg``, with
:mod:`.from_sympy` above them (a family imports only those before it; see :mod:`symdiff.expr`).
This package imports none of them itself: :mod:`symdiff.node`, below every family, uses the
registry and the source ops, and importing those must not pull in the families built on it.
"""

from .registry import FUNCTIONS, OPS, Op, function, ops_with

__all__ = ["FUNCTIONS", "OPS", "Op", "function", "ops_with"]
