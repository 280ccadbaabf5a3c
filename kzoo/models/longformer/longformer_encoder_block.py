"""A Transformer encoder block whose self-attention is LongformerAttention."""

import keras

from kzoo.layers.attention.longformer_attention import LongformerAttention
from kzoo.layers.attention.longformer_attention import check_attention_window
from kzoo.layers.transformer.transformer_encoder_block import TransformerEncoderBlock
from kzoo.utils.validation import check_positive_int


@keras.saving.register_keras_serializable(package="kzoo")
class LongformerEncoderBlock(TransformerEncoderBlock):
    """`TransformerEncoderBlock` with sliding-window + global self-attention.

    The layer of "Longformer: The Long-Document Transformer" (Beltagy et
    al., 2020). It overrides only `_build_self_attention`, so its variables
    are those of `TransformerEncoderBlock` in the same order: `set_weights`
    copies a dense block in. Call it like the parent block, with a
    `global_attention_mask` (B, T) keyword passed through to the attention.

    Args:
        num_heads, intermediate_dim: as for `TransformerEncoderBlock`.
        attention_window: the whole window, even and positive.
        max_global_tokens: static bound on global tokens (see
            `LongformerAttention`).
        **kwargs: the other `TransformerEncoderBlock` arguments.

    Example:

    >>> import keras
    >>> from kzoo.models.longformer.longformer_encoder_block import (
    ...     LongformerEncoderBlock)
    >>> block = LongformerEncoderBlock(2, 32, attention_window=4)
    >>> tuple(block(keras.random.normal((2, 10, 16))).shape)
    (2, 10, 16)
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        attention_window,
        max_global_tokens=None,
        **kwargs,
    ):
        super().__init__(num_heads, intermediate_dim, **kwargs)
        self.attention_window = check_attention_window(attention_window)
        self.max_global_tokens = check_positive_int(
            "max_global_tokens", max_global_tokens, allow_none=True
        )

    def _build_self_attention(self, hidden_dim):
        return LongformerAttention(
            num_heads=self.num_heads,
            key_dim=hidden_dim // self.num_heads,
            attention_window=self.attention_window,
            max_global_tokens=self.max_global_tokens,
            dropout=self.dropout,
            seed=None if self.seed is None else self.seed + 1,
            dtype=self.dtype_policy,
            name="self_attention",
            **self._initializers(),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "attention_window": self.attention_window,
                "max_global_tokens": self.max_global_tokens,
            }
        )
        return config
