"""Transformer encoder blocks whose self-attention is linear-time."""

import keras

from kzoo.layers.attention.linformer_attention import LinformerAttention
from kzoo.layers.attention.performer_attention import PerformerAttention
from kzoo.layers.transformer.transformer_encoder_block import TransformerEncoderBlock
from kzoo.utils.validation import check_positive_int


@keras.saving.register_keras_serializable(package="kzoo")
class PerformerEncoderBlock(TransformerEncoderBlock):
    """`TransformerEncoderBlock` with `PerformerAttention` (FAVOR+).

    "Rethinking Attention with Performers" (Choromanski et al., 2021).
    Args are those of `TransformerEncoderBlock` plus `num_random_features`.
    Call with `padding_mask` and optionally `use_causal_mask`.
    """

    def __init__(self, num_heads, intermediate_dim, num_random_features=256, **kwargs):
        super().__init__(num_heads, intermediate_dim, **kwargs)
        self.num_random_features = check_positive_int(
            "num_random_features", num_random_features
        )

    def _build_self_attention(self, hidden_dim):
        return PerformerAttention(
            num_heads=self.num_heads,
            key_dim=hidden_dim // self.num_heads,
            num_random_features=self.num_random_features,
            seed=self.seed,
            dtype=self.dtype_policy,
            name="self_attention",
            **self._initializers(),
        )

    def get_config(self):
        config = super().get_config()
        config["num_random_features"] = self.num_random_features
        return config


@keras.saving.register_keras_serializable(package="kzoo")
class LinformerEncoderBlock(TransformerEncoderBlock):
    """`TransformerEncoderBlock` with `LinformerAttention`.

    "Linformer: Self-Attention with Linear Complexity" (Wang et al., 2020).
    Args are those of `TransformerEncoderBlock` plus `projected_length` and
    `max_sequence_length`. Call with `padding_mask`.
    """

    def __init__(
        self, num_heads, intermediate_dim, projected_length, max_sequence_length, **kwargs
    ):
        super().__init__(num_heads, intermediate_dim, **kwargs)
        self.projected_length = check_positive_int("projected_length", projected_length)
        self.max_sequence_length = check_positive_int(
            "max_sequence_length", max_sequence_length
        )

    def _build_self_attention(self, hidden_dim):
        return LinformerAttention(
            num_heads=self.num_heads,
            key_dim=hidden_dim // self.num_heads,
            projected_length=self.projected_length,
            max_sequence_length=self.max_sequence_length,
            dropout=self.dropout,
            seed=self.seed,
            dtype=self.dtype_policy,
            name="self_attention",
            **self._initializers(),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "projected_length": self.projected_length,
                "max_sequence_length": self.max_sequence_length,
            }
        )
        return config
