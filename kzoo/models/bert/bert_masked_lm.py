"""BERT's masked-LM pretraining model.

Letters: B batch, T length, P masked positions, D width, V vocabulary.
"""

import keras
from keras import ops

from kzoo.models.bert.bert_encoder import BertEncoder
from kzoo.models.bert.bert_encoder import bert_kernel_initializer
from kzoo.models.task import Task
from kzoo.utils.validation import check_integer_dtype
from kzoo.utils.validation import check_rank
from kzoo.utils.validation import static_shape


@keras.saving.register_keras_serializable(package="kzoo")
class MaskedLMBias(keras.layers.Layer):
    """Adds a learned (V,) output bias to float32 logits."""

    def build(self, inputs_shape):
        self.bias = self.add_weight(
            name="bias", shape=(inputs_shape[-1],), initializer="zeros"
        )

    def call(self, inputs):
        return ops.add(ops.cast(inputs, "float32"), ops.cast(self.bias, "float32"))

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype="float32")


@keras.saving.register_keras_serializable(package="kzoo")
class BertMaskedLM(Task):
    """BERT's masked-language-model pretraining head on a `BertEncoder`.

    From "BERT: Pre-training of Deep Bidirectional Transformers for Language
    Understanding" (Devlin et al., 2019): the sequence output at the masked
    positions goes through Dense(D, gelu) and LayerNorm, then the output
    projection, which is tied to the token embedding (the transposed
    `encoder.token_embedding.embeddings`) plus a per-token bias. Logits are
    float32 under any dtype policy.

    Args:
        encoder: a `BertEncoder`.

    Inputs (dict): the encoder's `token_ids`, `segment_ids`, `padding_mask`,
        and `mask_positions` (B, P) int, the positions to predict.

    Returns:
        (B, P, V) float32 logits.

    Example:

    >>> import numpy as np
    >>> from keras import ops
    >>> from kzoo import BertEncoder, BertMaskedLM
    >>> mlm = BertMaskedLM(BertEncoder.from_size("tiny", vocabulary_size=100))
    >>> ids = np.ones((2, 8), "int32")
    >>> logits = mlm({"token_ids": ids, "segment_ids": 0 * ids,
    ...               "padding_mask": ids > 0,
    ...               "mask_positions": np.array([[1, 4], [2, 3]], "int32")})
    >>> tuple(ops.shape(logits)), ops.dtype(logits)
    ((2, 2, 100), 'float32')
    """

    backbone_cls = BertEncoder

    def __init__(self, encoder, dtype=None, **kwargs):
        encoder = self.check_backbone(encoder)
        dtype = dtype if dtype is not None else encoder.dtype_policy
        # === Layers ===
        self.backbone = encoder
        self.transform_dense = keras.layers.Dense(
            encoder.hidden_dim, activation="gelu",
            kernel_initializer=bert_kernel_initializer(), dtype=dtype,
            name="mlm_transform_dense",
        )
        self.transform_layer_norm = keras.layers.LayerNormalization(
            epsilon=1e-12, dtype=dtype, name="mlm_transform_layer_norm"
        )
        self.output_bias = MaskedLMBias(dtype=dtype, name="mlm_output_bias")

        # === Functional graph ===
        inputs = dict(encoder.input)
        inputs["mask_positions"] = keras.Input(
            shape=(None,), dtype="int32", name="mask_positions"
        )
        sequence = encoder({k: inputs[k] for k in encoder.input})["sequence_output"]
        positions = ops.expand_dims(inputs["mask_positions"], -1)  # (B, P, 1)
        x = ops.take_along_axis(sequence, positions, axis=1)  # (B, P, D)
        x = self.transform_layer_norm(self.transform_dense(x))
        logits = encoder.token_embedding(x, reverse=True)  # (B, P, V), tied
        logits = self.output_bias(logits)
        super().__init__(inputs=inputs, outputs=logits, dtype=dtype, **kwargs)

    def call(self, inputs, training=None, mask=None):
        if isinstance(inputs, dict) and "mask_positions" in inputs:
            check_rank(
                "mask_positions", static_shape(inputs["mask_positions"]), 2,
                "(batch, num_predictions)",
            )
            check_integer_dtype("mask_positions", inputs["mask_positions"])
        return super().call(inputs, training=training, mask=mask)
