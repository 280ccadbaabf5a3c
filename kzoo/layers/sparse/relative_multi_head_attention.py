"""Transformer-XL attention: relative positions, u/v biases, segment memory.

Einsum letters used in this file:
    B batch, T query (segment) length, M memory length, S = M + T keys,
    P = S + T - 1 relative distances, D model width, N heads, H key_dim,
    V value_dim.
"""

import math

import keras
from keras import ops

from kzoo.layers.attention.masking import merge_masks
from kzoo.layers.attention.masking import validate_masks
from kzoo.layers.attention.multi_head_attention import MultiHeadAttention
from kzoo.utils.validation import check_rank
from kzoo.utils.validation import check_same_dims
from kzoo.utils.validation import static_shape


def relative_sinusoids(distances, dim):
    """Sinusoidal encodings (P, dim) of float32 `distances` (P,)."""
    half = dim // 2
    inv_freq = 1.0 / (
        10000.0 ** (ops.arange(0, half, dtype="float32") * 2.0 / float(dim))
    )  # (dim/2,)
    angles = ops.expand_dims(distances, 1) * ops.expand_dims(inv_freq, 0)
    enc = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)
    if dim % 2:
        enc = ops.pad(enc, ((0, 0), (0, 1)))
    return enc  # (P, dim)


def relative_shift(scores, key_length):
    """(..., T, P) scores by distance -> (..., T, S) scores by key.

    Column m of row i in the input holds distance `S - 1 - m`; the output
    holds, at (i, j), the score of distance `(S - T) + i - j`, i.e. the
    input's column `j + T - 1 - i`. Done with one pad, reshape and slice
    (no gather), exact for every (i, j).
    """
    shape = ops.shape(scores)
    t, p = shape[-2], shape[-1]
    lead = tuple(shape[:-2])
    x = ops.pad(scores, [(0, 0)] * (len(lead)) + [(0, 0), (0, 1)])  # (.., T, P+1)
    x = ops.reshape(x, lead + (-1,))  # (.., T*(P+1))
    x = x[..., t - 1 : t - 1 + t * p]  # (.., T*P)
    x = ops.reshape(x, lead + (t, p))  # row i starts at its own offset
    return x[..., :key_length]  # (.., T, S)


