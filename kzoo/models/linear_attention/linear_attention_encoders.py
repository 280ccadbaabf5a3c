"""Encoders on linear-time attention: Performer and Linformer.

Letters: B batch, T length, D `hidden_dim`, V `vocabulary_size`.
"""

import keras
from keras import ops

from kzoo.layers.position.position_embedding import PositionEmbedding
from kzoo.models.backbone import Backbone
from kzoo.models.linear_attention.linear_attention_encoder_blocks import (
    LinformerEncoderBlock,
)
from kzoo.models.linear_attention.linear_attention_encoder_blocks import (
    PerformerEncoderBlock,
)
from kzoo.layers.dropout import Dropout
from kzoo.models.checks import check_model_sizes
from kzoo.models.checks import validate_token_inputs
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rate


def _encoder_graph(model, vocabulary_size, hidden_dim, max_sequence_length, dropout, blocks, dtype, causal=False):
    """Sets the layers on `model`; returns its functional inputs and output."""
    # === Layers ===
    model.token_embedding = keras.layers.Embedding(
        vocabulary_size, hidden_dim, dtype=dtype, name="token_embedding"
    )
    model.position_embedding = PositionEmbedding(
        max_sequence_length, dtype=dtype, name="position_embedding"
    )
    model.embeddings_dropout = Dropout(
        dropout, dtype=dtype, name="embeddings_dropout"
    )
    model.transformer_layers = blocks
    # === Functional graph ===
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    padding_mask = keras.Input(shape=(None,), dtype="bool", name="padding_mask")
    tokens = model.token_embedding(token_ids)  # (B, T, D)
    x = ops.add(tokens, model.position_embedding(tokens))
    x = model.embeddings_dropout(x)
    for layer in model.transformer_layers:
        if causal:
            x = layer(x, padding_mask=padding_mask, use_causal_mask=True)
        else:
            x = layer(x, padding_mask=padding_mask)  # (B, T, D)
    return {"token_ids": token_ids, "padding_mask": padding_mask}, x


def _base_config(model):
    """The arguments both encoders take (after `Backbone.get_config`'s)."""
    return {
        "vocabulary_size": model.vocabulary_size,
        "num_layers": model.num_layers,
        "num_heads": model.num_heads,
        "hidden_dim": model.hidden_dim,
        "intermediate_dim": model.intermediate_dim,
        "max_sequence_length": model.max_sequence_length,
        "dropout": model.dropout,
    }


