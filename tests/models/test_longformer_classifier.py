import keras
import numpy as np
import pytest
from keras import ops

from kzoo import BertClassifier
from kzoo import BertEncoder
from kzoo import LongformerClassifier
from kzoo import LongformerEncoder
from kzoo.models.longformer import first_token_global_mask
from tests.harness import from_serialized
from tests.harness import run_model_test

SIZES = {"vocabulary_size": 50, "num_layers": 2, "num_heads": 2, "hidden_dim": 8,
         "intermediate_dim": 16}


def _np(x):
    return np.asarray(ops.convert_to_numpy(ops.cast(x, "float32")))


def _inputs(batch=3, length=12, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 50, size=(batch, length)).astype("int32")
    pad = np.ones((batch, length), bool)
    pad[1, 7:] = False
    pad[2, :] = False  # fully padded row
    ids[~pad] = 0
    glob = _np(first_token_global_mask(pad)).astype(bool)
    return {"token_ids": ids, "padding_mask": pad, "global_attention_mask": glob}


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_harness(pooling):
    encoder = LongformerEncoder(**SIZES, attention_window=4, max_sequence_length=16)
    config = {
        "encoder": keras.saving.serialize_keras_object(encoder),
        "num_classes": 3,
        "dropout": 0.1,
        "pooling": pooling,
    }
    out = run_model_test(from_serialized(LongformerClassifier), config, _inputs(),
                         expected_output_shape=(3, 3))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


def test_first_token_global_mask():
    pad = np.array([[1, 1, 1, 0], [0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(
        _np(first_token_global_mask(pad)).astype(bool),
        [[True, False, False, False], [False, False, False, False]])


def test_cls_pooling_numbers():
    encoder = LongformerEncoder(**SIZES, attention_window=4, max_sequence_length=16)
    clf = LongformerClassifier(encoder, num_classes=3)
    data = _inputs()
    first = _np(encoder(data))[:, 0]
    w, b = clf.output_dense.get_weights()
    np.testing.assert_allclose(_np(clf(data)), first @ w + b, atol=1e-5)


def test_from_bert_equals_bert_classifier_when_window_covers():
    # The long-document recipe starts both classifiers from the same
    # pretrained BERT: with a window covering the sequence and the same head,
    # the Longformer classifier equals the BERT classifier (segment ids 0).
    bert = BertEncoder(**SIZES, max_sequence_length=12, dropout=0.0)
    data = _inputs()
    bert_clf = BertClassifier(bert, num_classes=3, pooling="mean")
    longformer = LongformerEncoder.from_encoder(bert, attention_window=24,
                                                max_sequence_length=36)
    clf = LongformerClassifier(longformer, num_classes=3, pooling="mean")
    clf.output_dense.set_weights(bert_clf.output_dense.get_weights())
    want = bert_clf({"token_ids": data["token_ids"],
                     "segment_ids": np.zeros_like(data["token_ids"]),
                     "padding_mask": data["padding_mask"]})
    np.testing.assert_allclose(_np(clf(data)), _np(want), atol=1e-5)
    # It runs on documents longer than BERT's 12 positions; right padding
    # does not change the logits of real rows.
    longer = _inputs(length=30, seed=1)
    logits = _np(clf(longer))
    padded = {k: np.pad(v, ((0, 0), (0, 6))) for k, v in longer.items()}
    np.testing.assert_allclose(_np(clf(padded)), logits, atol=1e-5)


def test_bad_arguments():
    bert = BertEncoder(**SIZES, max_sequence_length=12)
    with pytest.raises(ValueError, match="LongformerEncoder.*BertEncoder"):
        LongformerClassifier(bert, num_classes=3)
    encoder = LongformerEncoder(**SIZES, attention_window=4, max_sequence_length=16)
    with pytest.raises(ValueError, match="pooling.*'max'"):
        LongformerClassifier(encoder, num_classes=3, pooling="max")
    with pytest.raises(ValueError, match="num_classes"):
        LongformerClassifier(encoder, num_classes=0)
