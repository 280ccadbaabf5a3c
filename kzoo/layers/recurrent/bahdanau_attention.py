"""Additive (Bahdanau) attention for recurrent encoder-decoders.

Einsum letters: B batch, T query length, S key length, U attention units,
D value width.
"""

import keras
from keras import ops

from kzoo.layers.recurrent.recurrent_attention import RecurrentAttention
from kzoo.utils.validation import check_positive_int


@keras.saving.register_keras_serializable(package="kzoo")
class BahdanauAttention(RecurrentAttention):
    """Additive attention: `score(q, k) = v . tanh(W_q q + W_k k)`.

    Implements the alignment model of "Neural Machine Translation by Jointly
    Learning to Align and Translate" (Bahdanau, Cho and Bengio, 2015). The
    weights are a softmax over the key axis of the scores, computed in
    float32 by `kzoo.layers.attention.masking.masked_softmax`; the context
    is the weighted sum of the values.

    Args:
        units: width U of the hidden layer of the alignment model.
        kernel_initializer: initializer for `W_q`, `W_k` and `v`.

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
    >>> from keras import ops
    >>> from kzoo.layers import BahdanauAttention
    >>> layer = BahdanauAttention(units=8)
    >>> q, v = keras.random.normal((2, 3, 4)), keras.random.normal((2, 5, 6))
    >>> context, weights = layer(q, v, padding_mask=ops.ones((2, 5), "bool"))
    >>> tuple(context.shape), tuple(weights.shape)
    ((2, 3, 6), (2, 3, 5))
    """

    def __init__(self, units, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = check_positive_int("units", units)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _initializer(self):
        # A fresh initializer per weight, so seeded initializers differ.
        return self.kernel_initializer.__class__.from_config(
            self.kernel_initializer.get_config()
        )

    def build(self, query_shape, value_shape=None, key_shape=None):
        query_shape, value_shape, key_shape = self._resolve_shapes(
            query_shape, value_shape, key_shape
        )
        self._query_dense = keras.layers.Dense(
            self.units,
            use_bias=False,
            kernel_initializer=self._initializer(),
            dtype=self.dtype_policy,
            name="query",
        )
        self._query_dense.build(query_shape)
        self._key_dense = keras.layers.Dense(
            self.units,
            use_bias=True,
            kernel_initializer=self._initializer(),
            dtype=self.dtype_policy,
            name="key",
        )
        self._key_dense.build(key_shape)
        self.score_vector = self.add_weight(
            name="score_vector",
            shape=(self.units,),
            initializer=keras.initializers.RandomNormal(stddev=self.units**-0.5),
        )

    def project_keys(self, key):
        """`W_k k`, (B, S, D_k) -> (B, S, U); computed once per sequence."""
        return self._key_dense(key)

    def _score(self, query, projected_key):
        """Float32 scores (B, T, S) for keys from `project_keys`."""
        # A 2-D matmul, not Dense on a rank-3 tensor: TensorFlow's Dense
        # uses tensordot, whose gradient inside the decoder's while loop
        # has a transpose with a run-time permutation that XLA rejects
        # when the batch and length are dynamic (bucketed tf.data).
        kernel = ops.cast(self._query_dense.kernel, query.dtype)
        flat = ops.reshape(query, (-1, ops.shape(query)[-1]))  # (B*T, D_q)
        q = ops.reshape(
            ops.matmul(flat, kernel),
            (ops.shape(query)[0], ops.shape(query)[1], self.units),
        )  # (B, T, U)
        hidden = ops.tanh(
            ops.expand_dims(q, 2) + ops.expand_dims(projected_key, 1)
        )  # (B, T, S, U)
        scores = ops.einsum(
            "btsu,u->bts",
            ops.cast(hidden, "float32"),
            ops.cast(self.score_vector, "float32"),
        )  # (B, T, S)
        return scores

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
            }
        )
        return config
