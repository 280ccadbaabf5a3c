"""The classification head that kzoo's encoder classifiers share.

Letters: B batch, T length, D width, C classes.
"""

import keras
from keras import ops

from kzoo.layers.dropout import Dropout
from kzoo.models.bert.bert_encoder import bert_kernel_initializer
from kzoo.models.task import Task
from kzoo.utils.validation import check_one_of
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rate

POOLING = ("cls", "mean")


@keras.saving.register_keras_serializable(package="kzoo")
class MaskedMeanPooling(keras.layers.Layer):
    """Mean of `sequence (B, T, D)` over the positions where
    `padding_mask (B, T)` is True; a fully padded row gives zeros."""

    def call(self, sequence, padding_mask):
        mask = ops.cast(ops.expand_dims(padding_mask, -1), sequence.dtype)  # (B, T, 1)
        total = ops.sum(sequence * mask, axis=1)  # (B, D)
        count = ops.maximum(ops.sum(mask, axis=1), 1.0)  # (B, 1)
        return total / count

    def compute_output_shape(self, sequence_shape, padding_mask_shape=None):
        return (sequence_shape[0], sequence_shape[2])


class PooledClassifier(Task):
    """The part every kzoo encoder classifier shares: pool the encoder's
    output, dropout, a Dense layer to float32 logits, and the nested-encoder
    config. Subclasses name their `backbone_cls` and say where the encoder's
    sequence and first-token vector are (`_sequence`, `_first_token`).
    """

    DATA_ARGUMENTS = {"num_classes": 2}

    def __init__(self, encoder, num_classes, dropout=0.1, pooling="cls", dtype=None,
                 **kwargs):
        encoder = self.check_backbone(encoder)
        check_positive_int("num_classes", num_classes)
        check_rate("dropout", dropout)
        check_one_of("pooling", pooling, POOLING)
        dtype = dtype if dtype is not None else encoder.dtype_policy
        # === Layers ===
        self.backbone = encoder
        self.mean_pooling = (MaskedMeanPooling(dtype=dtype, name="mean_pooling")
                             if pooling == "mean" else None)
        self.output_dropout = Dropout(dropout, dtype=dtype, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            num_classes, kernel_initializer=bert_kernel_initializer(),
            dtype="float32", name="logits",
        )
        # === Functional graph ===
        inputs = dict(encoder.input)
        outputs = encoder(inputs)
        if pooling == "mean":
            pooled = self.mean_pooling(
                self._sequence(outputs), inputs["padding_mask"])  # (B, D)
        else:
            pooled = self._first_token(outputs)  # (B, D)
        logits = self.output_dense(self.output_dropout(pooled))  # (B, C)
        super().__init__(inputs=inputs, outputs=logits, dtype=dtype, **kwargs)
        # === Config ===
        self.num_classes = num_classes
        self.dropout = dropout
        self.pooling = pooling

    def _sequence(self, outputs):
        raise NotImplementedError

    def _first_token(self, outputs):
        raise NotImplementedError

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "dropout": self.dropout,
            "pooling": self.pooling,
        }
