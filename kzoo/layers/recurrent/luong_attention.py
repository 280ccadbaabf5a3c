"""Multiplicative (Luong) attention for recurrent encoder-decoders.

Einsum letters: B batch, T query length, S key length, D width.
"""

import keras
from keras import ops

from kzoo.layers.attention.masking import masked_softmax
from kzoo.layers.attention.masking import validate_masks
from kzoo.utils.validation import check_one_of
from kzoo.utils.validation import check_rank
from kzoo.utils.validation import static_shape

LUONG_SCORES = ("dot", "general")


@keras.saving.register_keras_serializable(package="kzoo")
class LuongAttention(keras.layers.Layer):
    """Multiplicative attention: `score(q, k) = q . k` or `q . W_a k`.

    Implements the global attention scores "dot" and "general" of
    "Effective Approaches to Attention-based Neural Machine Translation"
    (Luong, Pham and Manning, 2015). Scores are not scaled (as in the
    paper); the softmax over keys runs in float32 through
    `kzoo.layers.attention.masking.masked_softmax`.

    Args:
        score: `"dot"` (needs `D_q == D_k`, no weights) or `"general"`
            (a (D_k, D_q) matrix `W_a`, no bias).
        kernel_initializer: initializer for `W_a`.

    Call arguments:
        query: (B, T, D_q), e.g. the decoder states.
        value: (B, S, D), e.g. the encoder outputs.
        padding_mask: (B, S) bool, True for real keys. A fully masked row
            gets all-zero weights and a zero context.
        key: (B, S, D_k); defaults to `value`.

    Returns:
        `(context, weights)`: context (B, T, D) in the compute dtype and
        weights (B, T, S) in float32.

    Example:

    >>> layer = LuongAttention(score="general")
    >>> q, v = keras.random.normal((2, 3, 4)), keras.random.normal((2, 5, 6))
    >>> context, weights = layer(q, v)
    >>> context.shape, weights.shape
    ((2, 3, 6), (2, 3, 5))
    """

    def __init__(self, score="dot", kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.score = check_one_of("score", score, LUONG_SCORES)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        check_rank("query", query_shape, 3, "(batch, query_length, dim)")
        check_rank("value", value_shape, 3, "(batch, key_length, dim)")
        check_rank("key", key_shape, 3, "(batch, key_length, dim)")
        if self.score == "dot":
            if query_shape[-1] != key_shape[-1]:
                raise ValueError(
                    "`score`='dot' needs queries and keys of the same width; "
                    f"received query width {query_shape[-1]} and key width "
                    f"{key_shape[-1]}. Use score='general' for different widths."
                )
            self._key_dense = None
        else:
            # W_a k, so that q . (W_a k) = q^T W_a k.
            self._key_dense = keras.layers.Dense(
                query_shape[-1],
                use_bias=False,
                kernel_initializer=self.kernel_initializer,
                dtype=self.dtype_policy,
                name="key",
            )
            self._key_dense.build(key_shape)

    def project_keys(self, key):
        """`W_a k` for "general", `k` for "dot"; computed once per sequence."""
        if self._key_dense is None:
            return key
        return self._key_dense(key)  # (B, S, D_q)

    def attend(self, query, value, projected_key, padding_mask=None):
        """Attention given keys already passed through `project_keys`."""
        scores = ops.einsum(
            "btd,bsd->bts",
            ops.cast(query, "float32"),
            ops.cast(projected_key, "float32"),
        )  # (B, T, S)
        mask = None
        if padding_mask is not None:
            mask = ops.expand_dims(padding_mask, 1)  # (B, 1, S)
        weights = masked_softmax(scores, mask)  # (B, T, S) float32
        context = ops.einsum(
            "bts,bsd->btd", ops.cast(weights, value.dtype), value
        )  # (B, T, D)
        return context, weights

    def call(self, query, value=None, padding_mask=None, key=None):
        value = query if value is None else value
        key = value if key is None else key
        validate_masks(static_shape(query), static_shape(key), padding_mask)
        return self.attend(query, value, self.project_keys(key), padding_mask)

    def compute_output_shape(self, query_shape, value_shape=None, **kwargs):
        value_shape = query_shape if value_shape is None else value_shape
        return (
            (query_shape[0], query_shape[1], value_shape[-1]),
            (query_shape[0], query_shape[1], value_shape[1]),
        )

    def compute_output_spec(self, query, value=None, **kwargs):
        value = query if value is None else value
        context, weights = self.compute_output_shape(query.shape, value.shape)
        return (
            keras.KerasTensor(context, dtype=self.compute_dtype),
            keras.KerasTensor(weights, dtype="float32"),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "score": self.score,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
