"""Blocked band attention: each query block against its window of key blocks.

The core of `LongformerAttention`, written once with a hand-made gradient.
Queries are cut into blocks of c rows; block i meets the K = (2p + 1) c keys
of blocks i - p, ..., i + p (its "window", built by the caller with
`neighbour_blocks`), plus optionally G global keys shared by every block.
Every product is one batched matmul over (batch, heads, lanes, blocks); the
softmax over the K + G columns is computed in float32 from an additive
bias: a static (c, K) band bias (numpy, 0 or MASK_VALUE) plus a small per-block
key bias (which keys of the window exist and are real).

Einsum letters: B batch, N heads, d dilation lane, q query block, c row of
a block, k key column of the window (K), g global key (G), H key_dim,
V value_dim.

Why a hand-made gradient (`band_attention`): autodiff of a masked softmax
keeps the scores, the mask and the probabilities and makes two extra
passes over the (B, N, d, nb, c, K) tensor in the backward pass. Here the
forward pass keeps only the probabilities P, and the backward pass is

    dP = dO V^T,  delta = rowsum(dO * O),  dS = P * (dP - delta),
    dQ = dS K,    dK = dS^T Q,             dV = P^T dO,

one elementwise pass over the large tensor (delta comes from the small
(c, V) output, as in FlashAttention). Masked entries have P == 0, so they
get no gradient without any mask in the backward pass.
"""

import numpy as np
from keras import ops

from kzoo.layers.attention.masking import EMPTY_ROW_THRESHOLD
from kzoo.layers.attention.masking import MASK_VALUE
from kzoo.layers.attention.masking import additive_mask


def _local(equation, x, y):
    """A local-band einsum over the (B, N, d, nb) block axes.

    `equation` names the two trailing axes of each operand after the four
    block axes "bndq", e.g. "bndqch,bndqkh->bndqck". The block axes are
    flattened into one batch axis first, so that XLA emits one rank-3
    batched matmul (on a 2-core CPU a few per cent faster for the whole
    layer than the 6-D einsum).
    """
    lead = tuple(x.shape[1:4])  # (N, d, nb), static
    flat = equation.replace("bndq", "z")
    out = ops.einsum(
        flat,
        ops.reshape(x, (-1,) + tuple(x.shape[4:])),
        ops.reshape(y, (-1,) + tuple(y.shape[4:])),
    )
    return ops.reshape(out, (-1,) + lead + tuple(out.shape[1:]))


def band_bias(block, previous, following, reach):
    """(c, K) static float32 bias: 0 where a query may see a window key.

    Row a of block i is the query at lane step i * c + a; column j of its
    window is the key at lane step (i - previous) * c + j. The query sees
    the key when their distance is at most `reach` lane steps.
    """
    rows = np.arange(block)[:, None]
    cols = np.arange((previous + 1 + following) * block)[None, :]
    distance = np.abs(cols - previous * block - rows)
    return np.where(distance <= reach, 0.0, MASK_VALUE).astype("float32")


def key_bias(key_valid):
    """(..., K) boolean key validity -> (..., 1, K) float32 additive bias."""
    return ops.expand_dims(additive_mask(key_valid), -2)


def band_attention_forward(
    q, kw, vw, bias, keys_bias, globals_=None, dropout=None
):
    """Softmax attention of each query block over its window (+ globals).

    Args:
        q: (B, N, d, nb, c, H) queries, already scaled.
        kw: (B, N, d, nb, K, H) each block's window of keys.
        vw: (B, N, d, nb, K, V) each block's window of values.
        bias: (c, K) static float32 band bias (numpy or tensor).
        keys_bias: float32 additive bias broadcastable to
            (B, N, d, nb, c, K), from `key_bias`.
        globals_: None, or `(kg, vg, g_bias)`: (B, G, N, H) global keys,
            (B, G, N, V) global values and a (B, G) float32 additive bias;
            every query also sees these G columns.
        dropout: None, or a function applied to the probabilities (in the
            value dtype) before they meet the values.

    Returns:
        `(out, probs)`: (B, N, d, nb, c, V) in the value dtype, and the
        float32 probabilities `(p, pg)` (pg is None without globals).
        A row that sees no key gets all-zero probabilities.
    """
    scores = ops.cast(_local("bndqch,bndqkh->bndqck", q, kw), "float32")
    scores = scores + bias + keys_bias  # (B, N, d, nb, c, K)
    top = ops.max(scores, axis=-1, keepdims=True)  # (B, N, d, nb, c, 1)
    g_scores = None
    if globals_ is not None:
        kg, _, g_bias = globals_
        g_scores = ops.einsum("bndqch,bgnh->bndqcg", q, kg)
        g_scores = ops.cast(g_scores, "float32") + g_bias[:, None, None, None, None, :]
        top = ops.maximum(top, ops.max(g_scores, axis=-1, keepdims=True))
    top = ops.stop_gradient(top)
    e = ops.exp(scores - top)
    total = ops.sum(e, axis=-1, keepdims=True)
    if g_scores is not None:
        eg = ops.exp(g_scores - top)
        total = total + ops.sum(eg, axis=-1, keepdims=True)
    # 1 / total for rows that saw a key, 0 for rows that saw none.
    scale = ops.where(top > EMPTY_ROW_THRESHOLD, 1.0 / total, 0.0)
    p = e * scale  # (B, N, d, nb, c, K) float32
    pv = ops.cast(p, vw.dtype)
    if dropout is not None:
        pv = dropout(pv)
    out = _local("bndqck,bndqkv->bndqcv", pv, vw)
    pg = None
    if g_scores is not None:
        _, vg, _ = globals_
        pg = eg * scale  # (B, N, d, nb, c, G)
        pgv = ops.cast(pg, vg.dtype)
        if dropout is not None:
            pgv = dropout(pgv)
        out = out + ops.einsum("bndqcg,bgnv->bndqcv", pgv, vg)
    return out, (p, pg)


