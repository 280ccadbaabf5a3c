"""BERT sequence classifier.

Letters: B batch, D width, C classes.
"""

import keras

from kzoo.models.bert.bert_encoder import bert_kernel_initializer
from kzoo.models.bert.bert_masked_lm import _check_encoder
from kzoo.models.bert.bert_masked_lm import _deserialize_encoder
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import check_rate


@keras.saving.register_keras_serializable(package="kzoo")
class BertClassifier(keras.Model):
    """Sequence classification on BERT's pooled [CLS] output.

    From "BERT: Pre-training of Deep Bidirectional Transformers for Language
    Understanding" (Devlin et al., 2019), section 4.1: dropout on the pooled
    output, then a Dense layer to `num_classes` float32 logits.

    Args:
        encoder: a `BertEncoder`.
        num_classes: number of classes C.
        dropout: dropout rate on the pooled output.

    Inputs (dict): the encoder's `token_ids`, `segment_ids`, `padding_mask`.

    Returns:
        (B, C) float32 logits.

    Example:

    >>> clf = BertClassifier(BertEncoder.from_size("tiny", vocabulary_size=100), 3)
    """

    def __init__(self, encoder, num_classes, dropout=0.1, dtype=None, **kwargs):
        encoder = _check_encoder(encoder)
        check_positive_int("num_classes", num_classes)
        check_rate("dropout", dropout)
        dtype = dtype if dtype is not None else encoder.dtype_policy
        # === Layers ===
        self.encoder = encoder
        self.output_dropout = keras.layers.Dropout(dropout, dtype=dtype, name="output_dropout")
        self.output_dense = keras.layers.Dense(
            num_classes, kernel_initializer=bert_kernel_initializer(),
            dtype="float32", name="logits",
        )
        # === Functional graph ===
        inputs = dict(encoder.input)
        pooled = encoder(inputs)["pooled_output"]  # (B, D)
        logits = self.output_dense(self.output_dropout(pooled))  # (B, C)
        super().__init__(inputs=inputs, outputs=logits, dtype=dtype, **kwargs)
        # === Config ===
        self.num_classes = num_classes
        self.dropout = dropout

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "num_classes": self.num_classes,
            "dropout": self.dropout,
        }

    @classmethod
    def from_config(cls, config):
        encoder, config = _deserialize_encoder(config)
        return cls(encoder=encoder, **config)
