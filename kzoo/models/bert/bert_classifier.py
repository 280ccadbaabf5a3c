"""BERT sequence classifier.

Letters: B batch, T length, D width, C classes. The head is
`kzoo.models.pooled_classifier.PooledClassifier`.
"""

import keras

from kzoo.models.bert.bert_encoder import BertEncoder
from kzoo.models.pooled_classifier import PooledClassifier


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

    backbone_cls = BertEncoder

    def _sequence(self, outputs):
        return outputs["sequence_output"]

    def _first_token(self, outputs):
        return outputs["pooled_output"]
