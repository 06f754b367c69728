"""Attention layers of the sequence models (issue 16), with PyTorch's signatures, parameter
names and layouts, so weights copy one to one: ``MultiheadAttention``,
``TransformerEncoderLayer`` (post-norm, PyTorch's default, or pre-norm with
``norm_first=True``), and learned ``PositionalEmbedding``.

Inputs are sequence first, (T, B, E), as PyTorch's default (``batch_first=False``) and the
LSTM here. The heads are batched: queries, keys and values are reshaped to (B, heads, T,
head_dim), the scores Q·Kᵀ/√head_dim are one batched matmul of shape (B, heads, T, S), the
softmax runs over its last axis and a causal mask (``sd.causal_mask``) fills the future with
−∞ before it.

A projection is stored as PyTorch stores a ``Linear``, weight (out, in) used as x·Wᵀ + b
(:class:`Projection`; ``nn.Linear`` keeps the course's (in, out) layout), so
``state_dict`` keys and shapes equal PyTorch's:

>>> import symdiff as sd
>>> block = TransformerEncoderLayer(8, 2, dim_feedforward=16, norm_first=True)
>>> for name, p in block.named_parameters()[:4]:
...     print(name, p.shape)
self_attn.in_proj_weight (24, 8)
self_attn.in_proj_bias (24,)
self_attn.out_proj.weight (8, 8)
self_attn.out_proj.bias (8,)
>>> block.eval()(sd.tensor("x", (5, "B", 8), "float32"), causal=True).shape
(5, B, 8)
"""

from __future__ import annotations

import math

import numpy as np

import symdiff as sd

from . import init
from .layers import Dropout
from .module import Module, Parameter
from .sequence import LayerNorm

ACTIVATIONS = {"relu": sd.relu, "gelu": sd.gelu}


def _positive(layer, **values):
    for name, v in values.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{layer}: {name} must be a positive int, got {v!r}")


def _check_sequence(layer, x, features, what="inputs"):
    """(T, B, E) with the given E, else a ShapeError naming the layout and the shape given."""
    if x.ndim != 3 or (isinstance(x.shape[-1], int) and x.shape[-1] != features):
        raise sd.ShapeError(f"{layer} takes {what} of shape (T, B, E) with E = {features} (sequence first, "
                            f"as PyTorch's default), got {tuple(x.shape)}")


