"""The encoder-decoder Transformer with cached generation.

Letters: B batch, S source length, T target length, D `hidden_dim`,
V target vocabulary, L layers, N heads, H head size.
"""


import keras
import numpy as np
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
from kzoo.utils.validation import check_integer_dtype
from kzoo.utils.validation import check_non_negative_int
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
    ...                max_length=6, start_token_id=1, end_token_id=2).shape
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
        self, inputs, max_length, start_token_id, end_token_id=None, sampler="greedy",
        padding_token_id=0,
    ):
        """Translates: encoder inputs -> (B, max_length) target token ids.

        Args:
            inputs: dict with `encoder_token_ids` (B, S) int and
                `encoder_padding_mask` (B, S) bool.
            max_length: output length, the start token included.
            start_token_id: first decoder token.
            end_token_id: generation stops once every row produced it; later
                tokens become `padding_token_id`.
            sampler: "greedy", "top_k", "beam" or a keras_hub Sampler.

        Returns:
            (B, max_length) int32 ids, starting with `start_token_id`.
        """
        generation.check_generate_args(max_length, end_token_id)
        if max_length > self.max_sequence_length:
            raise ValueError(
                f"`max_length` must be <= max_sequence_length "
                f"({self.max_sequence_length}); received {max_length}"
            )
        check_non_negative_int("start_token_id", start_token_id)
        validate_token_inputs(inputs, ["encoder_token_ids"], _ENCODER_PAIRS)
        check_integer_dtype("encoder_token_ids", inputs["encoder_token_ids"])
        check_token_id_range("encoder_token_ids", inputs["encoder_token_ids"],
                             self.vocabulary_size)
        ids = np.asarray(ops.convert_to_numpy(inputs["encoder_token_ids"])).astype("int32")
        mask = inputs.get("encoder_padding_mask")
        mask = np.ones_like(ids, bool) if mask is None else np.asarray(
            ops.convert_to_numpy(mask)).astype(bool)
        if ids.shape[0] == 0:  # an empty batch: an empty result
            return np.zeros((0, max_length), "int32")
        if ids.shape[1] == 0:
            raise ValueError(
                "`encoder_token_ids` must have at least one position (pad an empty "
                "source to length 1 with a False `encoder_padding_mask`); received "
                f"shape {tuple(ids.shape)}"
            )
        sampler_obj = generation.resolve_sampler(self, sampler)
        key = ("seq2seq", generation.sampler_key(sampler), max_length, start_token_id,
               end_token_id, padding_token_id)

        def build_step(sampler_obj):
            def step(inputs):
                enc_ids, enc_mask = inputs["encoder_token_ids"], inputs["encoder_padding_mask"]
                batch = ops.shape(enc_ids)[0]
                encoded = self.encode(enc_ids, enc_mask)
                cache = (
                    self.empty_cache(batch, max_length),
                    self.cross_attention_cache(encoded),
                    ops.cast(enc_mask, "int32"),  # in the cache so beams repeat it
                )
                prompt = ops.concatenate(
                    [ops.full((batch, 1), start_token_id, "int32"),
                     ops.full((batch, max_length - 1), padding_token_id, "int32")], axis=1,
                )
                prompt_mask = ops.concatenate(
                    [ops.ones((batch, 1), "bool"), ops.zeros((batch, max_length - 1), "bool")],
                    axis=1,
                )

                def next(prompt, cache, index):
                    self_cache, cross_cache, enc_mask = cache
                    rows = ops.shape(prompt)[0]
                    last = ops.slice(prompt, [0, index - 1], [rows, 1])  # (B, 1)
                    logits, self_cache = self.call_with_cache(
                        last, ops.cast(enc_mask, "bool"), self_cache, cross_cache, index - 1
                    )
                    return logits[:, 0], None, (self_cache, cross_cache, enc_mask)

                out = sampler_obj(
                    next, prompt, cache=cache, index=1, mask=prompt_mask,
                    stop_token_ids=None if end_token_id is None else [end_token_id],
                    model=self,
                )
                return generation.mask_after_end(out, end_token_id, prompt_mask, padding_token_id)

            return step

        fn = generation.cached_generate_function(self, key, sampler_obj, build_step)
        return ops.convert_to_numpy(fn({"encoder_token_ids": ids, "encoder_padding_mask": mask}))

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
