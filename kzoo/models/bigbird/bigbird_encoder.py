"""BigBird encoder network: embeddings, then BigBird encoder blocks.

Letters: B batch, T length, D `hidden_dim`, V `vocabulary_size`.
"""

import keras
import numpy as np
from keras import ops

from kzoo.backend.saved_model import NoDefaultSaveSignature
from kzoo.layers.dropout import Dropout
from kzoo.layers.position.position_embedding import PositionEmbedding
from kzoo.models.backbone import Backbone
from kzoo.models.bigbird.bigbird_encoder_block import BigBirdEncoderBlock
from kzoo.models.checks import check_model_sizes
from kzoo.models.checks import validate_token_inputs
from kzoo.utils.validation import check_non_negative_int
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rate


@keras.saving.register_keras_serializable(package="kzoo")
class BigBirdEncoder(NoDefaultSaveSignature, Backbone):
    """A Transformer encoder with BigBird block-sparse attention (ITC).

    "Big Bird: Transformers for Longer Sequences" (Zaheer et al., 2020):
    token plus learned position embeddings, dropout, `num_layers`
    `BigBirdEncoderBlock`s (first and last blocks global, sliding window of
    3 blocks, `num_random_blocks` random blocks; O(n) time and memory), and
    a final LayerNorm when the blocks are pre-LN. Layer i's random pattern is
    seeded by `seed + 10 * i + 1`; with `seed=None` a seed is drawn once and
    kept in the config, so a reloaded model has the same patterns.

    Layers as attributes: `token_embedding`, `position_embedding`,
    `embeddings_dropout`, `transformer_layers` (list), `final_layer_norm`.

    Args:
        vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim:
            sizes; `num_heads` must divide `hidden_dim`.
        block_size: rows per attention block.
        num_random_blocks: random key blocks per query block and head.
        max_sequence_length: number of learned positions.
        dropout: dropout rate everywhere.
        normalize_first: pre-LN blocks (and a final LayerNorm) or post-LN.
        seed: base seed of the random patterns and dropout.

    Inputs (dict):
        token_ids: (B, T) int; T needs at least 3 blocks (padded inside to a
            multiple of `block_size`) and must be static when traced.
        padding_mask: (B, T) bool, True for real tokens.

    Returns:
        (B, T, D) contextual token vectors.

    Example:

    >>> import numpy as np
    >>> from kzoo import BigBirdEncoder
    >>> encoder = BigBirdEncoder(100, 2, 2, 16, 32, block_size=4,
    ...                          num_random_blocks=1, max_sequence_length=64)
    >>> ids = np.ones((2, 24), "int32")
    >>> tuple(encoder({"token_ids": ids, "padding_mask": ids > 0}).shape)
    (2, 24, 16)
    """

    SIZES = {
        "tiny": {"num_layers": 2, "num_heads": 2, "hidden_dim": 64,
                 "intermediate_dim": 256, "block_size": 4, "num_random_blocks": 1,
                 "max_sequence_length": 256},
        "base": {"num_layers": 12, "num_heads": 12, "hidden_dim": 768,
                 "intermediate_dim": 3072, "block_size": 64, "num_random_blocks": 3,
                 "max_sequence_length": 4096},
        "large": {"num_layers": 24, "num_heads": 16, "hidden_dim": 1024,
                  "intermediate_dim": 4096, "block_size": 64, "num_random_blocks": 3,
                  "max_sequence_length": 4096},
    }
    SIZES_SOURCE = (
        "Zaheer et al. 2020, BigBird-ITC base and large (blocks of 64, 3 random"
        " blocks, 4,096 positions); tiny is kzoo's"
    )
    DATA_ARGUMENTS = {"vocabulary_size": 50358}

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        block_size,
        num_random_blocks=3,
        max_sequence_length=4096,
        dropout=0.1,
        normalize_first=False,
        seed=None,
        dtype=None,
        **kwargs,
    ):
        check_model_sizes(
            vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim
        )
        check_positive_int("block_size", block_size)
        check_non_negative_int("num_random_blocks", num_random_blocks)
        check_positive_int("max_sequence_length", max_sequence_length)
        check_rate("dropout", dropout)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**30))
        check_non_negative_int("seed", seed)

        # === Layers ===
        self.token_embedding = keras.layers.ReversibleEmbedding(
            vocabulary_size,
            hidden_dim,
            reverse_dtype="float32",
            embeddings_initializer="glorot_uniform",
            dtype=dtype,
            name="token_embedding",
        )
        self.position_embedding = PositionEmbedding(
            max_sequence_length, dtype=dtype, name="position_embedding"
        )
        self.embeddings_dropout = Dropout(
            dropout, dtype=dtype, name="embeddings_dropout"
        )
        self.transformer_layers = [
            BigBirdEncoderBlock(
                num_heads,
                intermediate_dim,
                block_size=block_size,
                num_random_blocks=num_random_blocks,
                seed=seed + 10 * i,
                dropout=dropout,
                activation="gelu",
                normalize_first=normalize_first,
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.final_layer_norm = (
            keras.layers.LayerNormalization(
                epsilon=1e-5, dtype=dtype, name="final_layer_norm"
            )
            if normalize_first
            else None
        )

        # === Functional graph ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="bool", name="padding_mask")
        tokens = self.token_embedding(token_ids)  # (B, T, D)
        x = self.embeddings_dropout(ops.add(tokens, self.position_embedding(tokens)))
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
        self.block_size = block_size
        self.num_random_blocks = num_random_blocks
        self.max_sequence_length = max_sequence_length
        self.dropout = dropout
        self.normalize_first = normalize_first
        self.seed = seed

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
            "block_size": self.block_size,
            "num_random_blocks": self.num_random_blocks,
            "max_sequence_length": self.max_sequence_length,
            "dropout": self.dropout,
            "normalize_first": self.normalize_first,
            "seed": self.seed,
        }
