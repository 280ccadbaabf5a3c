import numpy as np
import pytest
from keras import ops

from kzoo.layers.transformer.transformer_encoder_block import TransformerEncoderBlock
from kzoo.models.linear_attention import LinformerEncoder
from kzoo.models.linear_attention import LinformerEncoderBlock
from kzoo.models.linear_attention import PerformerEncoder
from kzoo.models.linear_attention import PerformerEncoderBlock
from tests.harness import run_layer_test
from tests.harness import run_model_test


def _inputs(t=8, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 30, size=(2, t)).astype("int32")
    pad = np.ones((2, t), bool)
    pad[1, 5:] = False
    ids[1, 5:] = 0
    return {"token_ids": ids, "padding_mask": pad}


SMALL = dict(vocabulary_size=30, num_layers=2, num_heads=2, hidden_dim=8,
             intermediate_dim=16, max_sequence_length=16, dropout=0.0)


def _np(x):
    return ops.convert_to_numpy(x)


@pytest.mark.parametrize("causal", [False, True])
def test_performer_encoder_harness(causal):
    run_model_test(
        PerformerEncoder,
        dict(SMALL, num_random_features=16, causal=causal, seed=1),
        _inputs(),
        expected_output_shape=(2, 8, 8),
    )


def test_linformer_encoder_harness():
    run_model_test(
        LinformerEncoder,
        dict(SMALL, projected_length=4),
        _inputs(),
        expected_output_shape=(2, 8, 8),
    )


@pytest.mark.parametrize(
    "cls, extra",
    [(PerformerEncoder, {"num_random_features": 16, "seed": 0}),
     (PerformerEncoder, {"num_random_features": 16, "seed": 0, "causal": True}),
     (LinformerEncoder, {"projected_length": 4})],
)
def test_padding_invariance(cls, extra):
    model = cls(**SMALL, **extra)
    a = _np(model(_inputs()))
    more = _inputs(t=12)
    more["token_ids"][:, :8] = _inputs()["token_ids"]
    more["token_ids"][0, 8:] = 0
    more["padding_mask"][:] = False
    more["padding_mask"][:, :8] = _inputs()["padding_mask"]
    b = _np(model(more))
    np.testing.assert_allclose(b[0, :8], a[0], atol=1e-5)
    np.testing.assert_allclose(b[1, :5], a[1, :5], atol=1e-5)


def test_causal_performer_does_not_see_the_future():
    model = PerformerEncoder(**SMALL, num_random_features=16, causal=True, seed=0)
    x = _inputs()
    a = _np(model(x))
    x2 = {k: v.copy() for k, v in x.items()}
    x2["token_ids"][0, 5:] = (x2["token_ids"][0, 5:] + 7) % 30
    b = _np(model(x2))
    np.testing.assert_allclose(b[0, :5], a[0, :5], atol=1e-5)
    assert np.abs(b[0, 5:] - a[0, 5:]).max() > 1e-3


def test_linformer_block_with_identity_projection_equals_dense_block():
    x = np.random.default_rng(0).normal(size=(2, 8, 8)).astype("float32")
    pad = np.ones((2, 8), bool)
    dense = TransformerEncoderBlock(num_heads=2, intermediate_dim=16)
    want = _np(dense(x))
    lin = LinformerEncoderBlock(2, 16, projected_length=8, max_sequence_length=8)
    lin(x)
    weights = dense.get_weights()
    eye = np.eye(8, dtype="float32")
    lin.set_weights(weights[:8] + [eye, eye] + weights[8:])
    np.testing.assert_allclose(_np(lin(x, padding_mask=pad)), want, atol=1e-5, rtol=1e-5)


def test_blocks_harness():
    x = np.random.default_rng(0).normal(size=(2, 8, 8)).astype("float32")
    pad = _inputs()["padding_mask"]
    run_layer_test(
        PerformerEncoderBlock,
        {"num_heads": 2, "intermediate_dim": 16, "num_random_features": 16, "seed": 2},
        {"inputs": x, "padding_mask": pad},
        expected_output_shape=(2, 8, 8),
    )
    run_layer_test(
        LinformerEncoderBlock,
        {"num_heads": 2, "intermediate_dim": 16, "projected_length": 4,
         "max_sequence_length": 8},
        {"inputs": x, "padding_mask": pad},
        expected_output_shape=(2, 8, 8),
    )


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [(PerformerEncoder, dict(SMALL, num_random_features=0), "num_random_features"),
     (LinformerEncoder, dict(SMALL, projected_length=-1), "projected_length"),
     (LinformerEncoder, dict(SMALL, hidden_dim=7), "hidden_dim")],
)
def test_bad_arguments(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def test_bad_inputs():
    model = LinformerEncoder(**SMALL, projected_length=4)
    x = _inputs()
    with pytest.raises(ValueError, match="token_ids"):
        model({"token_ids": x["token_ids"].astype("float32"), "padding_mask": x["padding_mask"]})
    with pytest.raises(ValueError, match="length 20"):
        model(_inputs(t=20))
