"""Convolution: ``conv2d`` (and ``conv1d`` on it), with the layouts of PyTorch and ONNX ``Conv``.

``x`` is (N, C, H, W), ``w`` is (O, C/groups, kH, kW) and the output (N, O, OH, OW), with
``OH = ⌊(H + 2·pH − dH·(kH − 1) − 1) / sH⌋ + 1`` (the same along W). The op is a
cross-correlation, as in every deep-learning framework. Its derivatives are convolutions too,
written with the structural ops of :mod:`.padding` and :mod:`.movement`, so they print, and
grad-of-grad works:

- the input gradient is the convolution of the cotangent, dilated by the stride and padded
  by ``d·(k − 1) − p``, with the flipped kernel whose in and out channels are swapped;
- the weight gradient is the convolution of the input with the cotangent as kernel: batch and
  channels swap roles, and stride and dilation do too;
- the JVP is ``conv(ẋ, w) + conv(x, ẇ)`` (the op is bilinear).

>>> import symdiff as sd
>>> X, W = sd.tensor("X", ("N", 3, 8, 8)), sd.tensor("W", (4, 3, 3, 3))
>>> sd.conv2d(X, W, padding=1).shape
(N, 4, 8, 8)
>>> sd.cost(sd.conv2d(X, W, stride=2))["flops"]   # 2·N·O·OH·OW·C·kH·kW = 2·N·4·3·3·3·3·3
1944*N
"""

from __future__ import annotations

import numpy as np
import sympy

from .. import dtypes, shapes
from ..node import Node, as_node, make
from ..shapes import ShapeError, format_shape
from .elementwise import astype
from .movement import flip, getitem, reshape, transpose
from .padding import dilate, pad
from .registry import Op, Shown, function

# Above linalg: the rules are reshapes, transposes, flips, pads, dilations and convolutions.


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def pair(value, what: str, name: str, low: int) -> tuple[int, int]:
    """An int or a pair of ints (rows, columns), each at least ``low``: the argument forms of
    ``torch.nn.functional.conv2d`` and of the pooling functions."""
    items = (value, value) if _is_int(value) else value
    if not isinstance(items, (tuple, list)) or len(items) != 2 or not all(_is_int(v) for v in items):
        raise TypeError(f"{what}: {name} must be an int or a pair of ints, got {value!r}")
    if any(v < low for v in items):
        bound = "positive" if low == 1 else "non-negative"
        raise ShapeError(f"{what}: {name} must be {bound}, got {value!r}")
    return int(items[0]), int(items[1])


