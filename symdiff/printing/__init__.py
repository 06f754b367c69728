"""Printing: one walk (:mod:`.driver`) and the styles on top of it.

:mod:`.text` is the text ``sd.parse`` reads back (``str`` and ``repr`` of an expression);
:mod:`.notation` the matrix notation of ``sd.pretty`` (Unicode), ``sd.latex`` (LaTeX) and of
the buffer formulas a lowered program's ``explain()`` and kernel comments show.
"""

from .text import to_str

__all__ = ["to_str"]