@keras.saving.register_keras_serializable(package="kzoo")
class PerformerEncoder(Backbone):
    """A Transformer encoder whose self-attention is Performer's FAVOR+.

    "Rethinking Attention with Performers" (Choromanski et al., 2021):
    token plus learned position embeddings, dropout, then `num_layers`
    post-LN `PerformerEncoderBlock`s. Attention costs O(T M) per layer.

    Args:
        vocabulary_size: number of token ids V.
        num_layers: number of blocks.
        num_heads: heads per block; must divide `hidden_dim`.
        hidden_dim: model width D.
        intermediate_dim: feed-forward width.
        max_sequence_length: longest input (learned positions).
        num_random_features: M random features per head.
        causal: unidirectional (prefix-sum) attention.
        dropout: dropout rate on embeddings and residual branches.
        seed: seed of the random features (block i uses `seed + i`).

    Inputs (dict):
        token_ids: (B, T) int.
        padding_mask: (B, T) bool, True for real tokens.

    Returns:
        (B, T, D) contextual token vectors.

    Example:

    >>> import numpy as np
    >>> from kzoo import PerformerEncoder
    >>> encoder = PerformerEncoder(100, 2, 2, 16, 32, max_sequence_length=64)
    >>> tuple(encoder({"token_ids": np.ones((2, 8), "int32"),
    ...                "padding_mask": np.ones((2, 8), bool)}).shape)
    (2, 8, 16)
    """

    SIZES = {
        "tiny": {"num_layers": 2, "num_heads": 2, "hidden_dim": 64,
                 "intermediate_dim": 256, "max_sequence_length": 128,
                 "num_random_features": 32},
        "small": {"num_layers": 4, "num_heads": 4, "hidden_dim": 256,
                  "intermediate_dim": 1024, "num_random_features": 128},
        "base": {"num_layers": 12, "num_heads": 12, "hidden_dim": 768,
                 "intermediate_dim": 3072, "num_random_features": 256},
    }
    SIZES_SOURCE = "kzoo's, on BERT's widths (tiny, mini, base)"
    DATA_ARGUMENTS = {"vocabulary_size": 30522}

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        max_sequence_length=512,
        num_random_features=256,
        causal=False,
        dropout=0.1,
        seed=None,
        dtype=None,
        **kwargs,
    ):
        check_model_sizes(vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim)
        check_positive_int("max_sequence_length", max_sequence_length)
        check_positive_int("num_random_features", num_random_features)
        check_rate("dropout", dropout)
        blocks = [
            PerformerEncoderBlock(
                num_heads,
                intermediate_dim,
                num_random_features=num_random_features,
                dropout=dropout,
                seed=None if seed is None else seed + i,
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        inputs, outputs = _encoder_graph(
            self, vocabulary_size, hidden_dim, max_sequence_length, dropout, blocks, dtype, causal
        )
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)
        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.max_sequence_length = max_sequence_length
        self.num_random_features = num_random_features
        self.causal = bool(causal)
        self.dropout = dropout
        self.seed = seed

    def call(self, inputs, training=None, mask=None):
        validate_token_inputs(inputs, ["token_ids"], [("padding_mask", "token_ids")])
        return super().call(inputs, training=training, mask=mask)

    def get_config(self):
        config = {**super().get_config(), **_base_config(self)}
        config.update(
            {
                "num_random_features": self.num_random_features,
                "causal": self.causal,
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="kzoo")
class LinformerEncoder(Backbone):
    """A Transformer encoder whose self-attention is Linformer's.

    "Linformer: Self-Attention with Linear Complexity" (Wang et al., 2020):
    token plus learned position embeddings, dropout, then `num_layers`
    post-LN `LinformerEncoderBlock`s projecting keys and values to
    `projected_length`. Attention costs O(T K) per layer.

    Args:
        vocabulary_size: number of token ids V.
        num_layers: number of blocks.
        num_heads: heads per block; must divide `hidden_dim`.
        hidden_dim: model width D.
        intermediate_dim: feed-forward width.
        max_sequence_length: longest input (positions and projections).
        projected_length: K.
        dropout: dropout rate.

    Inputs (dict):
        token_ids: (B, T) int.
        padding_mask: (B, T) bool, True for real tokens (padded keys are
            zeroed before the projection).

    Returns:
        (B, T, D) contextual token vectors.

    Example:

    >>> import numpy as np
    >>> from kzoo import LinformerEncoder
    >>> encoder = LinformerEncoder(100, 2, 2, 16, 32, max_sequence_length=64,
    ...                            projected_length=8)
    >>> tuple(encoder({"token_ids": np.ones((2, 8), "int32"),
    ...                "padding_mask": np.ones((2, 8), bool)}).shape)
    (2, 8, 16)
    """

    SIZES = {
        "tiny": {"num_layers": 2, "num_heads": 2, "hidden_dim": 64,
                 "intermediate_dim": 256, "max_sequence_length": 128,
                 "projected_length": 16},
        "small": {"num_layers": 4, "num_heads": 4, "hidden_dim": 256,
                  "intermediate_dim": 1024, "projected_length": 64},
        "base": {"num_layers": 12, "num_heads": 12, "hidden_dim": 768,
                 "intermediate_dim": 3072, "projected_length": 256},
    }
    SIZES_SOURCE = (
        "base: Wang et al. 2020 (RoBERTa-base widths, n 512, k 256); tiny and "
        "small are kzoo's"
    )
    DATA_ARGUMENTS = {"vocabulary_size": 50265}

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        max_sequence_length=512,
        projected_length=64,
        dropout=0.1,
        dtype=None,
        **kwargs,
    ):
        check_model_sizes(vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim)
        check_positive_int("max_sequence_length", max_sequence_length)
        check_positive_int("projected_length", projected_length)
        check_rate("dropout", dropout)
        blocks = [
            LinformerEncoderBlock(
                num_heads,
                intermediate_dim,
                projected_length=projected_length,
                max_sequence_length=max_sequence_length,
                dropout=dropout,
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        inputs, outputs = _encoder_graph(
            self, vocabulary_size, hidden_dim, max_sequence_length, dropout, blocks, dtype
        )
        super().__init__(inputs=inputs, outputs=outputs, dtype=dtype, **kwargs)
        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.max_sequence_length = max_sequence_length
        self.projected_length = projected_length
        self.dropout = dropout

    def call(self, inputs, training=None, mask=None):
        validate_token_inputs(inputs, ["token_ids"], [("padding_mask", "token_ids")])
        return super().call(inputs, training=training, mask=mask)

    def get_config(self):
        config = {**super().get_config(), **_base_config(self)}
        config["projected_length"] = self.projected_length
        return config
