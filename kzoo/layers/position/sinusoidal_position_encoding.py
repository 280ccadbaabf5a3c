"""Fixed sine/cosine position encodings.

Letters: B batch, T length, D width.
"""

import keras
from keras import ops

from kzoo.utils.validation import check_positive_float
from kzoo.utils.validation import check_rank


@keras.saving.register_keras_serializable(package="kzoo")
class SinusoidalPositionEncoding(keras.layers.Layer):
    """Sinusoidal position encoding of "Attention Is All You Need" (2017).

    `PE[p, 2i] = sin(p / w^(2i/D))`, `PE[p, 2i+1] = cos(p / w^(2i/D))` with
    `w = max_wavelength` (10000 in the paper). The layer returns the encoding
    (it does not add it), broadcast to the input's shape; add it to the token
    embeddings yourself. No weights; any length works.

    Args:
        max_wavelength: the base `w` of the geometric wavelengths.

    Call arguments:
        inputs: (B, T, D), only its shape is used; D must be even.
        start_index: int or scalar tensor, position of the first token (for
            cached decoding, where T is 1 and the position is the cache index).

    Returns:
        (B, T, D) encodings, computed in float32 and cast to the compute
        dtype.

    Masking: not applicable (no mixing between positions).

    Example:

    >>> import keras
    >>> from kzoo.layers import SinusoidalPositionEncoding
    >>> x = keras.random.normal((2, 5, 16))
    >>> tuple((x + SinusoidalPositionEncoding()(x)).shape)
    (2, 5, 16)
    """

    def __init__(self, max_wavelength=10000.0, **kwargs):
        super().__init__(**kwargs)
        self.max_wavelength = check_positive_float("max_wavelength", max_wavelength)
        self.supports_masking = True

    def build(self, inputs_shape):
        check_rank("inputs", inputs_shape, 3, "(batch, length, hidden_dim)")
        if inputs_shape[-1] is not None and inputs_shape[-1] % 2:
            raise ValueError(
                "`hidden_dim` (the last input dim) must be even for "
                f"SinusoidalPositionEncoding; received {inputs_shape[-1]}"
            )

    def call(self, inputs, start_index=0):
        shape = ops.shape(inputs)
        length, dim = shape[1], inputs.shape[-1]
        positions = ops.cast(ops.arange(length), "float32") + ops.cast(
            start_index, "float32"
        )  # (T,)
        exponent = ops.cast(ops.arange(dim // 2), "float32") * (2.0 / dim)
        inverse_freq = ops.power(self.max_wavelength, -exponent)  # (D/2,)
        angles = ops.einsum("t,d->td", positions, inverse_freq)  # (T, D/2)
        # Interleave: even channels sin, odd channels cos.
        encoding = ops.stack((ops.sin(angles), ops.cos(angles)), axis=-1)
        encoding = ops.reshape(encoding, (length, dim))  # (T, D)
        encoding = ops.cast(encoding, self.compute_dtype)
        return ops.broadcast_to(encoding[None], shape)  # (B, T, D)

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"max_wavelength": self.max_wavelength})
        return config
