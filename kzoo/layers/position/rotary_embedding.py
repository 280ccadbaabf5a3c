"""Rotary position embeddings (RoPE).

Letters: B batch, T length, N heads, H head size.
"""

import keras
from keras import ops

from kzoo.utils.validation import check_positive_float


@keras.saving.register_keras_serializable(package="kzoo")
class RotaryEmbedding(keras.layers.Layer):
    """Rotates query/key channel pairs by position-dependent angles.

    From "RoFormer: Enhanced Transformer with Rotary Position Embedding"
    (Su et al., 2021), eq. 34: channels (2i, 2i+1) of the vector at position
    p are rotated by the angle `p * theta_i`, `theta_i = w^(-2i/H)` with
    `w = max_wavelength` (10000). Then `q_m . k_n` depends on the positions
    only through `m - n`. Applied to projected queries and keys (B, T, N, H)
    before the scores, e.g. inside `MultiHeadAttention._project_query_key`.

    Args:
        max_wavelength: the base `w`.
        scaling_factor: positions are divided by it (linear position
            interpolation for longer contexts); 1.0 is the paper.

    Call arguments:
        inputs: (B, T, N, H) (any rank >= 3 with length on axis 1 and the
            feature axis last); H must be even.
        start_index: int or scalar tensor, position of the first token (the
            cache index when decoding step by step).

    Returns:
        The rotated tensor, same shape and dtype; the rotation is computed
        in float32.

    Masking: not applicable (positions are rotated independently).

    Example:

    >>> import keras
    >>> from kzoo.layers import RotaryEmbedding
    >>> q = keras.random.normal((2, 5, 4, 8))
    >>> tuple(RotaryEmbedding()(q).shape)
    (2, 5, 4, 8)
    """

    def __init__(self, max_wavelength=10000.0, scaling_factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.max_wavelength = check_positive_float("max_wavelength", max_wavelength)
        self.scaling_factor = check_positive_float("scaling_factor", scaling_factor)
        self.supports_masking = True

    def build(self, inputs_shape):
        if len(inputs_shape) < 3:
            raise ValueError(
                "`inputs` must have rank >= 3, e.g. (batch, length, heads, "
                f"head_dim); received shape {tuple(inputs_shape)}"
            )
        if inputs_shape[-1] is not None and inputs_shape[-1] % 2:
            raise ValueError(
                "the last dim of `inputs` (head size) must be even for "
                f"RotaryEmbedding; received {inputs_shape[-1]}"
            )

    def call(self, inputs, start_index=0):
        shape = ops.shape(inputs)
        rank, dim = len(inputs.shape), inputs.shape[-1]
        x = ops.cast(inputs, "float32")
        positions = (
            ops.cast(ops.arange(shape[1]), "float32") + ops.cast(start_index, "float32")
        ) / self.scaling_factor  # (T,)
        exponent = ops.cast(ops.arange(dim // 2), "float32") * (2.0 / dim)
        theta = ops.power(self.max_wavelength, -exponent)  # (H/2,)
        angles = ops.einsum("t,h->th", positions, theta)  # (T, H/2)
        # Broadcast (T, H/2) over batch and the middle axes (heads).
        angles = ops.reshape(angles, (1, shape[1]) + (1,) * (rank - 3) + (dim // 2,))
        cos, sin = ops.cos(angles), ops.sin(angles)
        even, odd = x[..., 0::2], x[..., 1::2]  # (B, T, N, H/2)
        rotated = ops.stack(
            (even * cos - odd * sin, even * sin + odd * cos), axis=-1
        )  # (B, T, N, H/2, 2)
        rotated = ops.reshape(rotated, shape)  # (B, T, N, H)
        return ops.cast(rotated, inputs.dtype)

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_wavelength": self.max_wavelength,
                "scaling_factor": self.scaling_factor,
            }
        )
        return config
