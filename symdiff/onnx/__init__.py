"""ONNX export and import: ``sd.onnx.export(outputs, inputs, path)``, ``sd.onnx.load(path)``.

The rules (:mod:`symdiff.onnx.rules`) need nothing beyond symdiff; building, checking and
reading models needs the ``onnx`` package (the ``onnx`` extra), which the modules import on
first use (not at import time), so ``import symdiff`` neither loads nor needs it.

>>> import symdiff as sd
>>> sorted(op.name for op in sd.onnx.NOT_EXPORTABLE if not getattr(op, "user_defined", False))
['inv', 'solve']
"""

from .export import ExportError, export, to_model
from .load import Imported, LoadError, from_model, load
from .rules import NOT_EXPORTABLE, RULES

__all__ = ["NOT_EXPORTABLE", "RULES", "ExportError", "Imported", "LoadError", "export", "from_model", "load",
           "to_model"]
