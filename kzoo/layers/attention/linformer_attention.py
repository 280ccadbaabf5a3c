"""Linformer attention: keys and values projected along the sequence.

Einsum letters used in this file:
    B batch, T query length, S key length, K projected length, N heads,
    H key_dim, V value_dim.
"""

import math

import keras
from keras import ops

from kzoo.layers.attention.multi_head_attention import MultiHeadAttention
from kzoo.layers.attention.multi_head_attention import PatternSupport
from kzoo.utils.validation import as_bool_mask
from kzoo.utils.validation import check_positive_int
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
        `attention_mask`, `attention_bias` and `use_causal_mask=True`
        (projected keys mix all positions), and a `cache`, raise the dense
        core's shared `ValueError`.

    Returns:
        (B, T, output_dim), or `(output, scores)`.

    Example:

    >>> import keras
    >>> from kzoo.layers import LinformerAttention
    >>> layer = LinformerAttention(num_heads=2, key_dim=8, projected_length=4,
    ...                            max_sequence_length=16)
    >>> tuple(layer(keras.random.normal((2, 10, 16))).shape)
    (2, 10, 16)
    """

    _pattern_summary = "keys and values projected along the sequence"
    _support = PatternSupport(
        causal_forms=(False,), attention_mask=False, attention_bias=False, cache=False
    )

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

    def _scores_key_length(self, key_length):
        return self.projected_length

    def _compute_attention(self, query, key, value, padding_mask=None,
                           training=None, return_attention_scores=False, **kwargs):
        """Project keys and values to K positions, then dense attention."""
        s_len = static_shape(key)[1]
        if s_len is not None and s_len > self.max_sequence_length:
            raise ValueError(
                f"the key sequence length must be at most max_sequence_length="
                f"{self.max_sequence_length}; received {s_len}"
            )
        if padding_mask is not None:
            real = ops.cast(as_bool_mask(padding_mask), key.dtype)[:, :, None, None]
            key, value = key * real, value * real
        s = ops.shape(key)[1]
        e = ops.cast(self.key_projection[:s], key.dtype)  # (S, K)
        f = ops.cast(self.value_projection[:s], value.dtype)  # (S, K)
        key = ops.einsum("bsnh,sk->bknh", key, e)  # (B, K, N, H)
        value = ops.einsum("bsnv,sk->bknv", value, f)  # (B, K, N, V)
        return super()._compute_attention(
            query, key, value, training=training,
            return_attention_scores=return_attention_scores,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "projected_length": self.projected_length,
                "max_sequence_length": self.max_sequence_length,
            }
        )
        return config
