"""BERT's encoder network.

Letters: B batch, T length, D `hidden_dim`, V `vocabulary_size`.
"""

import keras

from kzoo.layers.dropout import Dropout
from kzoo.layers.position.position_embedding import PositionEmbedding
from kzoo.layers.transformer.transformer_encoder_block import TransformerEncoderBlock
from kzoo.models.backbone import Backbone
from kzoo.models.checks import check_model_sizes
from kzoo.models.checks import validate_token_inputs
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rate

# Google BERT's released sizes (github.com/google-research/bert): layers L
# and width H; heads H / 64, intermediate 4H, 512 positions. "nano" is a
# kzoo addition below Google's smallest (tiny), the student of
# recipes/distill.py on a 2-core CPU.
BERT_SIZES = {
    "nano": {"num_layers": 2, "hidden_dim": 64},
    "tiny": {"num_layers": 2, "hidden_dim": 128},
    "mini": {"num_layers": 4, "hidden_dim": 256},
    "small": {"num_layers": 4, "hidden_dim": 512},
    "medium": {"num_layers": 8, "hidden_dim": 512},
    "base": {"num_layers": 12, "hidden_dim": 768},
    "large": {"num_layers": 24, "hidden_dim": 1024},
}


def bert_kernel_initializer():
    return keras.initializers.TruncatedNormal(stddev=0.02)


@keras.saving.register_keras_serializable(package="kzoo")
class BertEncoder(Backbone):
    """The BERT encoder: embeddings, post-LN blocks, pooled [CLS] output.

    From "BERT: Pre-training of Deep Bidirectional Transformers for Language
    Understanding" (Devlin et al., 2019): the sum of token, segment and
    learned position embeddings, LayerNorm and dropout, `num_layers`
    post-LN `TransformerEncoderBlock`s with GELU, and a pooled output
    `tanh(W h_[CLS] + b)` from the first token. Layers as attributes, for
    copying weights: `token_embedding` (`keras.layers.ReversibleEmbedding`),
    `segment_embedding`, `position_embedding`, `embeddings_layer_norm`,
    `transformer_layers` (list), `pooled_dense`.

    Args:
        vocabulary_size: number of token ids V.
        num_layers: number of blocks.
        num_heads: heads per block; must divide `hidden_dim`.
        hidden_dim: model width D.
        intermediate_dim: feed-forward width (4D in BERT).
        dropout: dropout rate everywhere.
        max_sequence_length: number of learned positions.
        num_segments: number of segment ids (2 in BERT).

    Inputs (dict):
        token_ids: (B, T) int; token 0 of each row is [CLS] for pooling.
        segment_ids: (B, T) int.
        padding_mask: (B, T) bool, True for real tokens.

    Returns:
        dict with `sequence_output` (B, T, D) and `pooled_output` (B, D).

    Example:

    >>> import numpy as np
    >>> from kzoo import BertEncoder
    >>> encoder = BertEncoder.from_size("tiny", vocabulary_size=100)
    >>> ids = np.ones((2, 8), "int32")
    >>> out = encoder({"token_ids": ids, "segment_ids": 0 * ids,
    ...                "padding_mask": ids > 0})
    >>> tuple(out["pooled_output"].shape)
    (2, 128)
    """

    SIZES = {
        size: {
            "num_layers": dims["num_layers"],
            "num_heads": dims["hidden_dim"] // 64,
            "hidden_dim": dims["hidden_dim"],
            "intermediate_dim": 4 * dims["hidden_dim"],
            "max_sequence_length": 512,
        }
        for size, dims in BERT_SIZES.items()
    }
    SIZES_SOURCE = "Google BERT's released sizes; nano is kzoo's"
    DATA_ARGUMENTS = {"vocabulary_size": 30522}

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        dropout=0.1,
        max_sequence_length=512,
        num_segments=2,
        dtype=None,
        **kwargs,
    ):
        check_model_sizes(vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim)
        check_rate("dropout", dropout)
        check_positive_int("max_sequence_length", max_sequence_length)
        check_positive_int("num_segments", num_segments)

        # === Layers ===
        init = bert_kernel_initializer
        self.token_embedding = keras.layers.ReversibleEmbedding(
            vocabulary_size,
            hidden_dim,
            reverse_dtype="float32",
            embeddings_initializer=init(),
            dtype=dtype,
            name="token_embedding",
        )
        self.segment_embedding = keras.layers.Embedding(
            num_segments, hidden_dim, embeddings_initializer=init(), dtype=dtype,
            name="segment_embedding",
        )
        self.position_embedding = PositionEmbedding(
            max_sequence_length, initializer=init(), dtype=dtype, name="position_embedding"
        )
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=1e-12, dtype=dtype, name="embeddings_layer_norm"
        )
        self.embeddings_dropout = Dropout(
            dropout, dtype=dtype, name="embeddings_dropout"
        )
        self.transformer_layers = [
            TransformerEncoderBlock(
                num_heads,
                intermediate_dim,
                dropout=dropout,
                activation="gelu",
                normalize_first=False,
                layer_norm_epsilon=1e-12,
                kernel_initializer=init(),
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.pooled_dense = keras.layers.Dense(
            hidden_dim, activation="tanh", kernel_initializer=init(), dtype=dtype,
            name="pooled_dense",
        )

        # === Functional graph ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
        padding_mask = keras.Input(shape=(None,), dtype="bool", name="padding_mask")
        tokens = self.token_embedding(token_ids)  # (B, T, D)
        x = tokens + self.position_embedding(tokens) + self.segment_embedding(segment_ids)
        x = self.embeddings_dropout(self.embeddings_layer_norm(x))
        for layer in self.transformer_layers:
            x = layer(x, padding_mask=padding_mask)  # (B, T, D)
        pooled = self.pooled_dense(x[:, 0, :])  # (B, D)
        super().__init__(
            inputs={
                "token_ids": token_ids,
                "segment_ids": segment_ids,
                "padding_mask": padding_mask,
            },
            outputs={"sequence_output": x, "pooled_output": pooled},
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.dropout = dropout
        self.max_sequence_length = max_sequence_length
        self.num_segments = num_segments

    def call(self, inputs, training=None, mask=None):
        validate_token_inputs(
            inputs,
            ["token_ids", "segment_ids"],
            [("padding_mask", "token_ids"), ("segment_ids", "token_ids")],
        )
        return super().call(inputs, training=training, mask=mask)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "dropout": self.dropout,
            "max_sequence_length": self.max_sequence_length,
            "num_segments": self.num_segments,
        }