def output_size(size, kernel: int, stride: int, padding: int, dilation: int):
    """Output length along one axis: ``⌊(size + 2·padding − dilation·(kernel − 1) − 1) / stride⌋ + 1``,
    a sympy expression where ``size`` is symbolic.

    >>> output_size(28, 5, 1, 2, 1), output_size(sympy.Symbol("H"), 3, 2, 1, 1)
    (28, floor(H/2 - 1/2) + 1)
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if isinstance(span, int):
        return span // stride + 1
    return shapes.dim(span + 1 if stride == 1 else sympy.floor(sympy.sympify(span) / stride) + 1)


def spatial_output(what, shape, kernel, stride, padding, dilation, padded_name="padded input"):
    """(OH, OW) of a sliding window over the last two axes of ``shape``; a window larger than
    the padded input is an error that names the sizes (where they are known)."""
    out = []
    for axis, (size, k, s, p, d) in enumerate(zip(shape[-2:], kernel, stride, padding, dilation)):
        extent = d * (k - 1) + 1
        padded = size + 2 * p
        if isinstance(padded, int) and padded < extent:
            raise ShapeError(f"{what}: the kernel spans {extent} elements along axis {len(shape) - 2 + axis}, more "
                             f"than the {padded_name} has ({size} + 2·{p} = {padded}); input shape "
                             f"{format_shape(shape)}")
        out.append(output_size(size, k, s, p, d))
    return tuple(out)


def windows(x: np.ndarray, kernel, stride, dilation, out_hw) -> np.ndarray:
    """The sliding windows of an already padded ``x`` (..., H, W) as (..., OH, OW, kH, kW), by
    fancy indexing (object arrays of sympy expressions too): the reference of every window op."""
    rows = (np.arange(out_hw[0]) * stride[0])[:, None] + (np.arange(kernel[0]) * dilation[0])[None, :]
    cols = (np.arange(out_hw[1]) * stride[1])[:, None] + (np.arange(kernel[1]) * dilation[1])[None, :]
    return x[..., rows[:, None, :, None], cols[None, :, None, :]]


# -- the op --------------------------------------------------------------------------------
def _conv_infer(inputs, attrs):
    x, w = inputs
    n, o, (kh, kw) = x.shape[0], w.shape[0], w.shape[2:]
    oh, ow = spatial_output("conv2d", x.shape, (kh, kw), attrs["stride"], attrs["padding"], attrs["dilation"])
    return (n, o, oh, ow), x.dtype


def _conv_evaluate(values, attrs, out_shape, bindings):
    x, w = values
    (ph, pw), g = attrs["padding"], attrs["groups"]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    o, cg = w.shape[:2]
    win = windows(xp, w.shape[2:], attrs["stride"], attrs["dilation"], out_shape[2:])  # N, C, OH, OW, kH, kW
    og = o // g
    parts = [np.tensordot(win[:, k * cg:(k + 1) * cg], w[k * og:(k + 1) * og], axes=([1, 4, 5], [1, 2, 3]))
             for k in range(g)]  # each (N, OH, OW, O/g)
    out = np.concatenate(parts, axis=-1) if g > 1 else parts[0]
    return np.ascontiguousarray(np.moveaxis(out, -1, 1)).astype(x.dtype, copy=False)


def _conv_flops(node):
    w = node.inputs[1]
    return 2 * shapes.numel(node.shape) * shapes.numel(w.shape[1:])


conv2d_op = Op("conv2d", infer=_conv_infer, evaluate=_conv_evaluate, flops=_conv_flops, kernel="conv2d",
               print_attrs=(Shown("stride", default=(1, 1)), Shown("padding", default=(0, 0)),
                            Shown("dilation", default=(1, 1)), Shown("groups", default=1)),
               pretty_attrs=True,
               doc="2-D cross-correlation, (N, C, H, W) ⋆ (O, C/groups, kH, kW) -> (N, O, OH, OW)")


def _conv(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    return make(conv2d_op, (x, w), stride=stride, padding=padding, dilation=dilation, groups=groups)


# -- its derivatives -----------------------------------------------------------------------
def _unfold(y, lead, n):
    """(B·N, ...) back to (B.., N, ...)."""
    return reshape(y, tuple(lead) + (n,) + y.shape[1:]) if lead else y


def _with_lead(t, nb):
    """``t``'s ``nb`` leading (tangent) axes, and ``t`` with them folded into the batch axis."""
    lead = t.shape[:nb]
    return lead, (reshape(t, (shapes.numel(t.shape[:nb + 1]),) + t.shape[nb + 1:]) if nb else t)


def _attrs(node):
    return (node.attr("stride"), node.attr("padding"), node.attr("dilation"), node.attr("groups"))


def _batched_weight(tw, nb, groups):
    """A batch of weights (B.., O, C/g, kH, kW) as one of B·O output channels, in the order a grouped
    convolution needs (group-major: (g, O/g, B)), and how to put its output back."""
    lead = tw.shape[:nb]
    b = shapes.numel(lead)
    o, cg, kh, kw = tw.shape[nb:]
    og = o // groups
    t = reshape(tw, (b, groups, og, cg, kh, kw))
    t = reshape(transpose(t, (1, 2, 0, 3, 4, 5)), (o * b, cg, kh, kw))

    def back(y):  # (N, g·O/g·B, OH, OW) -> (B.., N, O, OH, OW)
        n, _, oh, ow = y.shape
        y = transpose(reshape(y, (n, groups, og, b, oh, ow)), (3, 0, 1, 2, 4, 5))
        return reshape(y, tuple(lead) + (n, o, oh, ow))

    return t, back


