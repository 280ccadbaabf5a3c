"""Multi-head attention with rotary position embeddings on queries and keys.

Einsum letters: B batch, T length, N heads, H key_dim.
"""

import keras

from kzoo.layers.attention.multi_head_attention import MultiHeadAttention
from kzoo.layers.position.rotary_embedding import RotaryEmbedding
from kzoo.utils.validation import check_positive_float


@keras.saving.register_keras_serializable(package="kzoo")
class RotaryMultiHeadAttention(MultiHeadAttention):
    """`MultiHeadAttention` whose queries and keys are rotated by position.

    The attention of "RoFormer: Enhanced Transformer with Rotary Position
    Embedding" (Su et al., 2021): after projection, channel pairs of the
    query at position m and the key at position n are rotated by `m theta_i`
    and `n theta_i`, so their dot product depends on the positions only
    through `m - n`. It overrides only the `_project_query_key` hook of the
    dense core: masks, the key/value cache (new keys are rotated at their
    absolute positions `cache_update_index + t` before they are written),
    dropout and the variables are the core's, so `set_weights` copies a
    dense layer in. Meant for self-attention (the key positions are those
    of the key sequence, counted from 0).

    Args:
        num_heads: number of heads N.
        key_dim: size H of each head; must be even.
        max_wavelength: the base of the rotation frequencies (10000).
        scaling_factor: positions are divided by it (linear position
            interpolation); 1.0 is the paper.
        **kwargs: the other `MultiHeadAttention` arguments.

    Call arguments, returns and masking: those of `MultiHeadAttention`.

    Example:

    >>> import keras
    >>> from kzoo.layers import RotaryMultiHeadAttention
    >>> layer = RotaryMultiHeadAttention(num_heads=2, key_dim=8)
    >>> tuple(layer(keras.random.normal((2, 5, 16)), use_causal_mask=True).shape)
    (2, 5, 16)
    """

    def __init__(self, num_heads, key_dim, max_wavelength=10000.0,
                 scaling_factor=1.0, **kwargs):
        super().__init__(num_heads=num_heads, key_dim=key_dim, **kwargs)
        if self.key_dim % 2:
            raise ValueError(
                "`key_dim` must be even for rotary embeddings (channels are "
                f"rotated in pairs); received {key_dim}"
            )
        self.max_wavelength = check_positive_float("max_wavelength", max_wavelength)
        self.scaling_factor = check_positive_float("scaling_factor", scaling_factor)

    def build(self, query_shape, value_shape=None, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        self._rotary = RotaryEmbedding(
            max_wavelength=self.max_wavelength,
            scaling_factor=self.scaling_factor,
            dtype=self.dtype_policy,
            name="rotary_embedding",
        )
        self._rotary.build((None, None, self.num_heads, self.key_dim))

    def _project_query_key(self, query, key, query_offset):
        # (B, T, N, H) each; both rotated from the same first position.
        return (
            self._rotary(query, start_index=query_offset),
            self._rotary(key, start_index=query_offset),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "max_wavelength": self.max_wavelength,
                "scaling_factor": self.scaling_factor,
            }
        )
        return config
