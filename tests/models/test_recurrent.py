import numpy as np
import pytest
from keras import ops

from kzoo.models.recurrent import RecurrentClassifier
from kzoo.models.recurrent import RecurrentRegressor
from tests.harness import run_model_test


def _tokens(batch=3, t=6, vocab=30, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab, size=(batch, t)).astype("int32")
    mask = np.ones((batch, t), bool)
    mask[1, 4:] = False
    mask[2, 2:] = False
    ids[~mask] = 0
    return {"token_ids": ids, "padding_mask": mask}


def _features(batch=3, t=6, f=3, seed=0):
    x = _tokens(batch, t, seed=seed)
    feats = np.random.default_rng(seed).normal(size=(batch, t, f)).astype("float32")
    feats[~x["padding_mask"]] = 0.0
    return {"features": feats, "padding_mask": x["padding_mask"]}


def _pad_more(inputs, extra=3, seed=4):
    """Appends `extra` masked steps holding garbage."""
    rng = np.random.default_rng(seed)
    out = {"padding_mask": np.concatenate(
        [inputs["padding_mask"], np.zeros((len(inputs["padding_mask"]), extra), bool)], 1
    )}
    if "token_ids" in inputs:
        garbage = rng.integers(1, 30, size=(len(out["padding_mask"]), extra))
        out["token_ids"] = np.concatenate(
            [inputs["token_ids"], garbage.astype("int32")], 1
        )
    else:
        garbage = rng.normal(size=inputs["features"].shape[:1] + (extra,) +
                             inputs["features"].shape[2:]) * 9
        out["features"] = np.concatenate(
            [inputs["features"], garbage.astype("float32")], 1
        )
    return out


@pytest.mark.parametrize(
    "cell, bidirectional, layers",
    [("lstm", True, 2), ("gru", False, 1), ("simple_rnn", True, 1)],
)
def test_classifier_harness(cell, bidirectional, layers):
    run_model_test(
        RecurrentClassifier,
        {
            "vocabulary_size": 30, "num_classes": 4, "cell": cell,
            "hidden_dim": 8, "num_layers": layers, "bidirectional": bidirectional,
            "dropout": 0.1, "embedding_dim": 8,
        },
        _tokens(),
        expected_output_shape=(3, 4),
    )


def test_regressor_harness_tokens_and_features():
    run_model_test(
        RecurrentRegressor,
        {"vocabulary_size": 30, "output_dim": 2, "cell": "gru", "hidden_dim": 8,
         "embedding_dim": 8},
        _tokens(),
        expected_output_shape=(3, 2),
    )
    run_model_test(
        RecurrentRegressor,
        {"output_dim": 1, "num_features": 3, "cell": "lstm", "hidden_dim": 8,
         "num_layers": 2},
        _features(),
        expected_output_shape=(3, 1),
    )


def test_simple_rnn_classifier_matches_numpy():
    model = RecurrentClassifier(
        30, 3, cell="simple_rnn", hidden_dim=5, bidirectional=False,
        embedding_dim=4,
    )
    x = _tokens()
    logits = ops.convert_to_numpy(model(x))
    emb = ops.convert_to_numpy(model.token_embedding.embeddings)
    cell = model.encoder._rnns[0].cell
    w, u, b = (ops.convert_to_numpy(v) for v in (cell.kernel, cell.recurrent_kernel, cell.bias))
    wo, bo = (ops.convert_to_numpy(v) for v in model.output_dense.weights)
    for i in range(3):
        h = np.zeros(5, "float32")
        for t in np.flatnonzero(x["padding_mask"][i]):
            h = np.tanh(emb[x["token_ids"][i, t]] @ w + h @ u + b)
        np.testing.assert_allclose(logits[i], h @ wo + bo, atol=1e-5)


@pytest.mark.parametrize("cell", ["simple_rnn", "gru", "lstm"])
def test_right_padding_invariance(cell):
    x = _tokens()
    model = RecurrentClassifier(30, 3, cell=cell, hidden_dim=6, num_layers=2,
                                embedding_dim=6)
    np.testing.assert_allclose(model(_pad_more(x)), model(x), atol=1e-5)
    f = _features()
    reg = RecurrentRegressor(output_dim=2, num_features=3, cell=cell, hidden_dim=6)
    np.testing.assert_allclose(reg(_pad_more(f)), reg(f), atol=1e-5)
    # Each example alone, without padding, gives the same output.
    for i in range(3):
        n = int(f["padding_mask"][i].sum())
        alone = reg({"features": f["features"][i : i + 1, :n],
                     "padding_mask": np.ones((1, n), bool)})
        np.testing.assert_allclose(alone[0], reg(f)[i], atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cell": "transformer"}, "cell"),
        ({"hidden_dim": 0}, "hidden_dim"),
        ({"num_classes": 0}, "num_classes"),
        ({"vocabulary_size": -1}, "vocabulary_size"),
        ({"num_layers": 1.0}, "num_layers"),
        ({"embedding_dim": 0}, "embedding_dim"),
        ({"dropout": 2.0}, "dropout"),
    ],
)
def test_classifier_bad_arguments(kwargs, message):
    args = {"vocabulary_size": 30, "num_classes": 2, "hidden_dim": 4}
    with pytest.raises(ValueError, match=message):
        RecurrentClassifier(**{**args, **kwargs})


def test_regressor_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="num_features"):
        RecurrentRegressor(output_dim=1)
    with pytest.raises(ValueError, match="vocabulary_size"):
        RecurrentRegressor(vocabulary_size=10, num_features=3)
    with pytest.raises(ValueError, match="output_dim"):
        RecurrentRegressor(vocabulary_size=10, output_dim=0)
    model = RecurrentClassifier(30, 2, hidden_dim=4, embedding_dim=4)
    x = _tokens()
    with pytest.raises(ValueError, match="token_ids"):
        model({**x, "token_ids": x["token_ids"].astype("float32")})