@conv2d_op.defjvp
def _conv_jvp(node, ts, nb):
    x, w = node.inputs
    stride, padding, dilation, groups = _attrs(node)
    tx, tw = ts
    total = None
    if tx is not None:
        lead, flat = _with_lead(tx, nb)
        total = _unfold(_conv(flat, w, stride, padding, dilation, groups), lead, x.shape[0])
    if tw is not None:
        flat, back = _batched_weight(tw, nb, groups) if nb else (tw, None)
        term = _conv(x, flat, stride, padding, dilation, groups)
        term = back(term) if back else term
        total = term if total is None else total + term
    return total


def _pad_or_crop(t, widths):
    """``t`` padded with zeros by ``(before, after)`` along its last two axes, negative widths
    cropping instead."""
    crop = tuple(slice(-b if b < 0 else None, (d + a) if a < 0 else None) for d, (b, a) in zip(t.shape[-2:], widths))
    if any(s.start is not None or s.stop is not None for s in crop):
        t = getitem(t, (Ellipsis,) + crop)
    grow = tuple((max(b, 0), max(a, 0)) for b, a in widths)
    return pad(t, ((0, 0),) * (t.ndim - 2) + grow) if any(g != (0, 0) for g in grow) else t


def conv_input_grad(ct, w, input_hw, stride, padding, dilation, groups):
    """∂⟨ct, conv(x, w)⟩/∂x for x of spatial size ``input_hw``: the convolution of the dilated,
    padded cotangent (N, O, OH, OW) with the flipped kernel, channels swapped (a transposed
    convolution, written as what it is)."""
    o, cg, kh, kw = w.shape
    if groups == 1:
        wt = transpose(w, (1, 0, 2, 3))
    else:  # (g·O/g, C/g, ..) -> (g·C/g, O/g, ..): in and out channels swapped within each group
        og = o // groups
        wt = reshape(transpose(reshape(w, (groups, og, cg, kh, kw)), (0, 2, 1, 3, 4)), (groups * cg, og, kh, kw))
    wt = flip(wt, (2, 3))
    d = ct
    if stride[0] == stride[1]:
        d = dilate(d, stride[0] - 1, (2, 3))
    else:
        d = dilate(dilate(d, stride[0] - 1, 2), stride[1] - 1, 3)
    widths = []
    for k, size, p, dl, length in zip((kh, kw), input_hw, padding, dilation, d.shape[2:]):
        before = dl * (k - 1) - p
        widths.append((before, size + p - length))  # the right side: what makes the output `size` long
    return _conv(_pad_or_crop(d, widths), wt, (1, 1), (0, 0), dilation, groups)


def conv_weight_grad(x, ct, kernel_hw, stride, padding, dilation, groups):
    """∂⟨ct, conv(x, w)⟩/∂w: the convolution of the input (channels as batch, batch as channels)
    with the cotangent as kernel, stride and dilation swapped, cut to the kernel's size."""
    n, c, _, _ = x.shape
    o, oh, ow = ct.shape[1:]
    if groups == 1:
        xt, kt = transpose(x, (1, 0, 2, 3)), transpose(ct, (1, 0, 2, 3))
    else:  # x as (C/g, g·N, H, W), ct as (O, N, OH, OW): group k reads channels k·N .. k·N + N - 1
        cg, og = c // groups, o // groups
        xt = reshape(transpose(reshape(x, (n, groups, cg) + x.shape[2:]), (2, 1, 0, 3, 4)),
                     (cg, groups * n) + x.shape[2:])
        kt = reshape(transpose(reshape(ct, (n, groups, og, oh, ow)), (1, 2, 0, 3, 4)), (o, n, oh, ow))
    y = _conv(xt, kt, dilation, padding, stride, groups)  # (C/g, O, kH', kW'), kH' ≥ kH
    if not (shapes.same_dim(y.shape[2], kernel_hw[0]) and shapes.same_dim(y.shape[3], kernel_hw[1])):
        y = getitem(y, (slice(None), slice(None), slice(0, kernel_hw[0]), slice(0, kernel_hw[1])))
    return transpose(y, (1, 0, 2, 3))


