"""Multiplicative (Luong) attention for recurrent encoder-decoders.

Einsum letters: B batch, T query length, S key length, D width.
"""

import keras
from keras import ops

from kzoo.layers.recurrent.recurrent_attention import RecurrentAttention
from kzoo.utils.validation import check_one_of

LUONG_SCORES = ("dot", "general")


@keras.saving.register_keras_serializable(package="kzoo")
class LuongAttention(RecurrentAttention):
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

    >>> import keras
    >>> from kzoo.layers import LuongAttention
    >>> layer = LuongAttention(score="general")
    >>> q, v = keras.random.normal((2, 3, 4)), keras.random.normal((2, 5, 6))
    >>> context, weights = layer(q, v)
    >>> tuple(context.shape), tuple(weights.shape)
    ((2, 3, 6), (2, 3, 5))
    """

    def __init__(self, score="dot", kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.score = check_one_of("score", score, LUONG_SCORES)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, query_shape, value_shape=None, key_shape=None):
        query_shape, value_shape, key_shape = self._resolve_shapes(
            query_shape, value_shape, key_shape
        )
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

    def _score(self, query, projected_key):
        """Float32 scores (B, T, S) for keys from `project_keys`."""
        scores = ops.einsum(
            "btd,bsd->bts",
            ops.cast(query, "float32"),
            ops.cast(projected_key, "float32"),
        )  # (B, T, S)
        return scores

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
