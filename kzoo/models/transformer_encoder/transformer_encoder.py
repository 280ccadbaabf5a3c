"""A Transformer encoder network: embeddings, then N encoder blocks.

Letters: B batch, T length, D `hidden_dim`, V `vocabulary_size`.
"""

import keras

from kzoo.layers.dropout import Dropout
from kzoo.layers.position.token_and_position_embedding import TokenAndPositionEmbedding
from kzoo.layers.position.token_and_position_embedding import attention_position
from kzoo.layers.position.token_and_position_embedding import check_position_encoding
from kzoo.layers.transformer.transformer_encoder_block import TransformerEncoderBlock
from kzoo.models.backbone import Backbone
from kzoo.models.checks import check_model_sizes
from kzoo.models.checks import validate_token_inputs
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rate


# "Attention Is All You Need" (Vaswani et al., 2017), Table 3: base and big
# (layers per stack, heads, width, feed-forward); tiny and small are kzoo's.
# The sizes of TransformerEncoder and TransformerSeq2Seq.
TRANSFORMER_SIZES = {
    "tiny": {"num_layers": 2, "num_heads": 2, "hidden_dim": 64,
             "intermediate_dim": 256, "max_sequence_length": 128},
    "small": {"num_layers": 4, "num_heads": 4, "hidden_dim": 256, "intermediate_dim": 1024},
    "base": {"num_layers": 6, "num_heads": 8, "hidden_dim": 512, "intermediate_dim": 2048},
    "big": {"num_layers": 6, "num_heads": 16, "hidden_dim": 1024, "intermediate_dim": 4096},
}


@keras.saving.register_keras_serializable(package="kzoo")
class TransformerEncoder(Backbone):
    """A stack of Transformer encoder blocks over token embeddings.

    The encoder of "Attention Is All You Need" (Vaswani et al., 2017):
    token embeddings plus positions, dropout, `num_layers`
    `TransformerEncoderBlock`s, and a final layer normalization when the
    blocks are pre-LN. Positions are learned, the paper's sinusoids (both
    added to the embeddings), rotary, ALiBi or T5 buckets (inside every
    block's attention).

    Its layers are attributes, for reading or copying weights: `embeddings`
    (a `TokenAndPositionEmbedding`; `token_embedding` is its
    `keras.layers.ReversibleEmbedding`, so a head can tie its output
    projection to it), `embeddings_dropout`, `transformer_layers` (a list)
    and `final_layer_norm` (None for post-LN).

    Args:
        vocabulary_size: number of token ids V.
        num_layers: number of encoder blocks.
        num_heads: attention heads per block; must divide `hidden_dim`.
        hidden_dim: model width D.
        intermediate_dim: feed-forward hidden width.
        max_sequence_length: longest input for learned positions.
        dropout: dropout rate everywhere.
        normalize_first: pre-LN blocks (and a final LayerNorm) or post-LN.
        position_encoding: "learned", "sinusoidal", "rotary", "alibi" or
            "t5".
        activation: feed-forward activation.

    Inputs (dict):
        token_ids: (B, T) int.
        padding_mask: (B, T) bool, True for real tokens.

    Returns:
        (B, T, D) contextual token vectors.

    Example:

    >>> import numpy as np
    >>> from kzoo import TransformerEncoder
    >>> encoder = TransformerEncoder(100, 2, 2, 16, 32, max_sequence_length=64)
    >>> tuple(encoder({"token_ids": np.ones((2, 8), "int32"),
    ...                "padding_mask": np.ones((2, 8), bool)}).shape)
    (2, 8, 16)
    """

    SIZES = TRANSFORMER_SIZES
    SIZES_SOURCE = "Vaswani et al. 2017, Table 3 (base, big); tiny and small are kzoo's"
    DATA_ARGUMENTS = {"vocabulary_size": 37000}

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        max_sequence_length=512,
        dropout=0.1,
        normalize_first=False,
        position_encoding="learned",
        activation="relu",
        dtype=None,
        **kwargs,
    ):
        check_model_sizes(vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim)
        check_positive_int("max_sequence_length", max_sequence_length)
        check_rate("dropout", dropout)
        check_position_encoding(position_encoding)

        # === Layers ===
        self.embeddings = TokenAndPositionEmbedding(
            vocabulary_size,
            hidden_dim,
            max_sequence_length=max_sequence_length,
            position_encoding=position_encoding,
            dtype=dtype,
            name="embeddings",
        )
        self.embeddings_dropout = Dropout(
            dropout, dtype=dtype, name="embeddings_dropout"
        )
        self.transformer_layers = [
            TransformerEncoderBlock(
                num_heads,
                intermediate_dim,
                dropout=dropout,
                activation=activation,
                normalize_first=normalize_first,
                position_encoding=attention_position(position_encoding),
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.final_layer_norm = (
            keras.layers.LayerNormalization(epsilon=1e-5, dtype=dtype, name="final_layer_norm")
            if normalize_first
            else None
        )

        # === Functional graph ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="bool", name="padding_mask")
        x = self.embeddings_dropout(self.embeddings(token_ids))  # (B, T, D)
        for layer in self.transformer_layers:
            x = layer(x, padding_mask=padding_mask)  # (B, T, D)
        if self.final_layer_norm is not None:
            x = self.final_layer_norm(x)
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs=x,
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.max_sequence_length = max_sequence_length
        self.dropout = dropout
        self.normalize_first = normalize_first
        self.position_encoding = position_encoding
        self.activation = activation

    @property
    def token_embedding(self):
        return self.embeddings.token_embedding

    def call(self, inputs, training=None, mask=None):
        validate_token_inputs(inputs, ["token_ids"], [("padding_mask", "token_ids")])
        return super().call(inputs, training=training, mask=mask)

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "max_sequence_length": self.max_sequence_length,
            "dropout": self.dropout,
            "normalize_first": self.normalize_first,
            "position_encoding": self.position_encoding,
            "activation": self.activation,
        }
