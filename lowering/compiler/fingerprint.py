"""A stable content hash of a program's graph, for the compile cache's front door.

Two programs with the same fingerprint and the same argument shapes generate the same
source, so a process that has compiled a program before can skip optimizing,
scheduling and rendering it: the fingerprint leads straight to the cached library.
Leaves count by their position among the inputs, not by name.

>>> import symdiff as sd
>>> a, b = sd.tensor("a", (3,)), sd.tensor("b", (3,))
>>> graph_fingerprint([sd.exp(a)], [a], []) == graph_fingerprint([sd.exp(b)], [b], [])
True
>>> graph_fingerprint([sd.exp(a)], [a], []) == graph_fingerprint([sd.sin(a)], [a], [])
False
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from symdiff.graph import attr_text as _attr_text
from symdiff.graph import toposort

FORMAT = "graph-1"
_CODEGEN_DIGEST = None


def codegen_sources() -> list:
    """The Python files that decide what source a graph generates: every module of the lowering
    package (plan, render, compiler, programs, kernels) and the core's ops and rewrites.

    >>> names = {p.relative_to(p.parents[1]).as_posix() for p in codegen_sources()}
    >>> {"render/cpu_kernels.py", "plan/schedule.py", "ops/movement.py", "rewrite/pipeline.py"} <= names
    True
    """
    lowering = Path(__file__).resolve().parents[1]
    core = Path(toposort.__code__.co_filename).resolve().parent
    return sorted([*lowering.rglob("*.py"), *(core / "ops").rglob("*.py"), *(core / "rewrite").rglob("*.py")])


def codegen_digest() -> str:
    """Hash of :func:`codegen_sources`: a program cached by fingerprint must have been generated
    by this code generator (any edit to it invalidates every graph entry)."""
    global _CODEGEN_DIGEST
    if _CODEGEN_DIGEST is None:
        h = hashlib.sha256()
        for path in codegen_sources():
            name = "/".join(path.parts[-3:])  # not the install location: two checkouts of one tree agree
            h.update(name.encode() + b"\0" + path.read_bytes())
        _CODEGEN_DIGEST = h.hexdigest()
    return _CODEGEN_DIGEST


def graph_fingerprint(outputs, inputs, updates, extra: str = "") -> str:
    """SHA-256 of outputs, updates and every node they depend on (op, attributes, shape, dtype)."""
    position = {id(leaf): k for k, leaf in enumerate(inputs)}
    roots = list(outputs) + [v for _, v in updates]
    order = toposort(roots)
    index = {id(n): k for k, n in enumerate(order)}
    h = hashlib.sha256(f"{FORMAT}\n{codegen_digest()}\n{extra}\n".encode())
    for n in order:
        if n.is_leaf and not n.is_constant:
            line = f"in{position.get(id(n), 'missing:' + str(n.name))}:{n.shape}:{n.dtype}"
        else:
            attrs = ";".join(f"{k}={_attr_text(v)}" for k, v in sorted(n.attrs.items()) if k != "name")
            args = ",".join(str(index[id(i)]) for i in n.inputs)
            line = f"{n.op.name}({args})[{attrs}]:{n.shape}:{n.dtype}"
        h.update(line.encode() + b"\n")
    h.update(("out " + ",".join(str(index[id(o)]) for o in outputs)).encode())
    h.update(("upd " + ",".join(f"{position[id(leaf)]}={index[id(v)]}" for leaf, v in updates)).encode())
    return h.hexdigest()
