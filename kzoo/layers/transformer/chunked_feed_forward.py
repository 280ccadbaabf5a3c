"""A position-wise feed-forward network run over the sequence in chunks."""

import keras
from keras import ops

from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rank


@keras.saving.register_keras_serializable(package="kzoo")
class ChunkedFeedForward(keras.layers.Layer):
    """Feed-forward network applied to `chunk_size` positions at a time.

    The chunked feed-forward of "Reformer: The Efficient Transformer"
    (Kitaev, Kaiser and Levskaya, 2020): `Dense(intermediate_dim) ->
    activation -> Dense(D)` is position-wise, so it can run over the sequence
    in chunks (a `keras.ops.map` loop) and the (B, T, intermediate_dim)
    activation never exists at once, only (B, chunk_size, intermediate_dim).
    The result equals the unchunked network. A sequence length that is not a
    multiple of `chunk_size` is padded inside the layer and the padding is
    removed from the output.

    Args:
        intermediate_dim: width of the hidden layer.
        chunk_size: positions per chunk.
        activation: activation of the hidden layer.
        kernel_initializer: initializer of both kernels.
        bias_initializer: initializer of both biases.

    Call arguments:
        inputs: (B, T, D).

    Returns:
        (B, T, D). Position-wise: padding positions do not affect others, so
        no mask is needed.

    Example:

    >>> import keras
    >>> from kzoo.layers import ChunkedFeedForward
    >>> ff = ChunkedFeedForward(intermediate_dim=32, chunk_size=4)
    >>> tuple(ff(keras.random.normal((2, 10, 16))).shape)
    (2, 10, 16)
    """

    def __init__(
        self,
        intermediate_dim,
        chunk_size=64,
        activation="gelu",
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.intermediate_dim = check_positive_int("intermediate_dim", intermediate_dim)
        self.chunk_size = check_positive_int("chunk_size", chunk_size)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _init(self, initializer):
        return initializer.__class__.from_config(initializer.get_config())

    def build(self, inputs_shape):
        check_rank("inputs", inputs_shape, 3, "(batch, sequence_length, dim)")
        dim = inputs_shape[-1]
        self._intermediate_dense = keras.layers.Dense(
            self.intermediate_dim,
            kernel_initializer=self._init(self.kernel_initializer),
            bias_initializer=self._init(self.bias_initializer),
            dtype=self.dtype_policy,
            name="intermediate",
        )
        self._intermediate_dense.build(inputs_shape)
        self._output_dense = keras.layers.Dense(
            dim,
            kernel_initializer=self._init(self.kernel_initializer),
            bias_initializer=self._init(self.bias_initializer),
            dtype=self.dtype_policy,
            name="output",
        )
        self._output_dense.build(tuple(inputs_shape[:-1]) + (self.intermediate_dim,))

    def _feed_forward(self, x):
        hidden = self.activation(self._intermediate_dense(x))  # (B, L, I)
        return self._output_dense(hidden)  # (B, L, D)

    def call(self, inputs):
        shape = ops.shape(inputs)
        batch, length, dim = shape[0], shape[1], shape[2]
        size = self.chunk_size
        pad = (-length) % size
        x = ops.pad(inputs, ((0, 0), (0, pad), (0, 0)))  # (B, C*L, D)
        x = ops.reshape(x, (batch, -1, size, dim))  # (B, C, L, D)
        x = ops.transpose(x, (1, 0, 2, 3))  # (C, B, L, D)
        y = ops.map(self._feed_forward, x)  # (C, B, L, D)
        y = ops.reshape(ops.transpose(y, (1, 0, 2, 3)), (batch, -1, dim))
        return y[:, :length]  # (B, T, D)

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "intermediate_dim": self.intermediate_dim,
                "chunk_size": self.chunk_size,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
            }
        )
        return config
