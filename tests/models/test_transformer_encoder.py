import numpy as np
import pytest
from keras import ops

from kzoo import TransformerEncoder
from tests.harness import run_model_test

CONFIG = {
    "vocabulary_size": 30,
    "num_layers": 2,
    "num_heads": 2,
    "hidden_dim": 8,
    "intermediate_dim": 16,
    "max_sequence_length": 12,
    "dropout": 0.1,
}


def _inputs(batch=3, length=6, seed=0):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, length), bool)
    mask[1, 4:] = False  # padding
    mask[2, :] = False  # a fully padded sequence: every query sees nothing
    return {
        "token_ids": rng.integers(0, 30, (batch, length)).astype("int32"),
        "padding_mask": mask,
    }


@pytest.mark.parametrize(
    "extra",
    [
        {"normalize_first": False, "position_encoding": "learned"},
        {"normalize_first": True, "position_encoding": "rotary"},
    ],
)
def test_harness(extra):
    run_model_test(
        TransformerEncoder, {**CONFIG, **extra}, _inputs(), expected_output_shape=(3, 6, 8)
    )


@pytest.mark.parametrize("normalize_first", [False, True])
def test_equals_hand_composition_of_its_layers(normalize_first):
    model = TransformerEncoder(**{**CONFIG, "normalize_first": normalize_first})
    data = _inputs()
    out = ops.convert_to_numpy(model(data))
    tokens = model.token_embedding(data["token_ids"])
    x = tokens + model.embeddings.position_embedding(tokens)
    for block in model.transformer_layers:
        x = block(x, padding_mask=data["padding_mask"])
    if normalize_first:
        x = model.final_layer_norm(x)
    np.testing.assert_allclose(out, ops.convert_to_numpy(x), atol=1e-5)
    # Weights are reachable: the embedding table is the model's first weight.
    assert model.token_embedding.embeddings is model.weights[0]
    assert len(model.transformer_layers) == 2


def test_padding_does_not_change_real_tokens():
    model = TransformerEncoder(**CONFIG)
    data = _inputs()
    other = {k: v.copy() for k, v in data.items()}
    other["token_ids"][1, 4:] = 7
    a, b = ops.convert_to_numpy(model(data)), ops.convert_to_numpy(model(other))
    np.testing.assert_allclose(a[1, :4], b[1, :4], atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hidden_dim": 10, "num_heads": 3}, r"hidden_dim.*10.*num_heads.*3"),
        ({"vocabulary_size": 0}, "vocabulary_size.*0"),
        ({"num_layers": -1}, "num_layers.*-1"),
        ({"intermediate_dim": 0}, "intermediate_dim"),
        ({"dropout": 1.0}, "dropout"),
        ({"position_encoding": "rope"}, "position_encoding.*rope"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TransformerEncoder(**{**CONFIG, **kwargs})


def test_bad_inputs():
    model = TransformerEncoder(**CONFIG)
    data = _inputs()
    with pytest.raises(ValueError, match="token_ids.*float32"):
        model({**data, "token_ids": data["token_ids"].astype("float32")})
    with pytest.raises(ValueError, match=r"padding_mask.*\(3, 6\).*\(3, 5\)"):
        model({**data, "padding_mask": data["padding_mask"][:, :5]})
    with pytest.raises(ValueError, match="token_ids.*rank 2"):
        model({**data, "token_ids": data["token_ids"][0]})
