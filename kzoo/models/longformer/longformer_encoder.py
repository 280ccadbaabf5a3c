"""Longformer encoder network: embeddings, then Longformer encoder blocks.

Letters: B batch, T length, D `hidden_dim`, V `vocabulary_size`, P positions.
"""

import keras
import numpy as np
from keras import ops

from kzoo.layers.dropout import Dropout
from kzoo.layers.position.position_embedding import PositionEmbedding
from kzoo.layers.position.sinusoidal_position_encoding import SinusoidalPositionEncoding
from kzoo.layers.attention.longformer_attention import check_attention_window
from kzoo.models.backbone import Backbone
from kzoo.models.longformer.longformer_encoder_block import LongformerEncoderBlock
from kzoo.models.checks import check_model_sizes
from kzoo.models.checks import validate_token_inputs
from kzoo.utils.validation import check_one_of
from kzoo.utils.validation import check_positive_float
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rate


@keras.saving.register_keras_serializable(package="kzoo")
class LongformerEncoder(Backbone):
    """A Transformer encoder with Longformer attention, for long documents.

    "Longformer: The Long-Document Transformer" (Beltagy, Peters and Cohan,
    2020): token plus position embeddings (optionally layer-normalized, as
    in BERT / RoBERTa), dropout, `num_layers` `LongformerEncoderBlock`s
    (sliding window of `attention_window` plus global tokens; O(n * w)
    time and memory), and a final LayerNorm when the blocks are pre-LN.

    `LongformerEncoder.from_encoder(encoder, attention_window,
    max_sequence_length)` starts from a trained kzoo `TransformerEncoder` or
    `BertEncoder`, copying every weight and extending the learned position
    embeddings by repeating them, as the paper did from RoBERTa's 512
    positions; with a window that covers the sequence it computes exactly
    what the source encoder computes.

    Layers as attributes: `token_embedding`, `position_embedding`,
    `embeddings_layer_norm` (or None), `embeddings_dropout`,
    `transformer_layers` (list), `final_layer_norm` (or None).

    Args:
        vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim:
            sizes; `num_heads` must divide `hidden_dim`.
        attention_window: whole local window of every layer (even).
        max_sequence_length: number of learned positions.
        dropout: dropout rate everywhere.
        normalize_first: pre-LN blocks (and a final LayerNorm) or post-LN.
        activation: feed-forward activation.
        layer_norm_epsilon: epsilon of every LayerNorm.
        normalize_embeddings: LayerNorm on the summed embeddings (BERT).
        position_encoding: "learned" or "sinusoidal".
        max_global_tokens: static bound on global tokens per sequence (see
            `LongformerAttention`); None for exact, unbounded. Set it for
            training and serving (`fit` and SavedModels trace the model):
            traced with None, the global rows are computed for all T
            positions, O(T^2) (a BERT-tiny-sized model at 4 x 1,024 tokens
            trains 4.5x faster with 1 than with None,
            `benchmarks/longformer_dropout_xla.py`).

    Inputs (dict):
        token_ids: (B, T) int.
        padding_mask: (B, T) bool, True for real tokens.
        global_attention_mask: (B, T) bool, True for global tokens (e.g.
            the [CLS] token for classification, question tokens for QA).

    Returns:
        (B, T, D) contextual token vectors. T must be static when traced.

    Example:

    >>> import numpy as np
    >>> from kzoo import LongformerEncoder
    >>> encoder = LongformerEncoder(100, 2, 2, 16, 32, attention_window=4,
    ...                             max_sequence_length=64)
    >>> ids = np.ones((2, 12), "int32")
    >>> glob = np.zeros((2, 12), bool); glob[:, 0] = True
    >>> tuple(encoder({"token_ids": ids, "padding_mask": ids > 0,
    ...                "global_attention_mask": glob}).shape)
    (2, 12, 16)
    """

    SIZES = {
        "tiny": {"num_layers": 2, "num_heads": 2, "hidden_dim": 64,
                 "intermediate_dim": 256, "attention_window": 8,
                 "max_sequence_length": 256},
        "base": {"num_layers": 12, "num_heads": 12, "hidden_dim": 768,
                 "intermediate_dim": 3072, "attention_window": 512,
                 "max_sequence_length": 4096},
        "large": {"num_layers": 24, "num_heads": 16, "hidden_dim": 1024,
                  "intermediate_dim": 4096, "attention_window": 512,
                  "max_sequence_length": 4096},
    }
    SIZES_SOURCE = (
        "Beltagy et al. 2020, longformer-base and -large (RoBERTa widths, "
        "window 512, 4,096 positions); tiny is kzoo's"
    )
    DATA_ARGUMENTS = {"vocabulary_size": 50265}

    def __init__(
        self,
        vocabulary_size,
        num_layers,
        num_heads,
        hidden_dim,
        intermediate_dim,
        attention_window,
        max_sequence_length=4096,
        dropout=0.1,
        normalize_first=False,
        activation="gelu",
        layer_norm_epsilon=1e-5,
        normalize_embeddings=False,
        position_encoding="learned",
        max_global_tokens=None,
        dtype=None,
        **kwargs,
    ):
        check_model_sizes(
            vocabulary_size, num_layers, num_heads, hidden_dim, intermediate_dim
        )
        check_attention_window(attention_window)
        check_positive_int("max_sequence_length", max_sequence_length)
        check_rate("dropout", dropout)
        check_positive_float("layer_norm_epsilon", layer_norm_epsilon)
        check_one_of("position_encoding", position_encoding, {"learned", "sinusoidal"})
        check_positive_int("max_global_tokens", max_global_tokens, allow_none=True)

        # === Layers ===
        self.token_embedding = keras.layers.ReversibleEmbedding(
            vocabulary_size,
            hidden_dim,
            reverse_dtype="float32",
            embeddings_initializer="glorot_uniform",
            dtype=dtype,
            name="token_embedding",
        )
        if position_encoding == "learned":
            self.position_embedding = PositionEmbedding(
                max_sequence_length, dtype=dtype, name="position_embedding"
            )
        else:
            self.position_embedding = SinusoidalPositionEncoding(
                dtype=dtype, name="position_embedding"
            )
        self.embeddings_layer_norm = (
            keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, dtype=dtype, name="embeddings_layer_norm"
            )
            if normalize_embeddings
            else None
        )
        self.embeddings_dropout = Dropout(
            dropout, dtype=dtype, name="embeddings_dropout"
        )
        self.transformer_layers = [
            LongformerEncoderBlock(
                num_heads,
                intermediate_dim,
                attention_window=attention_window,
                max_global_tokens=max_global_tokens,
                dropout=dropout,
                activation=activation,
                normalize_first=normalize_first,
                layer_norm_epsilon=layer_norm_epsilon,
                dtype=dtype,
                name=f"transformer_layer_{i}",
            )
            for i in range(num_layers)
        ]
        self.final_layer_norm = (
            keras.layers.LayerNormalization(
                epsilon=layer_norm_epsilon, dtype=dtype, name="final_layer_norm"
            )
            if normalize_first
            else None
        )

        # === Functional graph ===
        token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
        padding_mask = keras.Input(shape=(None,), dtype="bool", name="padding_mask")
        global_mask = keras.Input(
            shape=(None,), dtype="bool", name="global_attention_mask"
        )
        tokens = self.token_embedding(token_ids)  # (B, T, D)
        x = ops.add(tokens, self.position_embedding(tokens))
        if self.embeddings_layer_norm is not None:
            x = self.embeddings_layer_norm(x)
        x = self.embeddings_dropout(x)
        for layer in self.transformer_layers:
            x = layer(
                x, padding_mask=padding_mask, global_attention_mask=global_mask
            )  # (B, T, D)
        if self.final_layer_norm is not None:
            x = self.final_layer_norm(x)
        super().__init__(
            inputs={
                "token_ids": token_ids,
                "padding_mask": padding_mask,
                "global_attention_mask": global_mask,
            },
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
        self.attention_window = attention_window
        self.max_sequence_length = max_sequence_length
        self.dropout = dropout
        self.normalize_first = normalize_first
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.normalize_embeddings = normalize_embeddings
        self.position_encoding = position_encoding
        self.max_global_tokens = max_global_tokens

    def call(self, inputs, training=None, mask=None):
        validate_token_inputs(
            inputs,
            ["token_ids"],
            [
                ("padding_mask", "token_ids"),
                ("global_attention_mask", "token_ids"),
            ],
        )
        return super().call(inputs, training=training, mask=mask)

    @classmethod
    def from_encoder(
        cls, encoder, attention_window, max_sequence_length, max_global_tokens=None
    ):
        """A Longformer initialised from a kzoo `TransformerEncoder` / `BertEncoder`.

        Every weight is copied (the attention layers have the same variables
        as the dense ones); learned position embeddings are extended to
        `max_sequence_length` by repeating the source table, as the paper
        did from RoBERTa. From a `BertEncoder`, the segment-0 embedding is
        folded into the position table (the Longformer has no segment
        input; it equals BERT with all `segment_ids` 0) and the pooler is
        dropped.
        """
        from kzoo.models.bert.bert_encoder import BertEncoder
        from kzoo.models.transformer_encoder.transformer_encoder import (
            TransformerEncoder,
        )

        check_positive_int("max_sequence_length", max_sequence_length)
        if not isinstance(encoder, (BertEncoder, TransformerEncoder)):
            raise ValueError(
                "`encoder` must be a kzoo TransformerEncoder or BertEncoder; "
                f"received {type(encoder).__name__}"
            )
        common = {
            "vocabulary_size": encoder.vocabulary_size,
            "num_layers": encoder.num_layers,
            "num_heads": encoder.num_heads,
            "hidden_dim": encoder.hidden_dim,
            "intermediate_dim": encoder.intermediate_dim,
            "attention_window": attention_window,
            "max_sequence_length": max_sequence_length,
            "dropout": encoder.dropout,
            "max_global_tokens": max_global_tokens,
            "dtype": encoder.dtype_policy,
        }
        if isinstance(encoder, BertEncoder):
            model = cls(
                normalize_first=False,
                activation="gelu",
                layer_norm_epsilon=1e-12,
                normalize_embeddings=True,
                position_encoding="learned",
                **common,
            )
            segment0 = ops.convert_to_numpy(encoder.segment_embedding.embeddings)[0]
        else:
            if encoder.position_encoding not in ("learned", "sinusoidal"):
                raise ValueError(
                    "LongformerEncoder.from_encoder takes an encoder with "
                    "learned or sinusoidal positions; received one with "
                    f"position_encoding={encoder.position_encoding!r}"
                )
            model = cls(
                normalize_first=encoder.normalize_first,
                activation=encoder.activation,
                layer_norm_epsilon=1e-5,
                normalize_embeddings=False,
                position_encoding=encoder.position_encoding,
                **common,
            )
            segment0 = 0.0
        model.token_embedding.set_weights(encoder.token_embedding.get_weights())
        if model.position_encoding == "learned":
            source = (
                encoder.position_embedding if isinstance(encoder, BertEncoder)
                else encoder.embeddings.position_embedding
            )
            table = np.asarray(ops.convert_to_numpy(source.weights[0]))
            reps = -(-max_sequence_length // table.shape[0])
            extended = np.concatenate([table] * reps, axis=0)[:max_sequence_length]
            model.position_embedding.set_weights([extended + segment0])
        if model.embeddings_layer_norm is not None:
            model.embeddings_layer_norm.set_weights(
                encoder.embeddings_layer_norm.get_weights()
            )
        for new, old in zip(model.transformer_layers, encoder.transformer_layers):
            new.set_weights(old.get_weights())
        if model.final_layer_norm is not None:
            model.final_layer_norm.set_weights(encoder.final_layer_norm.get_weights())
        return model

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary_size": self.vocabulary_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "hidden_dim": self.hidden_dim,
            "intermediate_dim": self.intermediate_dim,
            "attention_window": self.attention_window,
            "max_sequence_length": self.max_sequence_length,
            "dropout": self.dropout,
            "normalize_first": self.normalize_first,
            "activation": self.activation,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "normalize_embeddings": self.normalize_embeddings,
            "position_encoding": self.position_encoding,
            "max_global_tokens": self.max_global_tokens,
        }