@keras.saving.register_keras_serializable(package="kzoo")
class RelativeMultiHeadAttention(MultiHeadAttention):
    """Transformer-XL self-attention with relative positions and memory.

    Implements the attention of "Transformer-XL: Attentive Language Models
    Beyond a Fixed-Length Context" (Dai et al., 2019). Keys and values are
    computed from `concat([stop_gradient(memory), query])`; the score of
    query i and key j is

        (q_i + u) . k_j  +  (q_i + v) . W_r R_{i - j}

    scaled by `1/sqrt(key_dim)`, with R the sinusoidal encoding of the
    relative distance and u, v learned per-head biases. The second term is
    computed for every distance once (T x P) and moved into place with the
    pad-reshape-slice "relative shift", then handed to the dense core as an
    additive `attention_bias`; masking and softmax are the core's.

    Variables: those of `MultiHeadAttention` (`query`, `key`, `value`,
    `attention_output`, same shapes and order), then `position` (the W_r
    kernel (D, N, H), no bias), `content_bias` u (N, H) and
    `position_bias` v (N, H).

    Args:
        num_heads: number of heads N.
        key_dim: size H of each head.
        **kwargs: `value_dim`, `dropout`, `use_bias`, `output_dim`,
            `kernel_initializer`, `bias_initializer`, `seed` of
            `MultiHeadAttention`, and base layer arguments.

    Call arguments:
        query: (B, T, D) current segment.
        memory: optional (B, M, D) hidden states of the previous segment(s)
            (no gradient flows into it).
        padding_mask: optional (B, M + T) bool over memory and segment keys.
        attention_mask: optional (B, T, M + T) bool.
        use_causal_mask: query i (at absolute position M + i) sees keys
            j <= M + i. Defaults to True (a language model).
        training: whether dropout is active.

    Returns:
        (B, T, output_dim). A fully masked query row outputs zeros before the
        output projection.

    Example:

    >>> layer = RelativeMultiHeadAttention(num_heads=2, key_dim=8)
    >>> x, mem = keras.random.normal((2, 4, 16)), keras.random.normal((2, 6, 16))
    >>> layer(x, memory=mem).shape
    (2, 4, 16)
    """

    def build(self, query_shape, memory_shape=None, **kwargs):
        check_rank("query", query_shape, 3, "(batch, segment_length, dim)")
        if memory_shape is not None:
            check_rank("memory", memory_shape, 3, "(batch, memory_length, dim)")
        super().build(query_shape)
        n, h = self.num_heads, self.key_dim
        kernel_init = self.kernel_initializer.__class__.from_config(
            self.kernel_initializer.get_config()
        )
        self._position_dense = keras.layers.EinsumDense(
            "pd,dnh->pnh",
            output_shape=(n, h),
            kernel_initializer=kernel_init,
            dtype=self.dtype_policy,
            name="position",
        )
        self._position_dense.build((None, query_shape[-1]))
        # A holder sublayer created after the dense ones, so that `weights`
        # lists MultiHeadAttention's variables first, in Keras' order.
        self._biases = keras.layers.Layer(name="relative_biases")
        self._biases.add_weight(
            shape=(n, h), initializer="zeros", name="content_bias"
        )
        self._biases.add_weight(
            shape=(n, h), initializer="zeros", name="position_bias"
        )
        self._biases.built = True

    @property
    def content_bias(self):
        # Not attributes: a variable assigned to the layer would be tracked
        # as its own and listed before the dense variables.
        return self._biases.weights[0]

    @property
    def position_bias(self):
        return self._biases.weights[1]

    def call(
        self,
        query,
        memory=None,
        padding_mask=None,
        attention_mask=None,
        use_causal_mask=True,
        training=None,
    ):
        if memory is not None:
            check_same_dims(
                "memory",
                static_shape(memory),
                (static_shape(query)[0], None, static_shape(query)[2]),
                "(batch_size, memory_length, dim)",
            )
            memory = ops.stop_gradient(ops.cast(memory, query.dtype))
            keys_in = ops.concatenate([memory, query], axis=1)  # (B, S, D)
        else:
            keys_in = query
        validate_masks(
            static_shape(query), static_shape(keys_in), padding_mask, attention_mask
        )
        t = ops.shape(query)[1]
        s = ops.shape(keys_in)[1]
        m = s - t
        q = self._query_dense(query)  # (B, T, N, H)
        k = self._key_dense(keys_in)  # (B, S, N, H)
        v = self._value_dense(keys_in)  # (B, S, N, V)

        # Relative distances S-1, ..., -(T-1): every (i, j) pair's i + M - j.
        distances = ops.cast(s - 1 - ops.arange(s + t - 1), "float32")  # (P,)
        r = relative_sinusoids(distances, static_shape(query)[-1])  # (P, D)
        r = self._position_dense(ops.cast(r, self.compute_dtype))  # (P, N, H)
        scale = self._inverse_sqrt_key_dim
        q_pos = q + ops.cast(self.position_bias, q.dtype)  # (B, T, N, H)
        position_scores = ops.einsum(
            "btnh,pnh->bntp", ops.cast(q_pos, "float32"), ops.cast(r, "float32")
        )  # (B, N, T, P)
        position_scores = relative_shift(position_scores, s) * scale  # (B,N,T,S)

        mask = merge_masks(
            t,
            s,
            padding_mask=padding_mask,
            attention_mask=attention_mask,
            use_causal_mask=use_causal_mask,
            query_offset=m,
        )
        q_content = q + ops.cast(self.content_bias, q.dtype)  # (B, T, N, H)
        output, _ = self._compute_attention(
            q_content,
            k,
            v,
            attention_mask=mask,
            attention_bias=position_scores,
            training=training,
        )  # (B, T, N, V)
        return self._output_dense(output)  # (B, T, D_out)

    def compute_output_shape(self, query_shape, memory_shape=None, **kwargs):
        out_dim = self.output_dim or query_shape[-1]
        return (query_shape[0], query_shape[1], out_dim)

    def compute_output_spec(self, query, memory=None, **kwargs):
        return keras.KerasTensor(
            self.compute_output_shape(query.shape), dtype=self.compute_dtype
        )
