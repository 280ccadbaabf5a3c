import numpy as np
import pytest
from keras import ops

from kzoo.models.lstm_transformer_hybrid import LSTMTransformerHybrid
from tests.harness import run_model_test


def _tokens(batch=3, t=6, vocab=30, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab, size=(batch, t)).astype("int32")
    mask = np.ones((batch, t), bool)
    mask[1, 4:] = False
    mask[2, 1:] = False
    ids[~mask] = 0
    return {"token_ids": ids, "padding_mask": mask}


def _model(**kwargs):
    args = dict(vocabulary_size=30, num_outputs=3, hidden_dim=8,
                num_recurrent_layers=1, num_transformer_layers=2, num_heads=2,
                intermediate_dim=16)
    return LSTMTransformerHybrid(**{**args, **kwargs})


@pytest.mark.parametrize("task, cell", [("classification", "lstm"), ("regression", "gru")])
def test_harness(task, cell):
    run_model_test(
        LSTMTransformerHybrid,
        {"vocabulary_size": 30, "num_outputs": 3, "task": task, "hidden_dim": 8,
         "num_recurrent_layers": 1, "num_transformer_layers": 1, "num_heads": 2,
         "intermediate_dim": 16, "cell": cell, "dropout": 0.1},
        _tokens(),
        expected_output_shape=(3, 3),
    )


def test_matches_layer_by_layer_reference_on_unpadded_examples():
    """Padded batch == each example run alone through the sublayers, no mask."""
    model = _model()
    x = _tokens()
    out = ops.convert_to_numpy(model(x))
    for i in range(3):
        n = int(x["padding_mask"][i].sum())
        h = model.token_embedding(x["token_ids"][i : i + 1, :n])
        h = model.recurrent_encoder(h)
        for block in model.transformer_layers:
            h = block(h)
        pooled = np.mean(ops.convert_to_numpy(h), axis=1)
        w, b = (ops.convert_to_numpy(v) for v in model.output_dense.weights)
        np.testing.assert_allclose(out[i], pooled[0] @ w + b, atol=1e-5)


def test_right_padding_invariance():
    model = _model(cell="gru")
    x = _tokens()
    rng = np.random.default_rng(3)
    longer = {
        "token_ids": np.concatenate(
            [x["token_ids"], rng.integers(1, 30, (3, 4)).astype("int32")], 1
        ),
        "padding_mask": np.concatenate([x["padding_mask"], np.zeros((3, 4), bool)], 1),
    }
    np.testing.assert_allclose(model(longer), model(x), atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"task": "ranking"}, "task"),
        ({"cell": "rnn"}, "cell"),
        ({"hidden_dim": 7}, "hidden_dim"),
        ({"hidden_dim": 10, "num_heads": 4}, "num_heads"),
        ({"num_outputs": 0}, "num_outputs"),
        ({"num_transformer_layers": 0}, "num_transformer_layers"),
        ({"vocabulary_size": 0}, "vocabulary_size"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _model(**kwargs)


def test_float_token_ids_are_rejected():
    model = _model()
    x = _tokens()
    with pytest.raises(ValueError, match="token_ids"):
        model({**x, "token_ids": x["token_ids"].astype("float32")})
