"""T5's learned, bucketed relative position bias.

Letters: B batch, N heads, T query length, S key length, K buckets.
"""

import keras
from keras import ops

from kzoo.utils.validation import check_positive_int


def relative_position_bucket(relative_position, bidirectional, num_buckets, max_distance):
    """T5's `_relative_position_bucket` in `keras.ops`.

    `relative_position` = key position - query position (int tensor). Exact
    buckets for small distances, logarithmic ones up to `max_distance`, the
    last bucket beyond; with `bidirectional`, half the buckets for keys
    after the query.
    """
    n = -relative_position
    bucket = ops.zeros_like(n)
    if bidirectional:
        num_buckets //= 2
        bucket = bucket + ops.cast(n < 0, n.dtype) * num_buckets
        n = ops.abs(n)
    else:
        n = ops.maximum(n, 0)
    max_exact = num_buckets // 2
    is_small = n < max_exact
    n_float = ops.cast(ops.maximum(n, 1), "float32")
    large = max_exact + ops.cast(
        ops.log(n_float / max_exact)
        / ops.log(max_distance / max_exact)
        * (num_buckets - max_exact),
        n.dtype,
    )
    large = ops.minimum(large, num_buckets - 1)
    return bucket + ops.where(is_small, n, large)


@keras.saving.register_keras_serializable(package="kzoo")
class RelativePositionBias(keras.layers.Layer):
    """A learned scalar bias per head and relative-distance bucket (T5).

    From "Exploring the Limits of Transfer Learning with a Unified
    Text-to-Text Transformer" (Raffel et al., 2020): the distance from query
    to key is mapped to one of `num_buckets` buckets (exact for short
    distances, logarithmic up to `max_distance`), and each head learns one
    scalar per bucket that is added to its attention scores. Pass the result
    as `attention_bias`.

    Args:
        num_heads: number of attention heads N.
        num_buckets: number of buckets K (split in two when bidirectional).
        max_distance: distances at or beyond this share the last bucket.
        bidirectional: separate buckets for keys before and after the query
            (encoders); False for causal decoders.
        embeddings_initializer: initializer of the (K, N) table.

    Call arguments:
        query: (B, T, ...), only its length is used.
        key: (B, S, ...), only its length; defaults to `query`.
        query_offset: int or scalar tensor, absolute position of query 0.

    Returns:
        (1, N, T, S) bias in the compute dtype.

    Masking: none; combine with the attention masks as usual.

    Example:

    >>> import keras
    >>> from kzoo.layers import RelativePositionBias
    >>> x = keras.random.normal((2, 5, 16))
    >>> tuple(RelativePositionBias(num_heads=4)(x).shape)
    (1, 4, 5, 5)
    """

    def __init__(
        self,
        num_heads,
        num_buckets=32,
        max_distance=128,
        bidirectional=True,
        embeddings_initializer="random_normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.num_buckets = check_positive_int("num_buckets", num_buckets)
        self.max_distance = check_positive_int("max_distance", max_distance)
        self.bidirectional = bool(bidirectional)
        per_direction = num_buckets // 2 if self.bidirectional else num_buckets
        if per_direction < 2:
            raise ValueError(
                "`num_buckets` must give at least 2 buckets per direction (>= 4 "
                f"when bidirectional); received num_buckets={num_buckets}"
            )
        if self.max_distance <= per_direction // 2:
            raise ValueError(
                f"`max_distance` must exceed the {per_direction // 2} exact "
                f"buckets; received max_distance={max_distance}"
            )
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, query_shape, key_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings",
            shape=(self.num_buckets, self.num_heads),
            initializer=self.embeddings_initializer,
            trainable=True,
        )

    def call(self, query, key=None, query_offset=0):
        key = query if key is None else key
        t_len, s_len = ops.shape(query)[1], ops.shape(key)[1]
        q_pos = ops.arange(t_len, dtype="int32") + ops.cast(query_offset, "int32")
        k_pos = ops.arange(s_len, dtype="int32")
        relative = k_pos[None, :] - q_pos[:, None]  # (T, S)
        buckets = relative_position_bucket(
            relative, self.bidirectional, self.num_buckets, self.max_distance
        )  # (T, S)
        bias = ops.take(self.embeddings, buckets, axis=0)  # (T, S, N)
        bias = ops.transpose(bias, (2, 0, 1))[None]  # (1, N, T, S)
        return ops.cast(bias, self.compute_dtype)

    def compute_output_shape(self, query_shape, key_shape=None):
        key_shape = query_shape if key_shape is None else key_shape
        return (1, self.num_heads, query_shape[1], key_shape[1])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "num_buckets": self.num_buckets,
                "max_distance": self.max_distance,
                "bidirectional": self.bidirectional,
                "embeddings_initializer": keras.initializers.serialize(
                    self.embeddings_initializer
                ),
            }
        )
        return config
