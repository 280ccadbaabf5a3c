"""Sparse Transformer causal attention: strided and fixed patterns, blockwise.

Einsum letters used in this file:
    B batch, N heads, H key_dim, V value_dim, i query block and j key block
    (nb blocks of `stride` = l rows), a row of a query block, k key column of
    the local window, e summary column.
"""

import keras
import numpy as np
from keras import ops

from kzoo.layers.attention.blocking import neighbour_blocks
from kzoo.layers.attention.blocking import pad_axis
from kzoo.layers.attention.blocking import padded_length
from kzoo.layers.attention.masking import masked_softmax
from kzoo.layers.attention.multi_head_attention import MultiHeadAttention
from kzoo.layers.attention.multi_head_attention import PatternSupport
from kzoo.utils.validation import as_bool_mask
from kzoo.utils.validation import check_one_of
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import static_shape


@keras.saving.register_keras_serializable(package="kzoo")
class SparseTransformerAttention(MultiHeadAttention):
    """Causal factorized self-attention with the strided or fixed pattern.

    Implements the attention of "Generating Long Sequences with Sparse
    Transformers" (Child, Gray, Radford and Sutskever, 2019), in its
    "merged head" form: every head attends to the union of the pattern's
    two factors. With stride l, query t sees key s <= t when

    - `pattern="strided"`: t - s < l (the previous l tokens) or
      (t - s) is a multiple of l;
    - `pattern="fixed"`: s is in t's block of l tokens (floor(s / l) ==
      floor(t / l)) or s is one of the last `num_summary` tokens of a block
      (s mod l >= l - num_summary).

    Computed blockwise, never as an n x n tensor: the local factor as
    (l x 2l) or (l x l) blocks, the strided factor as attention along the
    columns of the (n / l, l) reshaped sequence, the fixed factor's summary
    keys gathered once; both factors share one float32 softmax. Time and
    memory O(n * (l + n / l)), O(n * sqrt(n)) with l ~ sqrt(n).
    `attention_pattern(sequence_length)` returns the equivalent dense mask.

    Same variables, in the same order, as `kzoo.layers.MultiHeadAttention`
    and `keras.layers.MultiHeadAttention`. Sequences whose length is not a
    multiple of `stride` are padded inside and the padding cut from the
    output. A sequence length unknown at trace time (a SavedModel signature
    with a None length) falls back to the same attention computed densely
    with the explicit mask (same numbers, O(n^2)).

    Args:
        num_heads: number of attention heads N.
        key_dim: size H of each head for query and key.
        pattern: "strided" or "fixed".
        stride: the block length / stride l.
        num_summary: for "fixed", the c summary tokens at the end of each
            block (1 <= c <= stride); ignored for "strided".
        **kwargs: `value_dim`, `dropout`, `use_bias`, `output_dim`,
            `kernel_initializer`, `bias_initializer`, `seed` as for
            `MultiHeadAttention`, and base layer arguments.

    Call arguments:
        query: (B, T, D), the sequence (causal self-attention only).
        padding_mask: (B, T) bool, True for real tokens.
        use_causal_mask: must be True: the pattern is causal only (False
            raises the dense core's shared `ValueError`, as do a `value` /
            `key` other than `query`, `attention_mask`, `attention_bias`,
            `cache` and `return_attention_scores`).
        training: whether dropout is active.

    Returns:
        (B, T, output_dim). A row that sees no real token gets zero
        attention (the output bias only), never NaN.

    Example:

    >>> import keras
    >>> from kzoo.layers import SparseTransformerAttention
    >>> layer = SparseTransformerAttention(num_heads=2, key_dim=8,
    ...                                    pattern="fixed", stride=4)
    >>> x = keras.random.normal((2, 16, 16))
    >>> tuple(layer(x, use_causal_mask=True).shape)
    (2, 16, 16)
    """

    _pattern_summary = "the causal strided / fixed factorized pattern"
    _support = PatternSupport.sparse_self_attention(causal_forms=(True,))

    def __init__(
        self, num_heads, key_dim, pattern="strided", stride=16, num_summary=1, **kwargs
    ):
        super().__init__(num_heads=num_heads, key_dim=key_dim, **kwargs)
        self.pattern = check_one_of("pattern", pattern, {"strided", "fixed"})
        self.stride = check_positive_int("stride", stride)
        self.num_summary = check_positive_int("num_summary", num_summary)
        if self.num_summary > self.stride:
            raise ValueError(
                f"`num_summary` must be at most `stride` ({self.stride}); "
                f"received {num_summary}"
            )

    def attention_pattern(self, sequence_length):
        """The dense causal (T, T) boolean mask of the pattern (for tests)."""
        t = np.arange(sequence_length)[:, None]
        s = np.arange(sequence_length)[None, :]
        l = self.stride
        if self.pattern == "strided":
            allowed = ((t - s) < l) | ((t - s) % l == 0)
        else:
            allowed = (s // l == t // l) | (s % l >= l - self.num_summary)
        return allowed & (s <= t)

    def _compute_attention(self, query, key, value, padding_mask=None,
                           training=None, **kwargs):
        """The factorized pattern on (B, T, N, H) heads -> (B, T, N, V)."""
        length = static_shape(query)[1]
        if length is None:
            return self._dense_pattern(query, key, value, padding_mask, training), None
        l = self.stride
        padded = padded_length(length, l)
        nb, extra = padded // l, padded - length
        if padding_mask is None:
            valid = ops.ones(ops.shape(query)[:2], "bool")
        else:
            valid = as_bool_mask(padding_mask)
        valid = ops.reshape(pad_axis(valid, 1, 0, extra, False), (-1, 1, nb, l))

        def blocks(x):  # (B, T, N, F) -> (B, N, nb, l, F)
            x = ops.reshape(pad_axis(x, 1, 0, extra), (-1, nb, l) + tuple(x.shape[2:]))
            return ops.transpose(x, (0, 3, 1, 2, 4))

        q = blocks(ops.multiply(query, ops.cast(self._inverse_sqrt_key_dim, query.dtype)))
        k, v = blocks(key), blocks(value)  # (B, N, nb, l, H|V)
        if self.pattern == "strided":
            parts = self._strided_factors(q, k, v, valid)
        else:
            parts = self._fixed_factors(q, k, v, valid)
        out = self._combine(*parts, training)  # (B, N, nb, l, V)
        out = ops.transpose(out, (0, 2, 3, 1, 4))  # (B, nb, l, N, V)
        return ops.reshape(out, (-1, padded, self.num_heads, out.shape[-1]))[:, :length], None

    def _strided_factors(self, q, k, v, valid):
        """Local: the previous l tokens (blocks i-1 and i); far: the same row
        of every earlier block. Returns scores, masks and values of both."""
        l, nb = self.stride, q.shape[2]
        a = np.arange(l)[:, None]
        k_loc = neighbour_blocks(k, 2, previous=1, following=0)  # (B,N,nb,2l,H)
        v_loc = neighbour_blocks(v, 2, previous=1, following=0)
        m_loc = neighbour_blocks(valid, 2, value=False, previous=1, following=0)
        j = np.arange(2 * l)[None, :]
        band = (j > a) & (j <= a + l)  # 0 <= t - s < l, as (l, 2l)
        m_loc = ops.logical_and(m_loc[:, :, :, None, :], band)  # (B,1,nb,l,2l)
        s_loc = ops.einsum("bniah,bnikh->bniak", q, k_loc)  # (B,N,nb,l,2l)
        s_far = ops.einsum("bniah,bnjah->bniaj", q, k)  # (B,N,nb,l,nb)
        earlier = np.arange(nb)[:, None] > np.arange(nb)[None, :]  # (i, j): j < i
        m_far = ops.logical_and(
            ops.transpose(valid, (0, 1, 3, 2))[:, :, None],  # (B,1,1,l,nb)
            earlier[:, None, :],  # (nb, 1, nb)
        )  # (B, 1, nb, l, nb)
        return (s_loc, m_loc, v_loc, "bniak,bnikv->bniav"), (
            s_far, m_far, v, "bniaj,bnjav->bniav")

    def _fixed_factors(self, q, k, v, valid):
        """Local: own block, causal; far: the last c tokens of every earlier
        block (the summaries). Returns scores, masks and values of both."""
        l, nb, c = self.stride, q.shape[2], self.num_summary
        n = self.num_heads
        a = np.arange(l)[:, None]
        m_loc = ops.logical_and(
            valid[:, :, :, None, :], a >= np.arange(l)[None, :]
        )  # (B, 1, nb, l, l)
        s_loc = ops.einsum("bniah,bnikh->bniak", q, k)  # (B,N,nb,l,l)
        k_sum = ops.reshape(k[:, :, :, l - c :], (-1, n, nb * c, k.shape[-1]))
        v_sum = ops.reshape(v[:, :, :, l - c :], (-1, n, nb * c, v.shape[-1]))
        s_far = ops.einsum("bniah,bneh->bniae", q, k_sum)  # (B,N,nb,l,nb*c)
        m_sum = ops.reshape(valid[:, :, :, l - c :], (-1, 1, 1, 1, nb * c))
        earlier = np.arange(nb)[:, None] > np.arange(nb)[None, :]
        m_far = ops.logical_and(
            m_sum, np.repeat(earlier, c, axis=1)[:, None, :]
        )  # (B, 1, nb, l, nb*c)
        return (s_loc, m_loc, v, "bniak,bnikv->bniav"), (
            s_far, m_far, v_sum, "bniae,bnev->bniav")

    def _combine(self, local, far, training):
        """One float32 softmax over both factors' columns, then the values."""
        s_loc, m_loc, v_loc, loc_eq = local
        s_far, m_far, v_far, far_eq = far
        batch, nb, l = ops.shape(s_loc)[0], s_loc.shape[2], s_loc.shape[3]
        width = s_loc.shape[-1]
        probs = masked_softmax(
            ops.concatenate([s_loc, s_far], axis=-1),
            ops.concatenate(
                [
                    ops.broadcast_to(m_loc, (batch, 1, nb, l, width)),
                    ops.broadcast_to(m_far, (batch, 1, nb, l, s_far.shape[-1])),
                ],
                axis=-1,
            ),
        )  # (B, N, nb, l, width + far), float32
        probs = self._dropout_layer(ops.cast(probs, v_loc.dtype), training=training)
        out = ops.einsum(loc_eq, probs[..., :width], v_loc)  # (B, N, nb, l, V)
        return out + ops.einsum(far_eq, probs[..., width:], v_far)

    def _dense_pattern(self, q, k, v, padding_mask, training):
        """The same attention computed densely, O(n^2), for a dynamic length.

        Used only when the sequence length is unknown at trace time (e.g. a
        SavedModel signature with a None length); numbers are the same.
        """
        length = ops.shape(q)[1]
        pos = ops.arange(length, dtype="int32")
        t, s = ops.expand_dims(pos, 1), ops.expand_dims(pos, 0)
        l = self.stride
        if self.pattern == "strided":
            mask = ops.logical_or(t - s < l, ops.mod(t - s, l) == 0)
        else:
            mask = ops.logical_or(
                ops.floor_divide(s, l) == ops.floor_divide(t, l),
                ops.mod(s, l) >= l - self.num_summary,
            )
        out, _ = super()._compute_attention(
            q, k, v, padding_mask=padding_mask, attention_mask=mask[None, None],
            use_causal_mask=True, training=training,
        )  # (B, T, N, V)
        return out

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "pattern": self.pattern,
                "stride": self.stride,
                "num_summary": self.num_summary,
            }
        )
        return config
