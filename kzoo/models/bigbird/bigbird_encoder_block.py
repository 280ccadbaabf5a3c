"""A Transformer encoder block whose self-attention is BigBirdAttention."""

import keras

from kzoo.layers.attention.bigbird_attention import BigBirdAttention
from kzoo.layers.transformer.transformer_encoder_block import TransformerEncoderBlock
from kzoo.utils.validation import check_non_negative_int
from kzoo.utils.validation import check_positive_int


@keras.saving.register_keras_serializable(package="kzoo")
class BigBirdEncoderBlock(TransformerEncoderBlock):
    """`TransformerEncoderBlock` with BigBird block-sparse self-attention.

    The layer of "Big Bird: Transformers for Longer Sequences" (Zaheer et
    al., 2020), ITC form. Overrides only `_build_self_attention`; the
    variables are those of `TransformerEncoderBlock`, in the same order.
    The attention's random pattern is seeded by `seed + 1`; `seed` must be
    given (an int) so that the pattern survives `.keras` reloads.

    Args:
        num_heads, intermediate_dim: as for `TransformerEncoderBlock`.
        block_size: rows per attention block.
        num_random_blocks: random key blocks per query block and head.
        seed: base seed (dropout and the random pattern), an int.
        **kwargs: the other `TransformerEncoderBlock` arguments.

    Example:

    >>> import keras
    >>> from kzoo.models.bigbird.bigbird_encoder_block import BigBirdEncoderBlock
    >>> block = BigBirdEncoderBlock(2, 32, block_size=4, num_random_blocks=1, seed=0)
    >>> tuple(block(keras.random.normal((2, 24, 16))).shape)
    (2, 24, 16)
    """

    def __init__(
        self, num_heads, intermediate_dim, block_size, num_random_blocks=3, seed=0, **kwargs
    ):
        super().__init__(num_heads, intermediate_dim, seed=seed, **kwargs)
        check_non_negative_int("seed", seed)
        self.block_size = check_positive_int("block_size", block_size)
        self.num_random_blocks = check_non_negative_int(
            "num_random_blocks", num_random_blocks
        )

    def _build_self_attention(self, hidden_dim):
        return BigBirdAttention(
            num_heads=self.num_heads,
            key_dim=hidden_dim // self.num_heads,
            block_size=self.block_size,
            num_random_blocks=self.num_random_blocks,
            dropout=self.dropout,
            seed=self.seed + 1,
            dtype=self.dtype_policy,
            name="self_attention",
            **self._initializers(),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "block_size": self.block_size,
                "num_random_blocks": self.num_random_blocks,
            }
        )
        return config
