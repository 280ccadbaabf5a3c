import keras
import numpy as np
import pytest
from keras import ops

from kzoo import BertClassifier
from kzoo import BertEncoder
from kzoo import BertMaskedLM
from tests.harness import from_serialized
from tests.harness import run_model_test

CONFIG = {
    "vocabulary_size": 40,
    "num_layers": 2,
    "num_heads": 2,
    "hidden_dim": 8,
    "intermediate_dim": 16,
    "max_sequence_length": 12,
}


def _inputs(batch=3, length=6, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, length), bool)
    mask[1, 4:] = False
    mask[2, :] = False  # fully padded row
    segments = np.zeros((batch, length), "int32")
    segments[:, 3:] = 1
    return {
        "token_ids": rng.integers(0, 40, (batch, length)).astype("int32"),
        "segment_ids": segments,
        "padding_mask": mask,
    }


def _np(x):
    return ops.convert_to_numpy(x)


def test_encoder_harness():
    out = run_model_test(BertEncoder, CONFIG, _inputs())
    assert tuple(out["sequence_output"].shape) == (3, 6, 8)
    assert tuple(out["pooled_output"].shape) == (3, 8)


def test_encoder_equals_hand_composition():
    model = BertEncoder(**CONFIG)
    data = _inputs()
    out = model(data)
    tok = model.token_embedding(data["token_ids"])
    x = tok + model.position_embedding(tok) + model.segment_embedding(data["segment_ids"])
    x = model.embeddings_layer_norm(x)
    for block in model.transformer_layers:
        assert not block.normalize_first and block.activation == "gelu"
        x = block(x, padding_mask=data["padding_mask"])
    np.testing.assert_allclose(_np(out["sequence_output"]), _np(x), atol=1e-5)
    w, b = model.pooled_dense.get_weights()
    np.testing.assert_allclose(
        _np(out["pooled_output"]), np.tanh(_np(x)[:, 0] @ w + b), atol=1e-5
    )


@pytest.mark.parametrize(
    "size, layers, hidden", [("nano", 2, 64), ("tiny", 2, 128), ("mini", 4, 256),
                             ("small", 4, 512), ("medium", 8, 512), ("base", 12, 768)]
)
def test_size_table(size, layers, hidden):
    # Google BERT's sizes and kzoo's nano, written out: heads H/64,
    # intermediate 4H, 512 positions.
    assert BertEncoder.size_config(size) == {
        "num_layers": layers, "num_heads": hidden // 64, "hidden_dim": hidden,
        "intermediate_dim": 4 * hidden, "max_sequence_length": 512,
    }


def test_from_size_builds_tiny():
    model = BertEncoder.from_size("tiny", vocabulary_size=50, dropout=0.0)
    assert (model.num_layers, model.hidden_dim, model.num_heads,
            model.intermediate_dim, model.dropout) == (2, 128, 2, 512, 0.0)
    # BERT-Tiny's parameter count (vocabulary 50 instead of 30522).
    embeddings = 50 * 128 + 2 * 128 + 512 * 128 + 2 * 128
    block = 4 * (128 * 128 + 128) + 2 * 128 * 512 + 512 + 128 + 4 * 128
    assert model.count_params() == embeddings + 2 * block + 128 * 128 + 128
    with pytest.raises(ValueError, match="size.*huge"):
        BertEncoder.from_size("huge", vocabulary_size=10)
    with pytest.raises(ValueError, match="size.*huge"):
        BertEncoder.from_size("huge", vocabulary_size=10)


def _mlm_inputs():
    data = _inputs()
    data["mask_positions"] = np.array([[1, 3], [0, 2], [4, 5]], "int32")
    return data


def test_masked_lm_harness():
    # The harness builds models from keyword arguments and round-trips the
    # config; `encoder` is itself a model, so it goes through
    # serialize_keras_object like any nested config.
    encoder = BertEncoder(**CONFIG)
    config = {"encoder": keras.saving.serialize_keras_object(encoder)}
    out = run_model_test(
        from_serialized(BertMaskedLM), config, _mlm_inputs(),
        expected_output_shape=(3, 2, 40),
    )
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_classifier_harness(pooling):
    encoder = BertEncoder(**CONFIG)
    config = {
        "encoder": keras.saving.serialize_keras_object(encoder),
        "num_classes": 3,
        "dropout": 0.1,
        "pooling": pooling,
    }
    out = run_model_test(
        from_serialized(BertClassifier), config, _inputs(), expected_output_shape=(3, 3)
    )
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


