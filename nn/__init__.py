"""symdiff.nn: networks whose whole training step is one lowered program.

Modules build symbolic graphs from ``symdiff`` ops; the training step (loss,
reverse-mode gradients, optimizer update) is compiled by ``symdiff.lowering``.
It imports the core and lowering; neither imports it.
"""