@conv2d_op.defvjp
def _conv_vjp(node, ct, nb, needed=None):
    needed = needed or (True, True)
    x, w = node.inputs
    stride, padding, dilation, groups = _attrs(node)
    dx = dw = None
    if needed[0]:
        lead, flat = _with_lead(ct, nb)
        dx = _unfold(conv_input_grad(flat, w, x.shape[2:], stride, padding, dilation, groups), lead, x.shape[0])
    if needed[1]:
        if nb == 0:
            dw = conv_weight_grad(x, ct, w.shape[2:], stride, padding, dilation, groups)
        else:  # the batch of cotangents becomes more output channels: (B.., N, O, ..) -> (N, O·B, ..)
            lead = ct.shape[:nb]
            b = shapes.numel(lead)
            n, o, oh, ow = ct.shape[nb:]
            og = o // groups
            c = reshape(ct, (b, n, groups, og, oh, ow))
            c = reshape(transpose(c, (1, 2, 3, 0, 4, 5)), (n, o * b, oh, ow))
            y = conv_weight_grad(x, c, w.shape[2:], stride, padding, dilation, groups)  # (g·O/g·B, C/g, kH, kW)
            cg, kh, kw = w.shape[1:]
            y = transpose(reshape(y, (groups, og, b, cg, kh, kw)), (2, 0, 1, 3, 4, 5))
            dw = reshape(y, tuple(lead) + w.shape)
    return [dx, dw]


