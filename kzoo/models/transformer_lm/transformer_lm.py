"""A decoder-only Transformer language model with cached generation.

Letters: B batch, T length, D `hidden_dim`, V vocabulary, L layers,
S_max cache length, N heads, H head size.
"""

import keras
from keras import ops

from kzoo.layers.dropout import Dropout
from kzoo.layers.position.token_and_position_embedding import TokenAndPositionEmbedding
from kzoo.layers.position.token_and_position_embedding import attention_position
from kzoo.layers.position.token_and_position_embedding import check_position_encoding
from kzoo.layers.transformer.transformer_decoder_block import TransformerDecoderBlock
from kzoo.models import generation
from kzoo.models.backbone import Backbone
from kzoo.models.checks import check_model_sizes
from kzoo.models.checks import validate_token_inputs
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rate


@keras.saving.register_keras_serializable(package="kzoo")
class TransformerLM(Backbone):
    """A GPT-style causal language model.

    The decoder of "Attention Is All You Need" (Vaswani et al., 2017) without
    cross-attention, trained as a left-to-right LM as in "Improving Language
    Understanding by Generative Pre-Training" (Radford et al., 2018): token
    embeddings plus positions (learned by default, as GPT; or sinusoidal,
    rotary, ALiBi, T5 buckets), `num_layers` causal
    `TransformerDecoderBlock`s (pre-LN by default, with a final LayerNorm),
    and an output projection tied to the token embedding. Logits are
    float32 under any dtype policy. With ALiBi (or rotary, sinusoidal, T5)
    positions the model runs on sequences longer than it was trained on.

    Layers as attributes: `embeddings` (a `TokenAndPositionEmbedding`,
    whose `token_embedding` the head is tied to), `transformer_layers`
    (list), `final_layer_norm` (None for post-LN).

    Args:
        vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim:
            sizes; `num_heads` must divide `hidden_dim`.
        max_sequence_length: number of positions (also the longest
            generation).
        dropout: dropout rate.
        normalize_first: pre-LN (default) or post-LN.
        activation: feed-forward activation.
        position_encoding: "learned", "sinusoidal", "rotary", "alibi" or
            "t5".

    Inputs (dict): `token_ids` (B, T) int, `padding_mask` (B, T) bool.

    Returns:
        (B, T, V) float32 next-token logits.

    Generation: `generate({"token_ids", "padding_mask"}, max_length=None,
    sampler="greedy", stop_token_ids=None)` with right-padded prompts, the
    contract of `kzoo.models.generation` (see `generate`).

    Example:

    >>> import numpy as np
    >>> from kzoo import TransformerLM
    >>> lm = TransformerLM(50, 2, 2, 16, 32, max_sequence_length=32)
    >>> lm.generate({"token_ids": np.array([[3, 4, 0, 0]]),
    ...              "padding_mask": np.array([[1, 1, 0, 0]], bool)},
    ...             max_length=8).shape
    (1, 8)
    """

    SIZES = {
        "tiny": {"num_layers": 2, "num_heads": 2, "hidden_dim": 64,
                 "intermediate_dim": 256, "max_sequence_length": 128},
        "small": {"num_layers": 12, "num_heads": 12, "hidden_dim": 768,
                  "intermediate_dim": 3072, "max_sequence_length": 1024},
        "medium": {"num_layers": 24, "num_heads": 16, "hidden_dim": 1024,
                   "intermediate_dim": 4096, "max_sequence_length": 1024},
        "large": {"num_layers": 36, "num_heads": 20, "hidden_dim": 1280,
                  "intermediate_dim": 5120, "max_sequence_length": 1024},
        "xl": {"num_layers": 48, "num_heads": 25, "hidden_dim": 1600,
               "intermediate_dim": 6400, "max_sequence_length": 1024},
    }
    SIZES_SOURCE = (
        "GPT-2 (Radford et al. 2019) and its released configs; tiny is kzoo's"
    )
    DATA_ARGUMENTS = {"vocabulary_size": 50257}

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        max_sequence_length=512,
        dropout=0.1,
        normalize_first=True,
        activation="gelu",
        position_encoding="learned",
        dtype=None,
        **kwargs,
    ):
        check_model_sizes(vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim)
        check_positive_int("max_sequence_length", max_sequence_length)
        check_rate("dropout", dropout)
        check_position_encoding(position_encoding)

        # === Layers ===
        self.embeddings = TokenAndPositionEmbedding(
            vocabulary_size, hidden_dim, max_sequence_length=max_sequence_length,
            position_encoding=position_encoding, dtype=dtype, name="embeddings",
        )
        self.embeddings_dropout = Dropout(dropout, dtype=dtype, name="embeddings_dropout")
        self.transformer_layers = [
            TransformerDecoderBlock(
                num_heads, intermediate_dim, dropout=dropout, activation=activation,
                normalize_first=normalize_first,
                position_encoding=attention_position(position_encoding),
                dtype=dtype, name=f"transformer_layer_{i}",
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
            x = layer(x, decoder_padding_mask=padding_mask)  # (B, T, D)
        if self.final_layer_norm is not None:
            x = self.final_layer_norm(x)
        logits = self.embeddings.reverse(x)  # (B, T, V) float32
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
        self.max_sequence_length = max_sequence_length
        self.dropout = dropout
        self.normalize_first = normalize_first
        self.activation = activation
        self.position_encoding = position_encoding

    @property
    def token_embedding(self):
        return self.embeddings.token_embedding

    def call(self, inputs, training=None, mask=None):
        validate_token_inputs(inputs, ["token_ids"], [("padding_mask", "token_ids")])
        return super().call(inputs, training=training, mask=mask)

    # -- cached decoding ----------------------------------------------------

    def empty_cache(self, batch_size, max_length):
        """(B, L, 2, S_max, N, H) zeros in the compute dtype."""
        head = self.hidden_dim // self.num_heads
        return ops.zeros(
            (batch_size, self.num_layers, 2, max_length, self.num_heads, head),
            dtype=self.compute_dtype,
        )

    def call_with_cache(self, token_ids, cache, cache_update_index):
        """Runs (B, T) tokens at positions `cache_update_index`...; returns
        float32 logits (B, T, V) and the updated cache."""
        x = self.embeddings(token_ids, start_index=cache_update_index)  # (B, T, D)
        caches = []
        for i, layer in enumerate(self.transformer_layers):
            x, layer_cache = layer(
                x,
                self_attention_cache=cache[:, i],
                self_attention_cache_update_index=cache_update_index,
            )
            caches.append(layer_cache)
        if self.final_layer_norm is not None:
            x = self.final_layer_norm(x)
        return self.embeddings.reverse(x), ops.stack(caches, axis=1)

    def generate(self, inputs, max_length=None, sampler="greedy", stop_token_ids=None,
                 padding_token_id=0):
        """Continues right-padded prompts up to `max_length` tokens.

        The contract of `kzoo.models.generation`: one compiled, cached decode
        (O(1) layer calls per token) per input shape.

        Args:
            inputs: dict with `token_ids` (B, P) int and `padding_mask`
                (B, P) bool (True for prompt tokens; each prompt starts at
                position 0 and has at least one token); a bare (B, P) array
                is an unpadded prompt.
            max_length: total length of the output, prompt included;
                default (None) `max_sequence_length`, which also bounds it
                for learned positions.
            sampler: "greedy", "top_k", "top_p", "random", "beam" or a
                sampler object (`kzoo.models.generation.BeamSampler`, a
                keras_hub Sampler).
            stop_token_ids: tuple of ids, or None; generation stops once
                every row produced one, and later tokens become
                `padding_token_id`.

        Returns:
            (B, max_length) int32 NumPy array, the prompt tokens kept.
        """
        limit = self.max_sequence_length if self.position_encoding == "learned" else None
        max_length = generation.resolve_max_length(
            max_length, self.max_sequence_length, limit,
            "max_sequence_length, the number of learned positions")
        return generation.generate_causal(
            self, inputs, max_length=max_length, sampler=sampler,
            stop_token_ids=stop_token_ids, padding_token_id=padding_token_id,
            vocabulary_size=self.vocabulary_size, decoder=self._cached_decoder,
        )

    def _cached_decoder(self, batch_size, max_length):
        """`next` for the samplers: feeds token index - 1 through the cache."""

        def next(prompt, cache, index):
            batch = ops.shape(prompt)[0]
            last = ops.slice(prompt, [0, index - 1], [batch, 1])  # (B, 1)
            logits, cache = self.call_with_cache(last, cache, index - 1)
            return logits[:, 0], None, cache

        return next, self.empty_cache(batch_size, max_length)

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
            "activation": self.activation,
            "position_encoding": self.position_encoding,
        }
