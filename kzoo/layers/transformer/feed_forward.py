"""The position-wise feed-forward sublayer of a Transformer block.

Einsum letters: B batch, T length, D model width, F intermediate width.
"""

import keras
from keras import ops

from kzoo.layers.dropout import Dropout
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rate


@keras.saving.register_keras_serializable(package="kzoo")
class FeedForward(keras.layers.Layer):
    """Position-wise feed-forward network, plain or gated (GLU).

    The plain form is the FFN of "Attention Is All You Need" (Vaswani et al.,
    2017): `act(x W1 + b1) W2 + b2`. With `gated=True` it is the GLU variant
    of "GLU Variants Improve Transformer" (Shazeer, 2020):
    `(act(x W) * (x V)) W2`, e.g. SwiGLU with `activation="silu"` and GEGLU
    with `activation="gelu"`.

    Args:
        intermediate_dim: width F of the hidden layer.
        activation: activation of the hidden layer (any Keras activation).
        gated: use the GLU variant (adds a second input projection `gate`).
        dropout: dropout rate on the hidden activations.
        use_bias: whether the projections have biases.
        output_dim: output width; defaults to the input width D.
        kernel_initializer: initializer for the kernels.
        bias_initializer: initializer for the biases.
        seed: seed for the dropout `SeedGenerator`.

    Call arguments:
        inputs: (B, T, D) float tensor (any rank >= 2 works; the last axis is
            the feature axis).
        training: whether dropout is active.

    Returns:
        (B, T, output_dim).

    Masking: position-wise, so padded positions do not affect others.

    Example:

    >>> import keras
    >>> from kzoo.layers import FeedForward
    >>> ffn = FeedForward(intermediate_dim=32, activation="silu", gated=True)
    >>> tuple(ffn(keras.random.normal((2, 5, 16))).shape)
    (2, 5, 16)
    """

    def __init__(
        self,
        intermediate_dim,
        activation="gelu",
        gated=False,
        dropout=0.0,
        use_bias=True,
        output_dim=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.intermediate_dim = check_positive_int("intermediate_dim", intermediate_dim)
        try:
            self._activation_fn = keras.activations.get(activation)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"`activation` must be a Keras activation name or callable; "
                f"received {activation!r}"
            ) from error
        self.activation = activation
        self.gated = bool(gated)
        self.dropout = check_rate("dropout", dropout)
        self.use_bias = bool(use_bias)
        self.output_dim = check_positive_int("output_dim", output_dim, allow_none=True)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.seed = seed
        self.supports_masking = True

    def _dense(self, units, name):
        return keras.layers.Dense(
            units,
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer.__class__.from_config(
                self.kernel_initializer.get_config()
            ),
            bias_initializer=self.bias_initializer.__class__.from_config(
                self.bias_initializer.get_config()
            ),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, inputs_shape):
        out_dim = self.output_dim or inputs_shape[-1]
        self._intermediate_dense = self._dense(self.intermediate_dim, "intermediate")
        self._intermediate_dense.build(inputs_shape)
        if self.gated:
            self._gate_dense = self._dense(self.intermediate_dim, "gate")
            self._gate_dense.build(inputs_shape)
        self._output_dense = self._dense(out_dim, "output")
        self._output_dense.build(tuple(inputs_shape[:-1]) + (self.intermediate_dim,))
        self._dropout_layer = Dropout(
            self.dropout, seed=self.seed, dtype=self.dtype_policy
        )

    def call(self, inputs, training=None):
        hidden = self._activation_fn(self._intermediate_dense(inputs))  # (B, T, F)
        if self.gated:
            hidden = ops.multiply(hidden, self._gate_dense(inputs))  # (B, T, F)
        hidden = self._dropout_layer(hidden, training=training)
        return self._output_dense(hidden)  # (B, T, D_out)

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape[:-1]) + (self.output_dim or inputs_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "intermediate_dim": self.intermediate_dim,
                "activation": self.activation
                if isinstance(self.activation, str)
                else keras.activations.serialize(self._activation_fn),
                "gated": self.gated,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "output_dim": self.output_dim,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
                "seed": self.seed,
            }
        )
        return config