class Projection(Module):
    """``x·Wᵀ + b`` with W stored (out_features, in_features), as ``torch.nn.Linear``, and its
    initialization: W and b from U(−1/√in, 1/√in). Used where PyTorch's parameter layout
    matters (the attention layers); ``nn.Linear`` keeps the course's X·W with W (in, out).

    >>> import symdiff as sd
    >>> p = Projection(3, 2)
    >>> p.weight.shape, p(sd.tensor("x", (4, "B", 3))).shape
    ((2, 3), (4, B, 2))
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: str = "float32",
                 short: str = "W"):
        super().__init__()
        _positive("Projection", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / math.sqrt(in_features)
        self.weight = Parameter(init.uniform((out_features, in_features), -bound, bound, dtype), short)
        bias_short = "b" + short[1:] if short.startswith("W") else "b"
        self.bias = (Parameter(init.uniform((out_features,), -bound, bound, dtype), bias_short)
                     if bias else None)

    def forward(self, x):
        y = x @ self.weight.leaf.T
        return y + self.bias.leaf if self.bias is not None else y


def _heads(x, num_heads):
    """(T, B, E) -> (B, heads, T, head_dim)."""
    T, B, E = x.shape
    return sd.transpose(x.reshape((T, B, num_heads, E // num_heads)), (1, 2, 0, 3))


class MultiheadAttention(Module):
    """Scaled dot-product attention over ``num_heads`` heads, as ``torch.nn.MultiheadAttention``
    (``batch_first=False``, equal query/key/value sizes): parameters ``in_proj_weight`` (3E, E)
    stacking W_q, W_k, W_v (Xavier-uniform), ``in_proj_bias`` (3E,) zeros, and ``out_proj``, a
    :class:`Projection` (E → E, bias zeros). ``forward(query, key=None, value=None,
    causal=False, attn_mask=None)`` takes (T, B, E) queries and (S, B, E) keys and values
    (self-attention when they are omitted) and returns the (T, B, E) output only (PyTorch's
    ``need_weights=False``). ``attn_mask`` is (T, S): bool True where a query may *not* look,
    or float, added to the scores (PyTorch's two kinds); ``causal=True`` masks every later
    position. ``dropout`` applies to the attention weights in training mode.

    >>> import numpy as np
    >>> import symdiff as sd
    >>> mha = MultiheadAttention(4, 2, dtype="float64")
    >>> x = sd.tensor("x", (3, 1, 4), "float64")
    >>> y = mha(x, causal=True)
    >>> v = np.random.default_rng(0).standard_normal((3, 1, 4))
    >>> out = sd.evaluate(y, {x: v, **mha.feed()})
    >>> out.shape
    (3, 1, 4)
    >>> # causal: the first position sees only itself, so its output is W_o·(W_v·x₀) (biases start at 0)
    >>> w_v = mha.in_proj_weight.data[8:]
    >>> bool(np.allclose(out[0, 0], mha.out_proj.weight.data @ (w_v @ v[0, 0])))
    True
    """

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True, dropout: float = 0.0,
                 dtype: str = "float32"):
        super().__init__()
        _positive("MultiheadAttention", embed_dim=embed_dim, num_heads=num_heads)
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim {embed_dim} is not divisible by "
                             f"num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        stacked = (3 * embed_dim, embed_dim)  # fan_in E, fan_out 3E, as PyTorch's xavier_uniform_ reads it
        w = init.xavier_uniform(embed_dim, 3 * embed_dim, shape=stacked, dtype=dtype)
        self.in_proj_weight = Parameter(w, "W_qkv")
        self.in_proj_bias = Parameter(init.zeros((3 * embed_dim,), dtype), "b_qkv") if bias else None
        self.out_proj = Projection(embed_dim, embed_dim, bias, dtype, short="W_o")
        if self.out_proj.bias is not None:
            self.out_proj.bias.data[...] = 0.0  # PyTorch zeros out_proj.bias
        self.dropout = Dropout(dropout)

    def _project(self, query, key, value):
        w = self.in_proj_weight.leaf
        b = self.in_proj_bias.leaf if self.in_proj_bias is not None else None
        if key is query and value is query:  # self-attention: one matmul, split after
            qkv = query @ w.T
            return sd.split(qkv + b if b is not None else qkv, 3, axis=-1)
        ws = sd.split(w, 3, axis=0)
        bs = sd.split(b, 3, axis=0) if b is not None else (None,) * 3
        out = []
        for x, wi, bi in zip((query, key, value), ws, bs):
            y = x @ wi.T
            out.append(y + bi if bi is not None else y)
        return out

    def _check(self, query, key, value):
        layer = f"MultiheadAttention({self.embed_dim}, {self.num_heads})"
        for what, x in (("queries", query), ("keys", key), ("values", value)):
            _check_sequence(layer, x, self.embed_dim, what)
        if key.shape[:2] != value.shape[:2]:
            raise sd.ShapeError(f"{layer}: keys {tuple(key.shape)} and values {tuple(value.shape)} must have "
                                "the same (S, B)")
        if not sd.shapes.same_dim(query.shape[1], key.shape[1]):
            raise sd.ShapeError(f"{layer}: queries {tuple(query.shape)} and keys {tuple(key.shape)} "
                                "must have the same batch size B")

    def _mask(self, scores, T, S, causal, attn_mask):
        if causal:
            if not (isinstance(T, int) and isinstance(S, int)) or T != S:
                raise sd.ShapeError(f"MultiheadAttention: causal=True needs self-attention over a concrete "
                                    f"length (T = S), got T = {T}, S = {S}")
            scores = sd.masked_fill(scores, sd.causal_mask(T), -np.inf)
        if attn_mask is not None:
            attn_mask = sd.as_node(attn_mask)
            if tuple(attn_mask.shape) != (T, S):
                raise sd.ShapeError(f"MultiheadAttention: attn_mask must be (T, S) = ({T}, {S}), "
                                    f"got {tuple(attn_mask.shape)}")
            scores = (sd.masked_fill(scores, attn_mask, -np.inf) if attn_mask.dtype == "bool"
                      else scores + attn_mask)
        return scores

    def __call__(self, query, key=None, value=None, causal=False, attn_mask=None):
        # Module.__call__ passes positional arguments only; keywords are bound here
        return super().__call__(query, key, value, causal, attn_mask)

    def forward(self, query, key=None, value=None, causal=False, attn_mask=None):
        key = query if key is None else key
        value = key if value is None else value
        self._check(query, key, value)
        T, S = query.shape[0], key.shape[0]
        q, k, v = (_heads(x, self.num_heads) for x in self._project(query, key, value))
        scores = (q @ sd.transpose(k, (0, 1, 3, 2))) * (1.0 / math.sqrt(self.head_dim))  # (B, heads, T, S)
        weights = self.dropout(sd.softmax(self._mask(scores, T, S, causal, attn_mask), axis=-1))
        out = sd.transpose(weights @ v, (2, 0, 1, 3))  # (T, B, heads, head_dim)
        return self.out_proj(out.reshape((T, query.shape[1], self.embed_dim)))


class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward block, each with a residual connection and a
    LayerNorm, as ``torch.nn.TransformerEncoderLayer`` (``batch_first=False``): post-norm
    (PyTorch's default, x ← norm(x + block(x))) or pre-norm with ``norm_first=True`` (x ← x +
    block(norm(x)), the course's GPT block). Children and parameters are PyTorch's:
    ``self_attn`` (:class:`MultiheadAttention`, its attention weights dropped out with
    ``dropout``), ``linear1`` (d_model → dim_feedforward), ``linear2`` (back), ``norm1``,
    ``norm2``, and the dropouts ``dropout`` (after the activation), ``dropout1``, ``dropout2``
    (after each block). ``bias=False`` drops every bias (the projections', the feed-forward
    layers' and the LayerNorms' β), as PyTorch's ``bias`` argument does.
    ``forward(src, causal=False)`` maps (T, B, d_model) to the same shape.

    >>> import symdiff as sd
    >>> TransformerEncoderLayer(4, 2, dim_feedforward=8, activation="gelu").linear1.weight.shape
    (8, 4)
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", norm_first: bool = False, layer_norm_eps: float = 1e-5,
                 bias: bool = True, dtype: str = "float32"):
        super().__init__()
        _positive("TransformerEncoderLayer", d_model=d_model, nhead=nhead, dim_feedforward=dim_feedforward)
        if activation not in ACTIVATIONS:
            raise ValueError(f"TransformerEncoderLayer: activation must be 'relu' or 'gelu', "
                             f"got {activation!r}")
        self.d_model, self.activation, self.norm_first = d_model, activation, bool(norm_first)
        self.self_attn = MultiheadAttention(d_model, nhead, bias=bias, dropout=dropout, dtype=dtype)
        self.linear1 = Projection(d_model, dim_feedforward, bias, dtype=dtype, short="W_ff")
        self.dropout = Dropout(dropout)
        self.linear2 = Projection(dim_feedforward, d_model, bias, dtype=dtype, short="W_ff")
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)

    def _attention_block(self, x, causal):
        return self.dropout1(self.self_attn(x, causal=causal))

    def _feed_forward_block(self, x):
        return self.dropout2(self.linear2(self.dropout(ACTIVATIONS[self.activation](self.linear1(x)))))

    def __call__(self, src, causal=False):
        return super().__call__(src, causal)  # Module.__call__ takes positional arguments only

    def forward(self, src, causal=False):
        _check_sequence(f"TransformerEncoderLayer({self.d_model})", src, self.d_model)
        x = src
        if self.norm_first:
            x = x + self._attention_block(self.norm1(x), causal)
            return x + self._feed_forward_block(self.norm2(x))
        x = self.norm1(x + self._attention_block(x, causal))
        return self.norm2(x + self._feed_forward_block(x))


class PositionalEmbedding(Module):
    """Learned absolute positions: ``x + weight[:T]`` for (T, B, E) inputs, broadcast over B;
    weight (max_len, E) from N(0, 0.02²), as GPT-2. T must be concrete and at most max_len.

    >>> import symdiff as sd
    >>> PositionalEmbedding(16, 4)(sd.tensor("x", (10, "B", 4))).shape
    (10, B, 4)
    """

    def __init__(self, max_len: int, embed_dim: int, dtype: str = "float32"):
        super().__init__()
        _positive("PositionalEmbedding", max_len=max_len, embed_dim=embed_dim)
        self.max_len, self.embed_dim = max_len, embed_dim
        self.weight = Parameter(init.normal((max_len, embed_dim), 0.0, 0.02, dtype), "P")

    def forward(self, x):
        layer = f"PositionalEmbedding({self.max_len}, {self.embed_dim})"
        _check_sequence(layer, x, self.embed_dim)
        T = x.shape[0]
        if not isinstance(T, int):
            raise sd.ShapeError(f"{layer}: the sequence length must be concrete, got {T}")
        if T > self.max_len:
            raise sd.ShapeError(f"{layer}: a sequence of length {T} exceeds max_len = {self.max_len}")
        return x + self.weight.leaf[:T].reshape((T, 1, self.embed_dim))
