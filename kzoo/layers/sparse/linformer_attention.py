"""Linformer attention: keys and values projected along the sequence.

Einsum letters used in this file:
    B batch, T query length, S key length, K projected length, N heads,
    H key_dim, V value_dim.
"""

import math

import keras
from keras import ops

from kzoo.layers.attention.multi_head_attention import MultiHeadAttention
from kzoo.utils.validation import as_bool_mask
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_same_dims
from kzoo.utils.validation import static_shape


@keras.saving.register_keras_serializable(package="kzoo")
class LinformerAttention(MultiHeadAttention):
    """Attention with keys and values projected to a fixed length K.

    Implements "Linformer: Self-Attention with Linear Complexity" (Wang et
    al., 2020): `softmax(Q (E^T K)^T / sqrt(H)) (F^T V)`, with E and F
    (max_sequence_length, K) learned projections along the sequence, shared
    by the heads (the paper's "headwise sharing"). A sequence of length
    S < max_sequence_length uses their first S rows. Time and memory are
    O(T K). The (B, N, T, K) attention goes through the dense core's
    `_compute_attention` (float32 softmax, dropout).

    Masking: attention over projected keys cannot mask single tokens, so
    padded keys and values are set to zero before the projection; they then
    contribute nothing to `E^T K` and `F^T V`, and appending more padding
    leaves the outputs unchanged. Causal masking is not supported (the
    projection mixes future tokens into every projected key).

    Variables: those of `MultiHeadAttention` (`query`, `key`, `value`,
    `attention_output`, same shapes and order), then `key_projection` E and
    `value_projection` F, each (max_sequence_length, K), initialised
    uniformly in +-1/sqrt(K).

    Args:
        num_heads: number of heads N.
        key_dim: size H of each head.
        projected_length: K.
        max_sequence_length: the longest key sequence.
        **kwargs: `value_dim`, `dropout`, `use_bias`, `output_dim`,
            `kernel_initializer`, `bias_initializer`, `seed` of
            `MultiHeadAttention`, and base layer arguments.

    Call arguments:
        query: (B, T, D_q).
        value: (B, S, D_v); defaults to `query`.
        key: (B, S, D_k); defaults to `value`.
        padding_mask: (B, S) bool, True for real keys.
        return_attention_scores: also return the (B, N, T, K) probabilities.
        training: whether dropout is active.

    Returns:
        (B, T, output_dim), or `(output, scores)`.

    Example:

    >>> layer = LinformerAttention(num_heads=2, key_dim=8, projected_length=4,
    ...                            max_sequence_length=16)
    >>> layer(keras.random.normal((2, 10, 16))).shape
    (2, 10, 16)
    """

    def __init__(self, num_heads, key_dim, projected_length, max_sequence_length, **kwargs):
        super().__init__(num_heads=num_heads, key_dim=key_dim, **kwargs)
        self.projected_length = check_positive_int("projected_length", projected_length)
        self.max_sequence_length = check_positive_int(
            "max_sequence_length", max_sequence_length
        )

    def build(self, query_shape, value_shape=None, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        limit = 1.0 / math.sqrt(self.projected_length)
        shape = (self.max_sequence_length, self.projected_length)
        # A holder sublayer created after the dense ones, so that `weights`
        # lists MultiHeadAttention's variables first, in Keras' order.
        self._projections = keras.layers.Layer(name="projections")
        self._projections.add_weight(
            shape=shape,
            initializer=keras.initializers.RandomUniform(-limit, limit),
            name="key_projection",
        )
        self._projections.add_weight(
            shape=shape,
            initializer=keras.initializers.RandomUniform(-limit, limit),
            name="value_projection",
        )
        self._projections.built = True

    @property
    def key_projection(self):
        # Not attributes: a variable assigned to the layer would be tracked
        # as its own and listed before the dense variables.
        return self._projections.weights[0]

    @property
    def value_projection(self):
        return self._projections.weights[1]

    def call(
        self,
        query,
        value=None,
        key=None,
        padding_mask=None,
        attention_mask=None,
        attention_bias=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
    ):
        if attention_mask is not None or attention_bias is not None or use_causal_mask:
            raise ValueError(
                "LinformerAttention supports `padding_mask` only (projected "
                "keys mix all positions, so a per-token attention_mask, "
                "attention_bias or use_causal_mask cannot apply); received "
                f"attention_mask={attention_mask is not None}, "
                f"attention_bias={attention_bias is not None}, "
                f"use_causal_mask={use_causal_mask}"
            )
        value = query if value is None else value
        key = value if key is None else key
        k_shape = static_shape(key)
        if k_shape[1] is not None and k_shape[1] > self.max_sequence_length:
            raise ValueError(
                f"key sequence length must be at most max_sequence_length="
                f"{self.max_sequence_length}; received {k_shape[1]}"
            )
        if padding_mask is not None:
            check_same_dims(
                "padding_mask",
                static_shape(padding_mask),
                (k_shape[0], k_shape[1]),
                "(batch_size, key_length)",
            )
        q = self._query_dense(query)  # (B, T, N, H)
        k = self._key_dense(key)  # (B, S, N, H)
        v = self._value_dense(value)  # (B, S, N, V)
        if padding_mask is not None:
            real = ops.cast(as_bool_mask(padding_mask), k.dtype)[:, :, None, None]
            k, v = k * real, v * real
        s = ops.shape(k)[1]
        e = ops.cast(self.key_projection[:s], k.dtype)  # (S, K)
        f = ops.cast(self.value_projection[:s], v.dtype)  # (S, K)
        k = ops.einsum("bsnh,sk->bknh", k, e)  # (B, K, N, H)
        v = ops.einsum("bsnv,sk->bknv", v, f)  # (B, K, N, V)
        out, scores = self._compute_attention(
            q, k, v, training=training, return_attention_scores=return_attention_scores
        )
        out = self._output_dense(out)  # (B, T, D_out)
        return (out, scores) if return_attention_scores else out

    def compute_output_shape(
        self, query_shape, value_shape=None, key_shape=None, return_attention_scores=False
    ):
        out_dim = self.output_dim or query_shape[-1]
        out = (query_shape[0], query_shape[1], out_dim)
        if return_attention_scores:
            return out, (query_shape[0], self.num_heads, query_shape[1], self.projected_length)
        return out

    def compute_output_spec(self, query, value=None, key=None, return_attention_scores=False, **kwargs):
        shapes = self.compute_output_shape(query.shape, return_attention_scores=return_attention_scores)
        if return_attention_scores:
            return tuple(keras.KerasTensor(s, dtype=self.compute_dtype) for s in shapes)
        return keras.KerasTensor(shapes, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "projected_length": self.projected_length,
                "max_sequence_length": self.max_sequence_length,
            }
        )
        return config
