"""The encoder-decoder Transformer with cached generation.

Letters: B batch, S source length, T target length, D `hidden_dim`,
V target vocabulary, L layers, N heads, H head size.
"""


import keras
from keras import ops

from kzoo.layers.dropout import Dropout
from kzoo.layers.position.token_and_position_embedding import TokenAndPositionEmbedding
from kzoo.layers.position.token_and_position_embedding import attention_position
from kzoo.layers.position.token_and_position_embedding import check_position_encoding
from kzoo.layers.transformer.transformer_decoder_block import TransformerDecoderBlock
from kzoo.layers.transformer.transformer_encoder_block import TransformerEncoderBlock
from kzoo.models import generation
from kzoo.models.backbone import Backbone
from kzoo.models.checks import check_model_sizes
from kzoo.models.checks import validate_token_inputs
from kzoo.models.transformer_encoder.transformer_encoder import TRANSFORMER_SIZES
from kzoo.utils.validation import check_token_id_range
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rate

_ENCODER_PAIRS = [("encoder_padding_mask", "encoder_token_ids")]
_DECODER_PAIRS = [("decoder_padding_mask", "decoder_token_ids")]


@keras.saving.register_keras_serializable(package="kzoo")
class TransformerSeq2Seq(Backbone):
    """The Transformer of "Attention Is All You Need" (Vaswani et al., 2017).

    Encoder and decoder stacks with sinusoidal positions (the paper; or
    learned, rotary, ALiBi, T5 buckets); embeddings scaled by sqrt(D)
    (section 3.4); the decoder's output projection tied to its token
    embedding; float32 logits under any dtype policy.

    Layers as attributes: `encoder_embeddings` and `decoder_embeddings`
    (`TokenAndPositionEmbedding`s), `encoder_layers`, `decoder_layers`
    (lists), `encoder_final_layer_norm` and `decoder_final_layer_norm`
    (None for post-LN).

    Args:
        vocabulary_size: source vocabulary (and target, unless
            `decoder_vocabulary_size` is given).
        num_layers: encoder and decoder blocks each.
        num_heads: heads; must divide `hidden_dim`.
        hidden_dim: model width D.
        intermediate_dim: feed-forward width.
        max_sequence_length: longest target for `generate`.
        dropout: dropout rate.
        normalize_first: pre-LN (with final LayerNorms) or post-LN (paper).
        decoder_vocabulary_size: target vocabulary V.
        activation: feed-forward activation.
        position_encoding: "sinusoidal" (default), "learned", "rotary",
            "alibi" or "t5"; the decoder's T5 buckets are causal.

    Inputs (dict): `encoder_token_ids` (B, S) int, `encoder_padding_mask`
        (B, S) bool, `decoder_token_ids` (B, T) int, `decoder_padding_mask`
        (B, T) bool.

    Returns:
        (B, T, V) float32 logits for the next target token.

    Example:

    >>> import numpy as np
    >>> from kzoo import TransformerSeq2Seq
    >>> model = TransformerSeq2Seq(50, 1, 2, 16, 32)
    >>> model.generate({"encoder_token_ids": np.array([[5, 6, 2]]),
    ...                 "encoder_padding_mask": np.ones((1, 3), bool)},
    ...                max_length=6, stop_token_ids=(3,), start_token_id=2).shape
    (1, 6)
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
        decoder_vocabulary_size=None,
        activation="relu",
        position_encoding="sinusoidal",
        dtype=None,
        **kwargs,
    ):
        check_model_sizes(vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim)
        check_position_encoding(position_encoding)
        check_positive_int("max_sequence_length", max_sequence_length)
        check_rate("dropout", dropout)
        check_positive_int("decoder_vocabulary_size", decoder_vocabulary_size, allow_none=True)
        target_vocabulary = decoder_vocabulary_size or vocabulary_size

        # === Layers ===
        def embedding(size, name):
            return TokenAndPositionEmbedding(
                size, hidden_dim, max_sequence_length=max_sequence_length,
                position_encoding=position_encoding, scale_embeddings=True,
                embeddings_initializer=keras.initializers.RandomNormal(stddev=hidden_dim**-0.5),
                dtype=dtype, name=name,
            )

        def layer_norm(name):
            if not normalize_first:
                return None
            return keras.layers.LayerNormalization(epsilon=1e-5, dtype=dtype, name=name)

        block_kwargs = dict(
            dropout=dropout, activation=activation, normalize_first=normalize_first,
            position_encoding=attention_position(position_encoding), dtype=dtype,
        )
        self.encoder_embeddings = embedding(vocabulary_size, "encoder_embeddings")
        self.decoder_embeddings = embedding(target_vocabulary, "decoder_embeddings")
        self.encoder_dropout = Dropout(dropout, dtype=dtype, name="encoder_dropout")
        self.decoder_dropout = Dropout(dropout, dtype=dtype, name="decoder_dropout")
        self.encoder_layers = [
            TransformerEncoderBlock(num_heads, intermediate_dim, name=f"encoder_layer_{i}", **block_kwargs)
            for i in range(num_layers)
        ]
        self.decoder_layers = [
            TransformerDecoderBlock(num_heads, intermediate_dim, name=f"decoder_layer_{i}", **block_kwargs)
            for i in range(num_layers)
        ]
        self.encoder_final_layer_norm = layer_norm("encoder_final_layer_norm")
        self.decoder_final_layer_norm = layer_norm("decoder_final_layer_norm")

        # === Functional graph ===
        inputs = {
            "encoder_token_ids": keras.Input((None,), dtype="int32", name="encoder_token_ids"),
            "encoder_padding_mask": keras.Input((None,), dtype="bool", name="encoder_padding_mask"),
            "decoder_token_ids": keras.Input((None,), dtype="int32", name="decoder_token_ids"),
            "decoder_padding_mask": keras.Input((None,), dtype="bool", name="decoder_padding_mask"),
        }
        encoded = self.encode(inputs["encoder_token_ids"], inputs["encoder_padding_mask"])
        x = self.decoder_dropout(self.decoder_embeddings(inputs["decoder_token_ids"]))
        for layer in self.decoder_layers:
            x = layer(
                x, encoded,
                decoder_padding_mask=inputs["decoder_padding_mask"],
                encoder_padding_mask=inputs["encoder_padding_mask"],
            )  # (B, T, D)
        logits = self._logits(x)
        super().__init__(inputs=inputs, outputs=logits, dtype=dtype, **kwargs)

        # === Config ===
        self.vocabulary_size = vocabulary_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.hidden_dim = hidden_dim
        self.intermediate_dim = intermediate_dim
        self.max_sequence_length = max_sequence_length
        self.dropout = dropout
        self.normalize_first = normalize_first
        self.decoder_vocabulary_size = decoder_vocabulary_size
        self.activation = activation
        self.position_encoding = position_encoding

    def _logits(self, x):
        if self.decoder_final_layer_norm is not None:
            x = self.decoder_final_layer_norm(x)
        return self.decoder_embeddings.reverse(x)  # (B, T, V) float32

    def encode(self, encoder_token_ids, encoder_padding_mask, training=None):
        """(B, S) ids and mask -> (B, S, D) encoder output."""
        x = self.encoder_dropout(self.encoder_embeddings(encoder_token_ids), training=training)
        for layer in self.encoder_layers:
            x = layer(x, padding_mask=encoder_padding_mask, training=training)
        if self.encoder_final_layer_norm is not None:
            x = self.encoder_final_layer_norm(x)
        return x

    def call(self, inputs, training=None, mask=None):
        validate_token_inputs(inputs, ["encoder_token_ids"], _ENCODER_PAIRS)
        validate_token_inputs(inputs, ["decoder_token_ids"], _DECODER_PAIRS)
        # Eager ids out of range raise here, named; traced ones are NaN
        # (TokenAndPositionEmbedding).
        check_token_id_range("encoder_token_ids", inputs["encoder_token_ids"],
                             self.vocabulary_size)
        check_token_id_range("decoder_token_ids", inputs["decoder_token_ids"],
                             self.decoder_vocabulary_size or self.vocabulary_size)
        return super().call(inputs, training=training, mask=mask)

    # -- cached decoding ----------------------------------------------------

    def empty_cache(self, batch_size, max_length):
        """Self-attention cache (B, L, 2, max_length, N, H) of zeros."""
        head = self.hidden_dim // self.num_heads
        return ops.zeros(
            (batch_size, self.num_layers, 2, max_length, self.num_heads, head),
            dtype=self.compute_dtype,
        )

    def cross_attention_cache(self, encoder_output):
        """(B, S, D) -> (B, L, 2, S, N, H) keys/values, computed once."""
        return ops.stack(
            [layer.compute_cross_attention_cache(encoder_output) for layer in self.decoder_layers],
            axis=1,
        )

    def call_with_cache(
        self, decoder_token_ids, encoder_padding_mask, self_cache, cross_cache, cache_update_index
    ):
        """Decodes (B, T) target tokens at positions `cache_update_index`...;
        returns float32 logits (B, T, V) and the updated self cache."""
        x = self.decoder_embeddings(decoder_token_ids, start_index=cache_update_index)
        caches = []
        for i, layer in enumerate(self.decoder_layers):
            x, layer_cache, _ = layer(
                x,
                encoder_padding_mask=encoder_padding_mask,
                self_attention_cache=self_cache[:, i],
                self_attention_cache_update_index=cache_update_index,
                cross_attention_cache=cross_cache[:, i],
            )
            caches.append(layer_cache)
        return self._logits(x), ops.stack(caches, axis=1)

    def generate(
        self, inputs, max_length=None, sampler="greedy", stop_token_ids=None,
        start_token_id=generation.DEFAULT_START_TOKEN_ID, padding_token_id=0,
    ):
        """Translates: encoder inputs -> (B, max_length) target token ids.

        The contract of `kzoo.models.generation`: one compiled decode with a
        self-attention cache and cross-attention keys computed once, per
        input shape.

        Args:
            inputs: dict with `encoder_token_ids` (B, S) int and
                `encoder_padding_mask` (B, S) bool.
            max_length: output length, the start token included; default
                (None) and upper bound `max_sequence_length`.
            sampler: "greedy", "top_k", "top_p", "random", "beam" or a
                sampler object (`kzoo.models.generation.BeamSampler`, a
                keras_hub Sampler).
            stop_token_ids: tuple of ids, or None; generation stops once
                every row produced one; later tokens become
                `padding_token_id`.
            start_token_id: first decoder token (default kzoo's BOS id, 2).

        Returns:
            (B, max_length) int32 NumPy array starting with `start_token_id`
            (a traced tensor when called inside a `tf.function`).
        """
        max_length = generation.resolve_max_length(
            max_length, self.max_sequence_length, self.max_sequence_length)
        return generation.generate_seq2seq(
            self, inputs, max_length=max_length, start_token_id=start_token_id,
            sampler=sampler, stop_token_ids=stop_token_ids, padding_token_id=padding_token_id,
            source_vocabulary_size=self.vocabulary_size,
            target_vocabulary_size=self.decoder_vocabulary_size or self.vocabulary_size,
            decoder=self.cached_decoder,
        )

    def cached_decoder(self, encoder_token_ids, encoder_padding_mask, max_length):
        """`(next, cache)` for a keras-hub-style sampler, as `generate` and
        `kzoo.export` drive it: `next(prompt, cache, index) -> (logits, None,
        cache)`; the cache is (self-attention cache, cross-attention
        keys/values, source mask as int32 so that beams repeat it)."""
        encoded = self.encode(encoder_token_ids, encoder_padding_mask)
        cache = (
            self.empty_cache(ops.shape(encoder_token_ids)[0], max_length),
            self.cross_attention_cache(encoded),
            ops.cast(encoder_padding_mask, "int32"),
        )

        def next(prompt, cache, index):
            self_cache, cross_cache, enc_mask = cache
            rows = ops.shape(prompt)[0]
            last = ops.slice(prompt, [0, index - 1], [rows, 1])  # (B, 1)
            logits, self_cache = self.call_with_cache(
                last, ops.cast(enc_mask, "bool"), self_cache, cross_cache, index - 1
            )
            return logits[:, 0], None, (self_cache, cross_cache, enc_mask)

        return next, cache

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
            "decoder_vocabulary_size": self.decoder_vocabulary_size,
            "activation": self.activation,
            "position_encoding": self.position_encoding,
        }
