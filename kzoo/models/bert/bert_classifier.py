"""BERT sequence classifier.

Letters: B batch, T length, D width, C classes.
"""

import keras
from keras import ops

from kzoo.layers.dropout import Dropout
from kzoo.models.bert.bert_encoder import bert_kernel_initializer
from kzoo.models.bert.bert_masked_lm import _check_encoder
from kzoo.models.bert.bert_masked_lm import _deserialize_encoder
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


class PooledClassifier(keras.Model):
    """The part every kzoo encoder classifier shares: pool the encoder's
    output, dropout, a Dense layer to float32 logits, and the nested-encoder
    config. Subclasses check the encoder and say where its sequence and its
    first-token vector are (`_sequence`, `_first_token`).
    """

    def __init__(self, encoder, num_classes, dropout=0.1, pooling="cls", dtype=None,
                 **kwargs):
        check_positive_int("num_classes", num_classes)
        check_rate("dropout", dropout)
        check_one_of("pooling", pooling, POOLING)
        dtype = dtype if dtype is not None else encoder.dtype_policy
        # === Layers ===
        self.encoder = encoder
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
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "num_classes": self.num_classes,
            "dropout": self.dropout,
            "pooling": self.pooling,
        }

    @classmethod
    def from_config(cls, config):
        encoder, config = _deserialize_encoder(config)
        return cls(encoder=encoder, **config)


@keras.saving.register_keras_serializable(package="kzoo")
class BertClassifier(PooledClassifier):
    """Sequence classification on a pooled BERT output.

    From "BERT: Pre-training of Deep Bidirectional Transformers for Language
    Understanding" (Devlin et al., 2019), section 4.1: dropout on the pooled
    output, then a Dense layer to `num_classes` float32 logits.

    Args:
        encoder: a `BertEncoder`.
        num_classes: number of classes C.
        dropout: dropout rate on the pooled output.
        pooling: "cls" (BERT's `pooled_output`, tanh(W h_[CLS] + b)) or
            "mean" (the mean of `sequence_output` over real tokens). A BERT
            pretrained with masked-LM only never trains its [CLS] vector, so
            after short pretraining "mean" fine-tunes much faster.

    Inputs (dict): the encoder's `token_ids`, `segment_ids`, `padding_mask`.

    Returns:
        (B, C) float32 logits.

    Example:

    >>> import numpy as np
    >>> from keras import ops
    >>> from kzoo import BertClassifier, BertEncoder
    >>> clf = BertClassifier(BertEncoder.from_size("tiny", vocabulary_size=100), 3)
    >>> ids = np.ones((2, 8), "int32")
    >>> logits = clf({"token_ids": ids, "segment_ids": 0 * ids,
    ...               "padding_mask": ids > 0})
    >>> tuple(ops.shape(logits)), ops.dtype(logits)
    ((2, 3), 'float32')
    """

    def __init__(self, encoder, num_classes, dropout=0.1, pooling="cls", dtype=None,
                 **kwargs):
        super().__init__(_check_encoder(encoder), num_classes, dropout=dropout,
                         pooling=pooling, dtype=dtype, **kwargs)

    def _sequence(self, outputs):
        return outputs["sequence_output"]

    def _first_token(self, outputs):
        return outputs["pooled_output"]
