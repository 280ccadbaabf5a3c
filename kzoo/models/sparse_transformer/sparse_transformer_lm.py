"""A causal language model on Sparse Transformer attention.

Letters: B batch, T length, D `hidden_dim`, V vocabulary.
"""

import keras
from keras import ops

from kzoo.layers.dropout import Dropout
from kzoo.layers.position.position_embedding import PositionEmbedding
from kzoo.models.backbone import Backbone
from kzoo.models.sparse_transformer.sparse_transformer_block import SparseTransformerBlock
from kzoo.models import generation
from kzoo.models.checks import check_model_sizes
from kzoo.models.checks import validate_token_inputs
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rate


@keras.saving.register_keras_serializable(package="kzoo")
class SparseTransformerLM(Backbone):
    """A decoder-only LM with factorized sparse self-attention.

    "Generating Long Sequences with Sparse Transformers" (Child, Gray,
    Radford and Sutskever, 2019): token plus learned position embeddings,
    `num_layers` pre-LN `SparseTransformerBlock`s (causal strided or fixed
    attention, O(n * (stride + n / stride))), a final LayerNorm, and an
    output projection tied to the token embedding. Logits are float32 under
    any dtype policy.

    Layers as attributes: `token_embedding`, `position_embedding`,
    `embeddings_dropout`, `transformer_layers` (list), `final_layer_norm`.

    Args:
        vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim:
            sizes; `num_heads` must divide `hidden_dim`.
        pattern: "strided" or "fixed".
        stride: the pattern's stride l (about sqrt(T) in the paper).
        num_summary: summary tokens per block for "fixed".
        max_sequence_length: number of learned positions.
        dropout: dropout rate everywhere.

    Inputs (dict): `token_ids` (B, T) int, `padding_mask` (B, T) bool.

    Returns:
        (B, T, V) float32 next-token logits; position t depends only on
        tokens 0..t.

    Example:

    >>> import numpy as np
    >>> from kzoo import SparseTransformerLM
    >>> lm = SparseTransformerLM(50, 2, 2, 16, 32, stride=4, max_sequence_length=32)
    >>> ids = np.ones((2, 16), "int32")
    >>> tuple(lm({"token_ids": ids, "padding_mask": ids > 0}).shape)
    (2, 16, 50)
    >>> lm.generate({"token_ids": ids[:, :3], "padding_mask": ids[:, :3] > 0},
    ...             max_length=8).shape
    (2, 8)
    """

    SIZES = {
        "tiny": {"num_layers": 2, "num_heads": 2, "hidden_dim": 64,
                 "intermediate_dim": 256, "stride": 4, "max_sequence_length": 64},
        "base": {"num_layers": 30, "num_heads": 8, "hidden_dim": 512,
                 "intermediate_dim": 2048, "pattern": "fixed", "stride": 128,
                 "num_summary": 32, "max_sequence_length": 12288},
    }
    SIZES_SOURCE = (
        "base: Child et al. 2019, the enwik8 model (30 layers, 8 heads, d 512, "
        "fixed pattern, stride 128, c 32, 12,288 positions; feed-forward 4d); "
        "tiny is kzoo's"
    )
    DATA_ARGUMENTS = {"vocabulary_size": 256}

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        pattern="strided",
        stride=16,
        num_summary=1,
        max_sequence_length=1024,
        dropout=0.1,
        dtype=None,
        **kwargs,
    ):
        check_model_sizes(
            vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim
        )
        check_positive_int("max_sequence_length", max_sequence_length)
        check_rate("dropout", dropout)

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
            SparseTransformerBlock(
                num_heads,
                intermediate_dim,
                pattern=pattern,
                stride=stride,
                num_summary=num_summary,
                dropout=dropout,
                activation="gelu",
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.final_layer_norm = keras.layers.LayerNormalization(
            epsilon=1e-5, dtype=dtype, name="final_layer_norm"
        )

        # === Functional graph ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="bool", name="padding_mask")
        tokens = self.token_embedding(token_ids)  # (B, T, D)
        x = self.embeddings_dropout(ops.add(tokens, self.position_embedding(tokens)))
        for layer in self.transformer_layers:
            x = layer(x, padding_mask=padding_mask, use_causal_mask=True)  # (B, T, D)
        x = self.final_layer_norm(x)
        logits = self.token_embedding(x, reverse=True)  # (B, T, V) float32
        super().__init__(
            inputs={"token_ids": token_ids, "padding_mask": padding_mask},
            outputs=logits,
            dtype=dtype,
            **kwargs,
        )

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.pattern = pattern
        self.stride = stride
        self.num_summary = num_summary
        self.max_sequence_length = max_sequence_length
        self.dropout = dropout

    def call(self, inputs, training=None, mask=None):
        validate_token_inputs(inputs, ["token_ids"], [("padding_mask", "token_ids")])
        return super().call(inputs, training=training, mask=mask)

    def generate(self, inputs, max_length=None, sampler="greedy", stop_token_ids=None,
                 padding_token_id=0):
        """Continues right-padded prompts: the contract of
        `kzoo.models.generation`.

        There is no cache: each new token reruns the full forward pass on
        the (B, L) buffer, positions not yet generated masked
        (`generation.forward_next`), so a token costs a whole forward pass
        of length L; the loop is compiled once per input shape.

        Args:
            inputs: dict with `token_ids` (B, P) int and `padding_mask`
                (B, P) bool (each prompt with a token at position 0), or a
                bare (B, P) array.
            max_length: total output length, prompt included; default
                (None) and upper bound `max_sequence_length`.
            sampler: "greedy", "top_k", "top_p", "random", "beam" or a
                sampler object.
            stop_token_ids: tuple of ids, or None.

        Returns:
            (B, max_length) int32 NumPy array, the prompt tokens kept.
        """
        max_length = generation.resolve_max_length(
            max_length, self.max_sequence_length, self.max_sequence_length)

        def decoder(batch_size, max_length):
            return generation.forward_next(self, max_length), None

        return generation.generate_causal(
            self, inputs, max_length=max_length, sampler=sampler,
            stop_token_ids=stop_token_ids, padding_token_id=padding_token_id,
            vocabulary_size=self.vocabulary_size, decoder=decoder,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "pattern": self.pattern,
            "stride": self.stride,
            "num_summary": self.num_summary,
            "max_sequence_length": self.max_sequence_length,
            "dropout": self.dropout,
        }