def test_masked_lm_tied_weights_and_numbers():
    encoder = BertEncoder(**CONFIG)
    mlm = BertMaskedLM(encoder)
    data = _mlm_inputs()
    logits = _np(mlm(data))
    # The output projection is the token embedding itself: no (D, V) kernel
    # of its own, and the embedding variable is shared, not copied.
    table = encoder.token_embedding.embeddings
    assert sum(1 for w in mlm.weights if w is table) == 1
    assert not any(tuple(w.shape) == (8, 40) for w in mlm.weights)
    # Numbers: gather, Dense+gelu, LayerNorm, x @ E^T + b.
    seq = _np(encoder({k: data[k] for k in ("token_ids", "segment_ids", "padding_mask")})["sequence_output"])
    gathered = np.take_along_axis(seq, data["mask_positions"][..., None], axis=1)
    h = _np(mlm.transform_layer_norm(mlm.transform_dense(gathered)))
    mlm.output_bias.bias.assign(np.linspace(-1, 1, 40).astype("float32"))
    expected = h @ _np(table).T + np.linspace(-1, 1, 40)
    np.testing.assert_allclose(_np(mlm(data)), expected, atol=1e-5)
    assert not np.allclose(logits, _np(mlm(data)))
    # Changing the embedding changes the logits (tied, not a copy): with a
    # zero table only the output bias is left.
    table.assign(np.zeros((40, 8), "float32"))
    np.testing.assert_allclose(
        _np(mlm(data))[0, 0], np.linspace(-1, 1, 40), atol=1e-6
    )


def test_task_models_serialize_with_nested_encoder(tmp_path):
    encoder = BertEncoder(**CONFIG)
    clf = BertClassifier(encoder, num_classes=2)
    data = _inputs()
    path = str(tmp_path / "clf.keras")
    clf.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored.encoder, BertEncoder)
    np.testing.assert_allclose(_np(restored(data)), _np(clf(data)), atol=1e-6)
    # The encoder's weights are reachable for copying into another model.
    other = BertEncoder(**CONFIG)
    other.set_weights(restored.encoder.get_weights())
    np.testing.assert_allclose(
        _np(other(data)["pooled_output"]), _np(encoder(data)["pooled_output"]), atol=1e-6
    )


def test_classifier_numbers():
    encoder = BertEncoder(**CONFIG)
    clf = BertClassifier(encoder, num_classes=3)
    data = _inputs()
    pooled = _np(encoder(data)["pooled_output"])
    w, b = clf.output_dense.get_weights()
    np.testing.assert_allclose(_np(clf(data)), pooled @ w + b, atol=1e-5)


def test_classifier_mean_pooling_numbers_and_round_trip(tmp_path):
    encoder = BertEncoder(**CONFIG)
    clf = BertClassifier(encoder, num_classes=3, pooling="mean")
    data = _inputs()
    seq = _np(encoder(data)["sequence_output"])
    # Mean over real tokens only; the fully padded row pools to zeros.
    pooled = np.stack([seq[0].mean(0), seq[1, :4].mean(0), np.zeros(8)])
    w, b = clf.output_dense.get_weights()
    np.testing.assert_allclose(_np(clf(data)), pooled @ w + b, atol=1e-5)
    # Padding the batch further changes nothing.
    padded = {k: np.pad(v, ((0, 0), (0, 3))) for k, v in data.items()}
    np.testing.assert_allclose(_np(clf(padded)), _np(clf(data)), atol=1e-5)
    path = str(tmp_path / "clf.keras")
    clf.save(path)
    restored = keras.saving.load_model(path)
    assert restored.pooling == "mean"
    np.testing.assert_allclose(_np(restored(data)), _np(clf(data)), atol=1e-6)
    with pytest.raises(ValueError, match="pooling.*'max'"):
        BertClassifier(encoder, num_classes=3, pooling="max")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hidden_dim": 12, "num_heads": 5}, r"hidden_dim.*12.*num_heads.*5"),
        ({"vocabulary_size": -3}, "vocabulary_size.*-3"),
        ({"num_segments": 0}, "num_segments"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BertEncoder(**{**CONFIG, **kwargs})


def test_bad_inputs_and_heads():
    encoder = BertEncoder(**CONFIG)
    data = _inputs()
    with pytest.raises(ValueError, match="token_ids.*float"):
        encoder({**data, "token_ids": data["token_ids"].astype("float32")})
    with pytest.raises(ValueError, match=r"padding_mask.*\(3, 6\)"):
        encoder({**data, "padding_mask": data["padding_mask"][:2]})
    with pytest.raises(ValueError, match=r"segment_ids.*\(3, 6\)"):
        encoder({**data, "segment_ids": data["segment_ids"][:, :4]})
    with pytest.raises(ValueError, match="num_classes.*0"):
        BertClassifier(encoder, num_classes=0)
    with pytest.raises(ValueError, match="encoder"):
        BertClassifier("bert", num_classes=2)
    mlm = BertMaskedLM(encoder)
    with pytest.raises(ValueError, match="mask_positions.*rank 2"):
        mlm({**data, "mask_positions": np.array([1, 2], "int32")})
