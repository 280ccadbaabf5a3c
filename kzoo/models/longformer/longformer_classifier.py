"""Longformer document classifier.

Letters: B batch, T length, D width, C classes.
"""

import keras
from keras import ops

from kzoo.models.pooled_classifier import PooledClassifier
from kzoo.models.longformer.longformer_encoder import LongformerEncoder


@keras.saving.register_keras_serializable(package="kzoo")
class FirstToken(keras.layers.Layer):
    """`sequence (B, T, D)` -> `(B, D)`, the vector of the first position."""

    def call(self, sequence):
        return sequence[:, 0, :]

    def compute_output_shape(self, sequence_shape):
        return (sequence_shape[0], sequence_shape[2])


@keras.saving.register_keras_serializable(package="kzoo")
class LongformerClassifier(PooledClassifier):
    """Document classification on a `LongformerEncoder`.

    From "Longformer: The Long-Document Transformer" (Beltagy et al., 2020),
    section 6: classification reads the first token ([CLS] / <s>), which is
    given global attention, so it sees the whole document in every layer.
    Dropout, then a Dense layer to `num_classes` float32 logits, as
    `BertClassifier`; the encoder is usually made by
    `LongformerEncoder.from_encoder(bert_encoder, ...)`, so a BERT fine-tuned
    on truncated documents and this model start from the same weights. Give
    that encoder `max_global_tokens=1` when only [CLS] is global: `fit`
    traces the model, and traced without a bound the global rows cost
    O(T^2) (see `LongformerAttention`).

    Args:
        encoder: a `LongformerEncoder`.
        num_classes: number of classes C.
        dropout: dropout rate on the pooled vector.
        pooling: "cls" (the first token's final vector; give it global
            attention) or "mean" (the mean of the sequence over real tokens).

    Inputs (dict): the encoder's `token_ids`, `padding_mask`,
        `global_attention_mask` (put True at position 0 for "cls").

    Returns:
        (B, C) float32 logits.

    Example:

    >>> import numpy as np
    >>> from keras import ops
    >>> from kzoo import LongformerClassifier, LongformerEncoder
    >>> enc = LongformerEncoder(100, 2, 2, 16, 32, attention_window=4, max_sequence_length=64)
    >>> clf = LongformerClassifier(enc, num_classes=3)
    >>> ids = np.ones((2, 12), "int32")
    >>> glob = np.zeros((2, 12), bool); glob[:, 0] = True
    >>> logits = clf({"token_ids": ids, "padding_mask": ids > 0,
    ...               "global_attention_mask": glob})
    >>> tuple(ops.shape(logits)), ops.dtype(logits)
    ((2, 3), 'float32')
    """

    backbone_cls = LongformerEncoder
    backbone_hint = " (for a BertEncoder use BertClassifier)"

    def __init__(self, encoder, num_classes, dropout=0.1, pooling="cls", dtype=None,
                 **kwargs):
        encoder = self.check_backbone(encoder)
        self.first_token = (
            FirstToken(dtype=dtype if dtype is not None else encoder.dtype_policy,
                       name="first_token")
            if pooling == "cls" else None)
        super().__init__(encoder, num_classes, dropout=dropout, pooling=pooling,
                         dtype=dtype, **kwargs)

    def _sequence(self, outputs):
        return outputs  # (B, T, D)

    def _first_token(self, outputs):
        return self.first_token(outputs)  # (B, D)


def first_token_global_mask(padding_mask):
    """(B, T) bool: True at position 0 of every row that has a real token,
    the global-attention pattern the paper uses for classification."""
    padding_mask = ops.convert_to_tensor(padding_mask, "bool")
    first = ops.arange(ops.shape(padding_mask)[1]) == 0  # (T,)
    return ops.logical_and(padding_mask, first[None, :])
