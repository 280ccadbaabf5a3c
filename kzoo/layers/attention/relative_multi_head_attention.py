"""Transformer-XL attention: relative positions, u/v biases, segment memory.

Einsum letters used in this file:
    B batch, T query (segment) length, M memory length, S = M + T keys,
    P = S + T - 1 relative distances, D model width, N heads, H key_dim,
    V value_dim.
"""


import keras
from keras import ops

from kzoo.layers.attention.multi_head_attention import MultiHeadAttention
from kzoo.layers.attention.multi_head_attention import PatternSupport
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
    computed from `value`, the memory followed by the segment:
    `concat([stop_gradient(memory), query])` (the caller, e.g.
    `TransformerXLBlock`, stops the memory's gradient); without it, from
    `query` alone. The query at row i sits at absolute position M + i, with
    M = S - T the memory length. The score of query i and key j is

        (q_i + u) . k_j  +  (q_i + v) . W_r R_{i - j}

    scaled by `1/sqrt(key_dim)`, with R the sinusoidal encoding of the
    relative distance and u, v learned per-head biases. The second term is
    computed for every distance once (T x P) and moved into place with the
    pad-reshape-slice "relative shift", then handed to the dense core as an
    additive `attention_bias` (on top of any bias given); masking and
    softmax are the core's.

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
        value: optional (B, M + T, D): the memory (hidden states of the
            previous segments) followed by the segment itself.
        padding_mask: optional (B, M + T) bool over memory and segment keys.
        attention_mask: optional mask over (T, M + T), any shape the dense
            core takes.
        attention_bias: optional float bias added to the scores.
        use_causal_mask: query i (at absolute position M + i) sees keys
            j <= M + i (a language model passes True).
        training: whether dropout is active.
        A `cache` raises the dense core's shared `ValueError` (the memory
        is this layer's cache).

    Returns:
        (B, T, output_dim). A fully masked query row outputs zeros before the
        output projection.

    Example:

    >>> import keras
    >>> from keras import ops
    >>> from kzoo.layers import RelativeMultiHeadAttention
    >>> layer = RelativeMultiHeadAttention(num_heads=2, key_dim=8)
    >>> x, mem = keras.random.normal((2, 4, 16)), keras.random.normal((2, 6, 16))
    >>> keys = ops.concatenate([mem, x], axis=1)
    >>> tuple(layer(x, value=keys, use_causal_mask=True).shape)
    (2, 4, 16)
    """

    _pattern_summary = "relative positions over memory and segment"
    _support = PatternSupport(cache=False)

    def build(self, query_shape, value_shape=None, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        n, h = self.num_heads, self.key_dim
        self._model_dim = query_shape[-1]
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

    def _compute_attention(self, query, key, value, padding_mask=None,
                           attention_mask=None, attention_bias=None,
                           use_causal_mask=False, training=None,
                           return_attention_scores=False, **kwargs):
        """Content + relative position scores, then the dense core."""
        t_len, s_len = static_shape(query)[1], static_shape(key)[1]
        if None not in (t_len, s_len) and s_len < t_len:
            raise ValueError(
                "RelativeMultiHeadAttention takes keys made of the memory "
                "followed by the segment, at least as long as the query; "
                f"received query length {t_len} and key length {s_len}"
            )
        t, s = ops.shape(query)[1], ops.shape(key)[1]
        # Relative distances S-1, ..., -(T-1): every (i, j) pair's i + M - j.
        distances = ops.cast(s - 1 - ops.arange(s + t - 1), "float32")  # (P,)
        r = relative_sinusoids(distances, self._model_dim)  # (P, D)
        r = self._position_dense(ops.cast(r, self.compute_dtype))  # (P, N, H)
        q_pos = query + ops.cast(self.position_bias, query.dtype)  # (B, T, N, H)
        position_scores = ops.einsum(
            "btnh,pnh->bntp", ops.cast(q_pos, "float32"), ops.cast(r, "float32")
        )  # (B, N, T, P)
        bias = relative_shift(position_scores, s) * self._inverse_sqrt_key_dim
        if attention_bias is not None:
            bias = bias + ops.cast(attention_bias, "float32")  # (B, N, T, S)
        q_content = query + ops.cast(self.content_bias, query.dtype)  # (B,T,N,H)
        return super()._compute_attention(
            q_content,
            key,
            value,
            padding_mask=padding_mask,
            attention_mask=attention_mask,
            attention_bias=bias,
            use_causal_mask=use_causal_mask,
            query_offset=s - t,
            training=training,
            return_attention_scores=return_attention_scores,
        )