# -- public functions ------------------------------------------------------------------------
def _same_padding(kernel, dilation):
    """PyTorch's padding="same" for stride 1: (before, after) per axis, the extra one after."""
    total = [d * (k - 1) for k, d in zip(kernel, dilation)]
    return [(t // 2, t - t // 2) for t in total]


@function
def conv2d(x, w, stride=1, padding=0, dilation=1, groups=1) -> Node:
    """2-D convolution as ``torch.nn.functional.conv2d(x, w, stride=..., padding=...,
    dilation=..., groups=...)`` (no bias: add it, ``conv2d(x, w) + b.reshape((1, O, 1, 1))``).
    ``x`` is (N, C, H, W) or (C, H, W), ``w`` is (O, C/groups, kH, kW); ``stride``,
    ``padding`` and ``dilation`` are an int or a pair, ``padding`` also ``"valid"`` or
    ``"same"`` (stride 1). N, H and W may be symbolic.

    >>> import numpy as np
    >>> import symdiff as sd
    >>> X, W = sd.tensor("X", ("N", 1, 5, 5)), sd.tensor("W", (2, 1, 3, 3))
    >>> Y = sd.conv2d(X, W, stride=2, padding=1)
    >>> print(Y, Y.shape)
    conv2d(X, W, stride=(2, 2), padding=(1, 1)) (N, 2, 3, 3)
    >>> sd.evaluate(sd.conv2d(X, W), {X: np.ones((1, 1, 5, 5)), W: np.ones((2, 1, 3, 3))})[0, 0].tolist()
    [[9.0, 9.0, 9.0], [9.0, 9.0, 9.0], [9.0, 9.0, 9.0]]
    >>> sd.conv2d(X, sd.tensor("V", (2, 3, 3, 3)))
    Traceback (most recent call last):
    ...
    symdiff.shapes.ShapeError: conv2d: the input has 1 channel but the weight (2, 3, 3, 3) expects 3 (groups=1)
    """
    x, w = as_node(x), as_node(w)
    if x.ndim == 3:
        y = conv2d(reshape(x, (1,) + x.shape), w, stride, padding, dilation, groups)
        return reshape(y, y.shape[1:])
    if x.ndim != 4:
        raise ShapeError(f"conv2d: the input must be (N, C, H, W) or (C, H, W), got {format_shape(x.shape)}")
    if w.ndim != 4:
        raise ShapeError(f"conv2d: the weight must be (O, C/groups, kH, kW), got {format_shape(w.shape)}")
    for name, node in (("input", x), ("weight", w)):
        if not dtypes.is_float(node.dtype):
            raise TypeError(f"conv2d: the {name} must be float32 or float64, got {node.dtype}")
    common = dtypes.promote(x.dtype, w.dtype)
    x, w = astype(x, common), astype(w, common)
    if not _is_int(groups) or groups < 1:
        raise ShapeError(f"conv2d: groups must be a positive int, got {groups!r}")
    groups = int(groups)
    for what, size in (("kernel", w.shape[2]), ("kernel", w.shape[3])):
        if not isinstance(size, int):
            raise ShapeError(f"conv2d: the kernel size must be concrete, got {format_shape(w.shape)}")
        if size < 1:
            raise ShapeError(f"conv2d: the weight {format_shape(w.shape)} has an empty kernel")
    c, o, cg = x.shape[1], w.shape[0], w.shape[1]
    if not isinstance(c, int) or not isinstance(o, int) or not isinstance(cg, int):
        raise ShapeError(f"conv2d: channel counts must be concrete, got input {format_shape(x.shape)} and weight "
                         f"{format_shape(w.shape)}")
    if c % groups or o % groups:
        raise ShapeError(f"conv2d: groups={groups} must divide the input's {c} channels and the weight's {o} output "
                         "channels")
    if c != cg * groups:
        raise ShapeError(f"conv2d: the input has {c} channel{'s' if c != 1 else ''} but the weight "
                         f"{format_shape(w.shape)} expects {cg * groups} (groups={groups})")
    stride = pair(stride, "conv2d", "stride", 1)
    dilation = pair(dilation, "conv2d", "dilation", 1)
    kernel = (w.shape[2], w.shape[3])
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if stride != (1, 1):
                raise ShapeError(f"conv2d: padding='same' needs stride 1, got stride={stride}")
            widths = _same_padding(kernel, dilation)
            if any(b != a for b, a in widths):  # odd total: the extra row/column after, as PyTorch
                return _conv(pad(x, ((0, 0), (0, 0)) + tuple(widths)), w, stride, (0, 0), dilation, groups)
            padding = (widths[0][0], widths[1][0])
        else:
            raise ShapeError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    padding = pair(padding, "conv2d", "padding", 0)
    return _conv(x, w, stride, padding, dilation, groups)


@function
def conv1d(x, w, stride=1, padding=0, dilation=1, groups=1) -> Node:
    """1-D convolution as ``torch.nn.functional.conv1d``: ``x`` (N, C, L), ``w`` (O, C/groups, k),
    computed as a ``conv2d`` over a height of 1.

    >>> import symdiff as sd
    >>> sd.conv1d(sd.tensor("x", ("N", 2, 10)), sd.tensor("w", (3, 2, 4)), stride=2).shape
    (N, 3, 4)
    """
    x, w = as_node(x), as_node(w)
    if x.ndim != 3 or w.ndim != 3:
        raise ShapeError(f"conv1d: the input must be (N, C, L) and the weight (O, C/groups, k), got "
                         f"{format_shape(x.shape)} and {format_shape(w.shape)}")
    y = conv2d(reshape(x, (x.shape[0], x.shape[1], 1, x.shape[2])), reshape(w, (w.shape[0], w.shape[1], 1, w.shape[2])),
               stride=(1, _one(stride, "stride")), padding=padding if isinstance(padding, str) else (0, _one(padding, "padding")),
               dilation=(1, _one(dilation, "dilation")), groups=groups)
    return reshape(y, (y.shape[0], y.shape[1], y.shape[3]))


def _one(v, name):
    if isinstance(v, (tuple, list)) and len(v) == 1:
        v = v[0]
    if not _is_int(v):
        raise TypeError(f"conv1d: {name} must be an int, got {v!r}")
    return int(v)


__all__ = ["conv1d", "conv2d", "conv_input_grad", "conv_weight_grad", "output_size", "pair", "windows"]
