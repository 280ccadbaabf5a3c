"""Attention with Linear Biases (ALiBi).

Letters: B batch, N heads, T query length, S key length.
"""

import math

import keras
import numpy as np
from keras import ops

from kzoo.utils.validation import check_positive_int


def alibi_slopes(num_heads):
    """The paper's head slopes: geometric from 2^(-8/n) for a power of 2 n;
    otherwise the slopes of the nearest smaller power of 2, c, followed by
    every other slope of 2c (the official implementation's rule)."""

    def power_of_2(n):
        start = 2.0 ** (-8.0 / n)
        return [start ** (k + 1) for k in range(n)]

    if math.log2(num_heads).is_integer():
        return power_of_2(num_heads)
    closest = 2 ** math.floor(math.log2(num_heads))
    return power_of_2(closest) + power_of_2(2 * closest)[0::2][: num_heads - closest]


@keras.saving.register_keras_serializable(package="kzoo")
class ALiBiBias(keras.layers.Layer):
    """The additive ALiBi attention bias `-m_n * |t - s|` per head n.

    From "Train Short, Test Long: Attention with Linear Biases Enables Input
    Length Extrapolation" (Press et al., 2022). Head n gets a fixed slope
    m_n (see `alibi_slopes`); the bias penalises attention linearly with the
    distance between query and key, and replaces position embeddings. For a
    causal model only s <= t matters (there it is the paper's
    `-m_n * (t - s)`); the symmetric `|t - s|` form serves bidirectional
    encoders. Pass the result as `attention_bias` to `MultiHeadAttention`
    or a Transformer block.

    Args:
        num_heads: number of attention heads N.

    Call arguments:
        query: (B, T, ...), only its length is used.
        key: (B, S, ...), only its length; defaults to `query`.
        query_offset: int or scalar tensor, absolute position of query 0
            (the cache index when decoding with a cache of length S).

    Returns:
        (1, N, T, S) float32 bias (broadcasts over the batch).

    Masking: none; combine with the attention masks as usual.

    Example:

    >>> import keras
    >>> from kzoo.layers import ALiBiBias
    >>> x = keras.random.normal((2, 5, 16))
    >>> tuple(ALiBiBias(num_heads=4)(x).shape)
    (1, 4, 5, 5)
    """

    def __init__(self, num_heads, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.slopes = np.asarray(alibi_slopes(self.num_heads), "float32")

    def call(self, query, key=None, query_offset=0):
        key = query if key is None else key
        t_len, s_len = ops.shape(query)[1], ops.shape(key)[1]
        q_pos = ops.cast(ops.arange(t_len), "float32") + ops.cast(
            query_offset, "float32"
        )  # (T,)
        k_pos = ops.cast(ops.arange(s_len), "float32")  # (S,)
        distance = ops.abs(q_pos[:, None] - k_pos[None, :])  # (T, S)
        slopes = ops.convert_to_tensor(self.slopes)  # (N,)
        return -slopes[None, :, None, None] * distance[None, None]  # (1, N, T, S)

    def compute_output_shape(self, query_shape, key_shape=None):
        key_shape = query_shape if key_shape is None else key_shape
        return (1, self.num_heads, query_shape[1], key_shape[1])

    def compute_output_spec(self, query, key=None, query_offset=0):
        key = query if key is None else key
        shape = self.compute_output_shape(query.shape, key.shape)
        return keras.KerasTensor(shape, dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update({"num_heads": self.num_heads})
        return config
