import numpy as np
import pytest
from keras import ops

from kzoo.layers.transformer.transformer_encoder_block import TransformerEncoderBlock
from kzoo.models import BertEncoder
from kzoo.models import TransformerEncoder
from kzoo.models.longformer import LongformerEncoder
from tests.harness import run_model_test

SIZES = {"vocabulary_size": 50, "num_layers": 2, "num_heads": 2, "hidden_dim": 8, "intermediate_dim": 16}


def _np(x):
    return np.asarray(ops.convert_to_numpy(ops.cast(x, "float32")))


def _inputs(batch=2, length=12, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 50, size=(batch, length)).astype("int32")
    pad = np.ones((batch, length), bool)
    pad[1, 7:] = False
    ids[~pad] = 0
    glob = np.zeros((batch, length), bool)
    glob[:, 0] = True
    glob[0, 6] = True
    return {"token_ids": ids, "padding_mask": pad, "global_attention_mask": glob}


def test_harness_post_ln_with_globals():
    run_model_test(
        LongformerEncoder,
        dict(SIZES, attention_window=4, max_sequence_length=16, dropout=0.0),
        _inputs(),
        expected_output_shape=(2, 12, 8),
    )


def test_harness_pre_ln_sinusoidal_bounded_globals():
    run_model_test(
        LongformerEncoder,
        dict(
            SIZES,
            attention_window=2,
            max_sequence_length=16,
            normalize_first=True,
            position_encoding="sinusoidal",
            normalize_embeddings=True,
            max_global_tokens=2,
        ),
        _inputs(),
        expected_output_shape=(2, 12, 8),
    )


def test_small_window_equals_dense_blocks_under_pattern_mask():
    model = LongformerEncoder(**SIZES, attention_window=2, max_sequence_length=16, dropout=0.0)
    data = _inputs()
    got = _np(model(data))
    # Reference: the same weights in dense TransformerEncoderBlocks run with
    # the explicit band-plus-global mask of each layer.
    tokens = model.token_embedding(data["token_ids"])
    x = tokens + model.position_embedding(tokens)
    for layer in model.transformer_layers:
        dense = TransformerEncoderBlock(2, 16, dropout=0.0, activation="gelu")
        dense(x)
        dense.set_weights(layer.get_weights())
        mask = layer.self_attention.attention_pattern(
            data["padding_mask"], data["global_attention_mask"]
        )
        x = dense(x, attention_mask=mask)
    np.testing.assert_allclose(got, _np(x), atol=1e-5)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_from_transformer_encoder_equals_source(normalize_first):
    source = TransformerEncoder(
        **SIZES, max_sequence_length=8, normalize_first=normalize_first, dropout=0.0
    )
    data = _inputs(length=8)
    want = _np(source({k: data[k] for k in ("token_ids", "padding_mask")}))
    model = LongformerEncoder.from_encoder(source, attention_window=16, max_sequence_length=20)
    np.testing.assert_allclose(_np(model(data)), want, atol=1e-5)
    # Positions extended by repetition: rows 8..15 and 16..19 repeat 0..7.
    old = _np(source.embeddings.position_embedding.weights[0])
    new = _np(model.position_embedding.weights[0])
    assert new.shape == (20, 8)
    np.testing.assert_array_equal(new[8:16], old)
    np.testing.assert_array_equal(new[16:], old[:4])
    # And it now runs on sequences longer than the source's 8 positions.
    assert np.all(np.isfinite(_np(model(_inputs(length=20)))))


def test_from_bert_encoder_equals_source_with_segment_zero():
    source = BertEncoder(**SIZES, max_sequence_length=8, dropout=0.0)
    data = _inputs(length=8)
    want = source(
        {
            "token_ids": data["token_ids"],
            "segment_ids": np.zeros_like(data["token_ids"]),
            "padding_mask": data["padding_mask"],
        }
    )["sequence_output"]
    model = LongformerEncoder.from_encoder(source, attention_window=16, max_sequence_length=32)
    np.testing.assert_allclose(_np(model(data)), _np(want), atol=1e-5)


def test_bad_inputs():
    with pytest.raises(ValueError, match="attention_window"):
        LongformerEncoder(**SIZES, attention_window=3)
    with pytest.raises(ValueError, match="encoder"):
        LongformerEncoder.from_encoder(object(), attention_window=4, max_sequence_length=8)
    model = LongformerEncoder(**SIZES, attention_window=4, max_sequence_length=16)
    data = _inputs()
    data["global_attention_mask"] = data["global_attention_mask"][:, :10]
    with pytest.raises(ValueError, match="global_attention_mask"):
        model(data)
