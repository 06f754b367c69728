"""Stage 3, compiling: a program's source becomes a loaded shared library, once.

:mod:`.toolchain` (compilers and flags per kind, one table; running them safely),
:mod:`.cache` (the on-disk cache of libraries and graph entries, keyed by content),
:mod:`.fingerprint` (the content hash of a graph as given).
"""