def band_attention(q, kw, vw, bias, keys_bias, globals_=None):
    """`band_attention_forward` (no dropout) with the hand-made gradient.

    Same arguments and output as `band_attention_forward`, output only.
    Gradients flow to q, kw, vw and the global keys and values; the biases
    get none (they come from masks).
    """
    bias = ops.convert_to_tensor(bias)
    if globals_ is None:

        @ops.custom_gradient
        def local(q, kw, vw, keys_bias):
            out, (p, _) = band_attention_forward(q, kw, vw, bias, keys_bias)

            def grad(*args, upstream=None):
                d_out = args[0] if upstream is None else upstream
                dq, dkw, dvw, _, _ = _band_backward(q, kw, vw, out, p, d_out)
                return dq, dkw, dvw, ops.zeros_like(keys_bias)

            return out, grad

        return local(q, kw, vw, keys_bias)

    @ops.custom_gradient
    def with_globals(q, kw, vw, keys_bias, kg, vg, g_bias):
        out, (p, pg) = band_attention_forward(
            q, kw, vw, bias, keys_bias, (kg, vg, g_bias)
        )

        def grad(*args, upstream=None):
            d_out = args[0] if upstream is None else upstream
            dq, dkw, dvw, ds_delta, d_out = _band_backward(
                q, kw, vw, out, p, d_out
            )
            delta, dtype = ds_delta
            dpg = ops.cast(ops.einsum("bndqcv,bgnv->bndqcg", d_out, vg), "float32")
            dsg = ops.cast(pg * (dpg - delta), dtype)  # (B, N, d, nb, c, G)
            dq = dq + ops.einsum("bndqcg,bgnh->bndqch", dsg, kg)
            dkg = ops.einsum("bndqcg,bndqch->bgnh", dsg, q)
            dvg = ops.einsum(
                "bndqcg,bndqcv->bgnv", ops.cast(pg, vg.dtype), d_out
            )
            zeros = (ops.zeros_like(keys_bias), ops.zeros_like(g_bias))
            return dq, dkw, dvw, zeros[0], dkg, dvg, zeros[1]

        return out, grad

    kg, vg, g_bias = globals_
    return with_globals(q, kw, vw, keys_bias, kg, vg, g_bias)


def _band_backward(q, kw, vw, out, p, d_out):
    """Gradients of the band part; also returns (delta, dtype) for globals."""
    d_out = ops.cast(d_out, out.dtype)  # (B, N, d, nb, c, V)
    dp = ops.cast(_local("bndqcv,bndqkv->bndqck", d_out, vw), "float32")
    delta = ops.sum(
        ops.cast(d_out, "float32") * ops.cast(out, "float32"),
        axis=-1,
        keepdims=True,
    )  # (B, N, d, nb, c, 1)
    ds = ops.cast(p * (dp - delta), q.dtype)  # (B, N, d, nb, c, K)
    dq = _local("bndqck,bndqkh->bndqch", ds, kw)
    dkw = _local("bndqck,bndqch->bndqkh", ds, q)
    dvw = _local("bndqck,bndqcv->bndqkv", ops.cast(p, vw.dtype), d_out)
    return dq, dkw, dvw, (delta, q.dtype), d_out
