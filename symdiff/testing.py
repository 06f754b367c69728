"""Examples of every op, for tests that walk the registry (and for users adding ops).

``cases()`` yields :class:`OpCase` objects: how to build an expression from leaf
inputs, where to sample the inputs (the op's domain), and an independent numpy
reference. Tests check evaluation, gradients and lowering against them, so an op
added to the registry without an example fails the coverage test.

>>> case = next(c for c in cases() if c.op == "matmul")
>>> expr, values = case.instantiate(np.random.default_rng(0))
>>> expr.shape
(3, 5)
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable

import numpy as np
import sympy

from .node import constant, make, tensor
from .ops.elementwise import ElementwiseOp
from .ops.registry import FUNCTIONS, OPS


@dataclasses.dataclass
class Input:
    shape: tuple
    dtype: str = "float64"
    low: float = -2.0
    high: float = 2.0
    values: tuple | None = None  # bind symbolic dims: concrete shape to sample
    points: tuple | None = None  # fixed values (nested like the shape) instead of random samples


@dataclasses.dataclass
class OpCase:
    op: str
    build: Callable
    inputs: list
    reference: Callable
    label: str = ""
    lowered: tuple = ("cpu", "cuda")  # the compiled backends that lower it (scan: cpu only, so far)

    def __str__(self):
        return f"{self.op}[{self.label}]" if self.label else self.op

    def leaves(self, dtype: str | None = None):
        out = []
        for i, spec in enumerate(self.inputs):
            d = spec.dtype if dtype is None or spec.dtype not in ("float32", "float64") else dtype
            out.append(tensor(f"a{i}", spec.shape, d))
        return out

    def sample(self, rng, dtype: str | None = None):
        arrays = []
        for spec, leaf in zip(self.inputs, self.leaves(dtype)):
            shape = spec.values or spec.shape
            if spec.points is not None:
                arrays.append(np.asarray(spec.points, dtype=leaf.dtype).reshape(shape))
            elif leaf.dtype == "bool":
                arrays.append(rng.random(shape) < 0.5)
            elif leaf.dtype == "int64":
                arrays.append(rng.integers(int(spec.low), int(spec.high), size=shape).astype(np.int64))
            else:
                arrays.append(rng.uniform(spec.low, spec.high, size=shape).astype(leaf.dtype))
        return _away_from_kinks(self.op, arrays)

    def instantiate(self, rng, dtype: str | None = None):
        """(expression, {leaf: value}) for one random point of the case."""
        leaves = self.leaves(dtype)
        expr = self.build(*leaves)
        return expr, dict(zip(leaves, self.sample(rng, dtype)))


KINK_MARGIN = 0.05  # finite differences straddling a kink are wrong: sample away from them


def _away_from_kinks(op, arrays):
    """Move samples of kinked ops (relu, abs, sign at 0; maximum/minimum at ties) off the kink."""
    if op in ("relu", "abs", "sign") and arrays and arrays[0].dtype.kind == "f":
        a = arrays[0]
        arrays[0] = np.where(np.abs(a) < KINK_MARGIN, np.copysign(KINK_MARGIN, a) + a, a).astype(a.dtype)
    if op in ("maximum", "minimum") and len(arrays) == 2:
        a, b = np.broadcast_arrays(*arrays)
        close = np.abs(a - b) < KINK_MARGIN
        if close.any():
            arrays[1] = np.where(close, b + 2 * KINK_MARGIN, b).astype(arrays[1].dtype) if arrays[1].shape == close.shape \
                else arrays[1]
    return arrays


REFERENCE_DIGITS = 60  # log(1 + exp(-50)) loses 22 digits to cancellation: 30 would leave 8


def scalar_reference(op: ElementwiseOp):
    """An independent reference for an elementwise op: its sympy form, evaluated per element."""

    def reference(*arrays):
        arrays = np.broadcast_arrays(*arrays)
        out = np.empty(arrays[0].shape, dtype=object)
        for index in np.ndindex(out.shape):
            subs = {}
            for p, a in zip(op.params, arrays):
                v = a[index]
                subs[p] = sympy.true if v is True or v is np.True_ else (
                    sympy.false if v is False or v is np.False_ else sympy.Float(float(v), REFERENCE_DIGITS))
            value = op.scalar.xreplace(subs)
            if isinstance(value, sympy.logic.boolalg.BooleanAtom):
                out[index] = bool(value)
            else:
                out[index] = float(sympy.N(value, REFERENCE_DIGITS))
        return out.astype(bool if op.result == "bool" else float)

    return reference


def _elementwise_cases(op: ElementwiseOp):
    fn = FUNCTIONS["where"] if op.name == "where" else FUNCTIONS[op.name]
    ref = scalar_reference(op)
    if op.name == "where":
        specs = [Input((3, 4), "bool"), Input((3, 4)), Input((3, 4))]
        yield OpCase(op.name, fn, specs, ref, "same shape")
        yield OpCase(op.name, fn, [Input((3, 1), "bool"), Input((4,)), Input(())], ref, "broadcast")
        return
    domains = op.domain
    yield OpCase(op.name, fn, [Input((3, 4), low=lo, high=hi) for lo, hi in domains], ref, "same shape")
    yield OpCase(op.name, fn, [Input(("m", "n"), low=lo, high=hi, values=(2, 5)) for lo, hi in domains],
                 ref, "symbolic")
    if op.arity == 2:
        (l0, h0), (l1, h1) = domains
        yield OpCase(op.name, fn, [Input((3, 1), low=l0, high=h0), Input((4,), low=l1, high=h1)], ref,
                     "broadcast")
        yield OpCase(op.name, fn, [Input((), low=l0, high=h0), Input((2, 3), low=l1, high=h1)], ref,
                     "scalar")


def _logsumexp(a, axis=None, keepdims=False):
    m = np.max(a, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _softmax(a, axis=-1):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _dilated(a, dilation, axes):
    """needle's dilate: each axis in ``axes`` d -> d * (dilation + 1), ``a`` at every (dilation + 1)-th."""
    shape = [d * (dilation + 1) if k in axes else d for k, d in enumerate(a.shape)]
    out = np.zeros(shape, dtype=a.dtype)
    out[tuple(slice(None, None, dilation + 1) if k in axes else slice(None) for k in range(a.ndim))] = a
    return out


