"""The op catalogue, split by family; importing this package registers every op."""

from . import sources, elementwise, movement, reduce, linalg, nn  # noqa: F401  (registration)
from .registry import FUNCTIONS, OPS, Op, function, ops_with

__all__ = ["FUNCTIONS", "OPS", "Op", "function", "ops_with"]
