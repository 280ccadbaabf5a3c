"""A pre-LN causal block whose self-attention is SparseTransformerAttention."""

import keras

from kzoo.layers.attention.sparse_transformer_attention import SparseTransformerAttention
from kzoo.layers.transformer.transformer_encoder_block import TransformerEncoderBlock


@keras.saving.register_keras_serializable(package="kzoo")
class SparseTransformerBlock(TransformerEncoderBlock):
    """`TransformerEncoderBlock` with causal factorized sparse attention.

    The residual block of "Generating Long Sequences with Sparse
    Transformers" (Child et al., 2019): pre-LN by default, attention with
    the strided or fixed pattern (always causal). Overrides only
    `_build_self_attention`; the variables are those of
    `TransformerEncoderBlock`, in the same order.

    Args:
        num_heads, intermediate_dim: as for `TransformerEncoderBlock`.
        pattern: "strided" or "fixed".
        stride: the pattern's block length / stride.
        num_summary: summary tokens per block for "fixed".
        **kwargs: the other `TransformerEncoderBlock` arguments
            (`normalize_first` defaults to True here).

    Example:

    >>> import keras
    >>> from kzoo.models.sparse_transformer.sparse_transformer_block import (
    ...     SparseTransformerBlock)
    >>> block = SparseTransformerBlock(2, 32, pattern="strided", stride=4)
    >>> x = keras.random.normal((2, 16, 16))
    >>> tuple(block(x, use_causal_mask=True).shape)
    (2, 16, 16)
    """

    def __init__(
        self,
        num_heads,
        intermediate_dim,
        pattern="strided",
        stride=16,
        num_summary=1,
        normalize_first=True,
        **kwargs,
    ):
        super().__init__(
            num_heads, intermediate_dim, normalize_first=normalize_first, **kwargs
        )
        # Validates pattern, stride and num_summary with clear errors.
        SparseTransformerAttention(
            num_heads, 1, pattern=pattern, stride=stride, num_summary=num_summary
        )
        self.pattern = pattern
        self.stride = stride
        self.num_summary = num_summary

    def _build_self_attention(self, hidden_dim):
        return SparseTransformerAttention(
            num_heads=self.num_heads,
            key_dim=hidden_dim // self.num_heads,
            pattern=self.pattern,
            stride=self.stride,
            num_summary=self.num_summary,
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
                "pattern": self.pattern,
                "stride": self.stride,
                "num_summary": self.num_summary,
            }
        )
        return config