def conv2d_loops(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """conv2d by explicit loops over every output element and kernel tap: an independent reference."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for b, f, i, j in itertools.product(range(n), range(o), range(oh), range(ow)):
        acc = 0.0
        for ci, p, q in itertools.product(range(cg), range(kh), range(kw)):
            r, s = i * sh + p * dh - ph, j * sw + q * dw - pw
            if 0 <= r < h and 0 <= s < wd:
                acc += x[b, (f // og) * cg + ci, r, s] * w[f, ci, p, q]
        out[b, f, i, j] = acc
    return out


def pool2d_loops(x, kernel, stride, padding, kind):
    """max or average pooling by explicit loops (padding -inf for max, 0 counted for the mean)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    *lead, h, wd = x.shape
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((*lead, oh, ow))
    for idx in np.ndindex(*lead, oh, ow):
        *pre, i, j = idx
        vals = [x[(*pre, i * sh + p - ph, j * sw + q - pw)] if 0 <= i * sh + p - ph < h and 0 <= j * sw + q - pw < wd
                else (-np.inf if kind == "max" else 0.0) for p in range(kh) for q in range(kw)]
        out[idx] = max(vals) if kind == "max" else sum(vals) / (kh * kw)
    return out


def _argmax_routes(x, kernel, stride, padding):
    """For each output of a max pool: the input position of its window's first maximum."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    *lead, h, wd = x.shape
    oh, ow = (h + 2 * ph - kh) // sh + 1, (wd + 2 * pw - kw) // sw + 1
    routes = {}
    for idx in np.ndindex(*lead, oh, ow):
        *pre, i, j = idx
        best = None
        for p, q in itertools.product(range(kh), range(kw)):
            r, s = i * sh + p - ph, j * sw + q - pw
            if 0 <= r < h and 0 <= s < wd and (best is None or x[(*pre, r, s)] > x[best]):
                best = (*pre, r, s)
        routes[idx] = best
    return routes


def _max_gather_loops(x, t, kernel, stride, padding):
    routes = _argmax_routes(x, kernel, stride, padding)
    out = np.zeros(tuple(np.array(list(routes)).max(axis=0) + 1))
    for idx, src in routes.items():
        out[idx] = t[src]
    return out


def _max_scatter_loops(x, c, kernel, stride, padding):
    out = np.zeros(x.shape)
    for idx, src in _argmax_routes(x, kernel, stride, padding).items():
        out[src] += c[idx]
    return out


def _avg_scatter_loops(c, size, kernel, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    out = np.zeros(c.shape[:-2] + tuple(size))
    for idx in np.ndindex(*c.shape):
        *pre, i, j = idx
        for p, q in itertools.product(range(kh), range(kw)):
            r, s = i * sh + p - ph, j * sw + q - pw
            if 0 <= r < size[0] and 0 <= s < size[1]:
                out[(*pre, r, s)] += c[idx] / (kh * kw)
    return out


def _window_cases():
    """Convolutions and pooling, against the explicit loops above."""
    F = FUNCTIONS
    X = Input((2, 3, 6, 5))
    yield OpCase("conv2d", lambda x, w: F["conv2d"](x, w), [X, Input((4, 3, 3, 2))], conv2d_loops, "plain")
    yield OpCase("conv2d", lambda x, w: F["conv2d"](x, w, stride=2, padding=1), [X, Input((2, 3, 3, 3))],
                 lambda x, w: conv2d_loops(x, w, (2, 2), (1, 1)), "stride and padding")
    yield OpCase("conv2d", lambda x, w: F["conv2d"](x, w, stride=(1, 2), padding=(2, 0), dilation=(2, 1)),
                 [X, Input((2, 3, 2, 2))], lambda x, w: conv2d_loops(x, w, (1, 2), (2, 0), (2, 1)), "dilation")
    yield OpCase("conv2d", lambda x, w: F["conv2d"](x, w, padding=1, groups=2), [Input((2, 4, 5, 5)), Input((6, 2, 3, 3))],
                 lambda x, w: conv2d_loops(x, w, padding=(1, 1), groups=2), "groups")
    yield OpCase("conv2d", lambda x, w: F["conv2d"](x, w, padding=1), [Input(("N", 2, 4, 4), values=(3, 2, 4, 4)),
                 Input((3, 2, 3, 3))], lambda x, w: conv2d_loops(x, w, padding=(1, 1)), "symbolic")
    for kind in ("max", "avg"):
        fn = F[f"{kind}_pool2d"]
        yield OpCase(f"{kind}_pool2d", lambda x, fn=fn: fn(x, 2), [X],
                     lambda x, kind=kind: pool2d_loops(x, (2, 2), (2, 2), (0, 0), kind), "2x2")
        yield OpCase(f"{kind}_pool2d", lambda x, fn=fn: fn(x, (3, 2), stride=(2, 1), padding=1), [Input((3, 5, 4))],
                     lambda x, kind=kind: pool2d_loops(x, (3, 2), (2, 1), (1, 1), kind), "padding")
        yield OpCase(f"{kind}_pool2d", lambda x, fn=fn: fn(x, 2), [Input(("N", 2, 4, 4), values=(3, 2, 4, 4))],
                     lambda x, kind=kind: pool2d_loops(x, (2, 2), (2, 2), (0, 0), kind), "symbolic")
    window = {"kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 1)}
    args = ((3, 2), (2, 1), (1, 1))
    x0 = Input((2, 5, 4))
    yield OpCase("max_pool2d_gather", lambda x, t: make(OPS["max_pool2d_gather"], (x, t), **window), [x0, x0],
                 lambda x, t: _max_gather_loops(x, t, *args))
    yield OpCase("max_pool2d_scatter", lambda x, c: make(OPS["max_pool2d_scatter"], (x, c), **window),
                 [x0, Input((2, 3, 5))], lambda x, c: _max_scatter_loops(x, c, *args))
    yield OpCase("avg_pool2d_scatter", lambda c: make(OPS["avg_pool2d_scatter"], (c,), size=(5, 4), **window),
                 [Input((2, 3, 5))], lambda c: _avg_scatter_loops(c, (5, 4), *args))


def _structural_cases():
    F = FUNCTIONS
    M = Input((3, 4))
    yield OpCase("sum", lambda a: F["sum"](a), [M], np.sum, "all")
    yield OpCase("sum", lambda a: F["sum"](a, axis=0), [M], lambda a: a.sum(axis=0), "axis 0")
    yield OpCase("sum", lambda a: F["sum"](a, axis=(0, 2), keepdims=True), [Input((2, 3, 4))],
                 lambda a: a.sum(axis=(0, 2), keepdims=True), "keepdims")
    yield OpCase("sum", lambda a: F["sum"](a, axis=1), [Input(("m", "n"), values=(4, 3))],
                 lambda a: a.sum(axis=1), "symbolic")
    yield OpCase("max", lambda a: F["max"](a, axis=1), [M], lambda a: a.max(axis=1))
    yield OpCase("max", lambda a: F["max"](a, axis=-1, keepdims=True), [M],
                 lambda a: a.max(axis=-1, keepdims=True), "keepdims")
    yield OpCase("logsumexp", lambda a: F["logsumexp"](a, axis=1), [M], lambda a: _logsumexp(a, 1))
    yield OpCase("logsumexp", lambda a: F["logsumexp"](a), [M], lambda a: _logsumexp(a), "all")
    yield OpCase("argmax", lambda a: F["argmax"](a, axis=1), [M], lambda a: np.argmax(a, axis=1))
    yield OpCase("broadcast_to", lambda a: F["broadcast_to"](a, (2, 3, 4)), [Input((3, 1))],
                 lambda a: np.broadcast_to(a, (2, 3, 4)))
    yield OpCase("reshape", lambda a: F["reshape"](a, (2, -1)), [M], lambda a: a.reshape(2, -1))
    yield OpCase("reshape", lambda a: F["reshape"](a, (-1,)), [Input(("m", "n"), values=(2, 3))],
                 lambda a: a.reshape(-1), "symbolic")
    yield OpCase("transpose", lambda a: F["transpose"](a), [M], lambda a: a.T)
    yield OpCase("transpose", lambda a: F["transpose"](a, (1, 2, 0)), [Input((2, 3, 4))],
                 lambda a: a.transpose(1, 2, 0), "axes")
    yield OpCase("flip", lambda a: F["flip"](a, 0), [M], lambda a: np.flip(a, 0), "axis 0")
    yield OpCase("flip", lambda a: F["flip"](a), [Input((2, 3, 4))], np.flip, "all")
    yield OpCase("flip", lambda a: F["flip"](a, (0, -1)), [Input((2, 3, 4))], lambda a: np.flip(a, (0, -1)),
                 "negative axis")
    yield OpCase("flip", lambda a: F["flip"](a, 1), [Input(("m", "n"), values=(3, 5))], lambda a: np.flip(a, 1),
                 "symbolic")
    yield OpCase("pad", lambda a: F["pad"](a, ((1, 0), (2, 1))), [M], lambda a: np.pad(a, ((1, 0), (2, 1))), "pairs")
    yield OpCase("pad", lambda a: F["pad"](a, 1, value=0.5), [Input((2, 3))],
                 lambda a: np.pad(a, 1, constant_values=0.5), "int and value")
    yield OpCase("pad", lambda a: F["pad"](a, ((0, 0), (1, 2))), [Input(("m", "n"), values=(3, 4))],
                 lambda a: np.pad(a, ((0, 0), (1, 2))), "symbolic")
    yield OpCase("dilate", lambda a: F["dilate"](a, 1, 0), [M], lambda a: _dilated(a, 1, (0,)), "axis 0")
    yield OpCase("dilate", lambda a: F["dilate"](a, 2, (0, -1)), [Input((2, 3, 2))],
                 lambda a: _dilated(a, 2, (0, 2)), "axes")
    yield OpCase("dilate", lambda a: F["dilate"](a, 1, 1), [Input(("m", "n"), values=(3, 2))],
                 lambda a: _dilated(a, 1, (1,)), "symbolic")
    yield OpCase("getitem", lambda a: a[1:, ::2], [M], lambda a: a[1:, ::2], "slices")
    yield OpCase("getitem", lambda a: a[-1, None, ..., 1:3], [M], lambda a: a[-1, None, ..., 1:3],
                 "int none ellipsis")
    yield OpCase("getitem", lambda a: a[::-1], [M], lambda a: a[::-1], "reverse")
    yield OpCase("getitem", lambda a: a[1:, :-1], [Input(("m", "n"), values=(4, 5))],
                 lambda a: a[1:, :-1], "symbolic")
    yield OpCase("take", lambda a, i: F["take"](a, i, axis=1), [M, Input((5,), "int64", 0, 4)],
                 lambda a, i: np.take(a, i, axis=1))
    yield OpCase("concatenate", lambda a, b: F["concatenate"]([a, b], axis=1),
                 [Input((3, 2)), Input((3, 4))], lambda a, b: np.concatenate([a, b], axis=1))
    yield OpCase("concatenate", lambda a, b: F["stack"]([a, b]), [M, M],
                 lambda a, b: np.stack([a, b]), "stack")
    yield OpCase("matmul", lambda a, b: a @ b, [M, Input((4, 5))], np.matmul)
    yield OpCase("matmul", lambda a, b: a @ b, [Input((4,)), Input((4, 5))], np.matmul, "vector @ matrix")
    yield OpCase("matmul", lambda a, b: a @ b, [M, Input((4,))], np.matmul, "matrix @ vector")
    yield OpCase("matmul", lambda a, b: a @ b, [Input((4,)), Input((4,))], np.matmul, "dot")
    yield OpCase("matmul", lambda a, b: a @ b, [Input((2, 1, 3, 4)), Input((5, 4, 2))], np.matmul,
                 "batched broadcast")
    yield OpCase("matmul", lambda a, b: a @ b, [Input(("m", "n"), values=(3, 4)), Input(("n", 2), values=(4, 2))],
                 np.matmul, "symbolic")
    yield OpCase("softmax", lambda a: F["softmax"](a), [M], _softmax)
    yield OpCase("softmax", lambda a: F["softmax"](a, axis=0), [M], lambda a: _softmax(a, 0), "axis 0")
    yield OpCase("log_softmax", lambda a: F["log_softmax"](a), [M], lambda a: np.log(_softmax(a)))
    yield OpCase("one_hot", lambda y: F["one_hot"](y, 5), [Input((4,), "int64", 0, 5)],
                 lambda y: np.eye(5)[y])
    yield OpCase("softmax_cross_entropy", lambda z, y: F["softmax_cross_entropy"](z, y),
                 [Input((4, 3)), Input((4,), "int64", 0, 3)],
                 lambda z, y: np.mean(-np.log(_softmax(z))[np.arange(4), y]))
    yield OpCase("softmax_cross_entropy", lambda z, y: F["softmax_cross_entropy"](z, y),
                 [Input(("m", 3), values=(6, 3)), Input(("m",), "int64", 0, 3, values=(6,))],
                 lambda z, y: np.mean(-np.log(_softmax(z))[np.arange(len(y)), y]), "symbolic")
    yield OpCase("astype", lambda a: F["astype"](a, "float32"), [M], lambda a: a.astype(np.float32))
    yield OpCase("astype", lambda a: F["astype"](a, "float64"), [Input((3,), "int64", -5, 5)],
                 lambda a: a.astype(np.float64), "int to float")


def _scatter_add_ref(v, i):
    out = np.zeros((3, 6))
    np.add.at(out, (slice(None), i), v)
    return out


def _gradient_op_cases():
    """Ops that differentiation introduces (adjoints of indexing, the identity basis)."""
    F = FUNCTIONS
    X = tensor("X", (4, 5))
    sliced = X[1:3, ::2]

    def slice_ref(v):
        out = np.zeros((4, 5))
        out[1:3, ::2] = v
        return out

    yield OpCase("slice_scatter", lambda v: F["slice_scatter"](v, sliced, (4, 5)), [Input((2, 3))], slice_ref)
    yield OpCase("scatter_add", lambda v, i: F["scatter_add"](v, i, 1, (3, 6)),
                 [Input((3, 5)), Input((5,), "int64", 0, 3)], _scatter_add_ref, "repeated indices add")
    yield OpCase("eye", lambda a: F["eye"](3, a.dtype) * a, [Input(())], lambda a: np.eye(3) * a)
    yield OpCase("stop_gradient", lambda a: F["stop_gradient"](a) * a, [Input((3, 4))], lambda a: a * a)


def scan_loops(h, xs, w, reverse=False):
    """The reference of the scan cases: ``h ← tanh(h ⊙ w + x_t)`` step by step, and the
    per-step outputs ``h ⊙ x_t`` (of the carry each step starts from)."""
    ys = [None] * len(xs)
    for t in (range(len(xs) - 1, -1, -1) if reverse else range(len(xs))):
        ys[t] = h * xs[t]
        h = np.tanh(h * w + xs[t])
    return h, np.stack(ys) if ys else np.zeros((0,) + np.shape(h))


def _loop_cases():
    F = FUNCTIONS

    def rnn(reverse=False):
        return lambda h, xs, w: F["scan"](lambda c, x: (F["tanh"](c * w + x), c * x), h, xs, reverse=reverse)

    specs = [Input((3,)), Input((4, 3)), Input((3,))]
    yield OpCase("scan", lambda h, xs, w: rnn()(h, xs, w)[0], specs, lambda h, xs, w: scan_loops(h, xs, w)[0],
                 "final carry", lowered=("cpu",))
    yield OpCase("scan", lambda h, xs, w: rnn(True)(h, xs, w)[0], specs,
                 lambda h, xs, w: scan_loops(h, xs, w, reverse=True)[0], "reverse", lowered=("cpu",))
    yield OpCase("scan_part", lambda h, xs, w: rnn()(h, xs, w)[1], specs, lambda h, xs, w: scan_loops(h, xs, w)[1],
                 "per-step outputs", lowered=("cpu",))

    def pack(a, b):
        from .node import make
        from .scan import scan_pack_op
        return make(scan_pack_op, (a, b), layout=((2, 3), (4,)))

    yield OpCase("scan_pack", pack, [Input((2, 3)), Input((4,))],
                 lambda a, b: np.concatenate([a.ravel(), b.ravel()]), lowered=())


def _composite_cases():
    F = FUNCTIONS
    M = Input((3, 4))
    yield OpCase("mean", lambda a: F["mean"](a, axis=0), [M], lambda a: a.mean(axis=0))
    yield OpCase("mean", lambda a: F["mean"](a), [Input(("m", "n"), values=(3, 2))], np.mean, "symbolic")
    yield OpCase("min", lambda a: F["min"](a, axis=1), [M], lambda a: a.min(axis=1))
    yield OpCase("expand_dims", lambda a: F["expand_dims"](a, 1), [M], lambda a: np.expand_dims(a, 1))
    yield OpCase("squeeze", lambda a: F["squeeze"](a), [Input((3, 1, 4, 1))], np.squeeze)


# the matrices of the linear-algebra cases: a + M with |a_ij| < 1 and M = diag(3, 3, -3) is
# diagonally dominant (never singular, well conditioned) and its determinant is negative
DOMINANT = np.diag([3.0, 3.0, -3.0])


def _dominant(a):
    return a + constant(DOMINANT.astype(a.dtype))


def _kron_ref(a, b):
    return np.kron(a, b)


def _matrix_cases():
    """inv, det, logdet, slogdet, solve, diag, diagonal, kron, norm (symdiff.ops.matrix): cpu only."""
    F = FUNCTIONS
    cpu = {"lowered": ("cpu",)}  # the cuda backend refuses them with a LoweringError
    S, B = Input((3, 3), low=-1.0, high=1.0), Input((2, 3, 3), low=-1.0, high=1.0)
    M = DOMINANT
    yield OpCase("inv", lambda a: F["inv"](_dominant(a)), [S], lambda a: np.linalg.inv(a + M), **cpu)
    yield OpCase("inv", lambda a: F["inv"](_dominant(a)), [B], lambda a: np.linalg.inv(a + M), "batched", **cpu)
    yield OpCase("det", lambda a: F["det"](_dominant(a)), [S], lambda a: np.linalg.det(a + M), **cpu)
    yield OpCase("det", lambda a: F["det"](_dominant(a)), [B], lambda a: np.linalg.det(a + M), "batched", **cpu)
    yield OpCase("logdet", lambda a: F["logdet"](_dominant(a)), [S], lambda a: np.log(np.abs(np.linalg.det(a + M))),
                 **cpu)
    yield OpCase("logdet", lambda a: F["logdet"](_dominant(a)), [B],
                 lambda a: np.linalg.slogdet(a + M)[1], "batched", **cpu)
    yield OpCase("slogdet_sign", lambda a: F["slogdet"](_dominant(a))[0], [B],
                 lambda a: np.linalg.slogdet(a + M)[0], **cpu)
    yield OpCase("solve", lambda a, b: F["solve"](_dominant(a), b), [S, Input((3,))],
                 lambda a, b: np.linalg.solve(a + M, b), "vector", **cpu)
    yield OpCase("solve", lambda a, b: F["solve"](_dominant(a), b), [S, Input((3, 2))],
                 lambda a, b: np.linalg.solve(a + M, b), **cpu)
    yield OpCase("solve", lambda a, b: F["solve"](_dominant(a), b), [B, Input((3, 2))],
                 lambda a, b: np.linalg.solve(a + M, np.broadcast_to(b, (2, 3, 2))), "batched broadcast", **cpu)
    yield OpCase("diag_embed", lambda v: F["diag"](v), [Input((4,))], np.diag, **cpu)
    yield OpCase("diag_embed", lambda v: F["diag_embed"](v), [Input((2, 3))],
                 lambda v: np.stack([np.diag(r) for r in v]), "batched", **cpu)
    yield OpCase("diagonal", lambda a: F["diagonal"](a), [Input((3, 4))], np.diagonal, **cpu)
    yield OpCase("diagonal", lambda a: F["diagonal"](a, 1), [Input((3, 4))], lambda a: np.diagonal(a, 1),
                 "offset", **cpu)
    yield OpCase("diagonal", lambda a: F["diagonal"](a, axis1=1, axis2=2), [Input((2, 3, 3))],
                 lambda a: np.diagonal(a, axis1=1, axis2=2), "batched", **cpu)
    yield OpCase("kron", lambda a, b: F["kron"](a, b), [Input((2, 3)), Input((2, 2))], _kron_ref, **cpu)
    yield OpCase("kron", lambda a, b: F["kron"](a, b), [Input((3,)), Input((2,))], _kron_ref, "vectors", **cpu)
    yield OpCase("norm", lambda a: F["norm"](a), [Input((3, 4))], np.linalg.norm, "frobenius", **cpu)
    yield OpCase("norm", lambda a: F["norm"](a), [Input((5,))], np.linalg.norm, **cpu)
    yield OpCase("outer", lambda a, b: F["outer"](a, b), [Input((3,)), Input((4,))], np.outer, **cpu)


def cases():
    """Every example: elementwise ops from their scalar forms, then structural ops."""
    for op in OPS.values():
        if isinstance(op, ElementwiseOp) and op.name != "astype":
            yield from _elementwise_cases(op)
    yield from _structural_cases()
    yield from _gradient_op_cases()
    yield from _window_cases()
    yield from _composite_cases()
    yield from _loop_cases()
    yield from _matrix_cases()


# -- extreme values: where a naive exp/log form over- or underflows -------------------------
EXTREMES = (-1e4, -50.0, 0.0, 50.0, 1e4)
# rows that overflow exp(): a dominant entry, moderate ones, all tiny, a tie at the top, all zero
EXTREME_ROWS = ((1e4, 0.0, -1e4), (50.0, -50.0, 0.0), (-1e4, -1e4, -1e4), (1e4, 1e4, 50.0), (0.0, 0.0, 0.0))
EXTREME_LABELS = (0, 2, 1, 2, 0)


def _representable(value) -> bool:
    """A real number float64 holds (underflowing to 0 is fine; inf, nan and complex are not)."""
    return bool(value.is_number and value.is_real and value.is_finite and abs(value) < 1e300)


def _evaluated(forms, params, point):
    subs = {p: sympy.Float(v, 40) for p, v in zip(params, point)}
    return [sympy.N(f.xreplace(subs), 40) for f in forms]


def _regular_at(op: ElementwiseOp, point) -> bool:
    """The op's value and partials are finite in float64 at ``point`` and the same on either side
    of it: in its domain and not at a kink (relu at 0, a tie of maximum), where the derivative is a
    convention rather than a number every mode must agree on."""
    forms = [op.scalar] + [sympy.diff(op.scalar, p) for p in op.params]
    here = _evaluated(forms, op.params, point)
    if not all(_representable(v) for v in here):
        return False
    for i, step in itertools.product(range(len(point)), (-1e-20, 1e-20)):
        near = [sympy.Float(v, 40) + (step if j == i else 0) for j, v in enumerate(point)]
        for v, h in zip(_evaluated(forms[1:], op.params, near), here[1:]):
            if not (_representable(v) and abs(v - h) <= 1e-9 * abs(h) + 1e-15):
                return False
    return True


def _elementwise_extremes(op: ElementwiseOp):
    points = [p for p in itertools.product(EXTREMES, repeat=op.arity) if _regular_at(op, p)]
    if points:
        columns = list(zip(*points))
        inputs = [Input((len(points),), points=column) for column in columns]
        yield OpCase(op.name, FUNCTIONS[op.name], inputs, scalar_reference(op), "extremes")


def _log_softmax(a, axis=-1):
    return a - _logsumexp(a, axis, True)


def _structural_extremes():
    F = FUNCTIONS
    Z = Input((5, 3), points=EXTREME_ROWS)
    labels = Input((5,), "int64", points=EXTREME_LABELS)
    yield OpCase("logsumexp", lambda a: F["logsumexp"](a, axis=1), [Z], lambda a: _logsumexp(a, 1), "extremes")
    yield OpCase("logsumexp", lambda a: F["logsumexp"](a), [Z], _logsumexp, "extremes all")
    yield OpCase("softmax", lambda a: F["softmax"](a), [Z], _softmax, "extremes")
    yield OpCase("softmax", lambda a: F["softmax"](a, axis=0), [Z], lambda a: _softmax(a, 0), "extremes axis 0")
    yield OpCase("log_softmax", lambda a: F["log_softmax"](a), [Z], _log_softmax, "extremes")
    yield OpCase("softmax_cross_entropy", lambda z, y: F["softmax_cross_entropy"](z, y), [Z, labels],
                 lambda z, y: np.mean(-_log_softmax(z)[np.arange(len(y)), y]), "extremes")


@functools.cache
def _extreme_cases() -> tuple:
    found = []
    for op in OPS.values():
        if isinstance(op, ElementwiseOp) and op.differentiable and op.name not in ("astype", "where"):
            found.extend(_elementwise_extremes(op))
    return tuple(found) + tuple(_structural_extremes())


def extreme_cases():
    """Every differentiable elementwise op at each point (or pair of points) of ``EXTREMES``
    where it is finite and smooth, and the softmax family on rows that overflow a naive exp:
    the values where every mode must still agree, in float64."""
    return list(_extreme_cases())


UNARY = ("exp", "tanh", "sigmoid", "sin", "cos", "relu", "softplus", "square", "negative", "abs")
BINARY = ("add", "subtract", "multiply", "maximum")


def random_graphs(rows=3):
    """A hypothesis strategy: (scalar function, leaves) built from random registry ops on
    A (rows, 4), B (rows, 4) and v (4,); ``rows`` may be a symbol name (a batch). Needs
    hypothesis (a test dependency)."""
    from hypothesis import strategies as st

    @st.composite
    def build(draw):
        A, B, v = tensor("A", (rows, 4)), tensor("B", (rows, 4)), tensor("v", (4,))
        F = FUNCTIONS
        pool = [A, B, v]
        for _ in range(draw(st.integers(2, 7))):
            kind = draw(st.sampled_from(["unary", "binary", "reduce", "matmul", "softmax", "slice"]))
            x = draw(st.sampled_from(pool))
            if kind == "unary":
                pool.append(F[draw(st.sampled_from(UNARY))](x))
            elif kind == "binary":
                y = draw(st.sampled_from([p for p in pool if p.ndim <= x.ndim]))
                op = draw(st.sampled_from(BINARY))
                try:
                    pool.append(F[op](x, y))
                except ValueError:  # shapes that do not broadcast: skip this step
                    pass
            elif kind == "reduce" and x.ndim:
                pool.append(F[draw(st.sampled_from(["sum", "max", "logsumexp"]))](x, axis=-1))
            elif kind == "matmul" and x.ndim == 2 and x.shape[-1] == 4:
                pool.append(x @ v)
            elif kind == "softmax" and x.ndim:
                pool.append(F["softmax"](x))
            elif kind == "slice" and x.ndim:
                pool.append(x[..., 1:])
        out = pool[-1]
        return F["sum"](out * out) if out.ndim else out * out, [A, B, v]

    return build()
