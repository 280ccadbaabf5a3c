import numpy as np
import pytest
from keras import ops

from kzoo.layers.transformer.transformer_encoder_block import TransformerEncoderBlock
from kzoo.models.bigbird import BigBirdEncoder
from tests.harness import run_model_test

SIZES = {"vocabulary_size": 50, "num_layers": 2, "num_heads": 2, "hidden_dim": 8, "intermediate_dim": 16}


def _np(x):
    return np.asarray(ops.convert_to_numpy(ops.cast(x, "float32")))


def _inputs(batch=2, length=22, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, 50, size=(batch, length)).astype("int32")
    pad = np.ones((batch, length), bool)
    pad[1, 15:] = False
    ids[~pad] = 0
    return {"token_ids": ids, "padding_mask": pad}


def test_harness():
    run_model_test(
        BigBirdEncoder,
        dict(SIZES, block_size=3, num_random_blocks=1, max_sequence_length=32, seed=4),
        _inputs(),
        expected_output_shape=(2, 22, 8),
    )


def test_harness_pre_ln():
    run_model_test(
        BigBirdEncoder,
        dict(
            SIZES,
            block_size=4,
            num_random_blocks=2,
            max_sequence_length=32,
            normalize_first=True,
            seed=1,
        ),
        _inputs(length=24),
        expected_output_shape=(2, 24, 8),
    )


def test_equals_dense_blocks_under_each_layers_pattern():
    model = BigBirdEncoder(
        **SIZES, block_size=2, num_random_blocks=2, max_sequence_length=32, dropout=0.0, seed=9
    )
    data = _inputs()
    got = _np(model(data))
    tokens = model.token_embedding(data["token_ids"])
    x = tokens + model.position_embedding(tokens)
    patterns = []
    for layer in model.transformer_layers:
        dense = TransformerEncoderBlock(2, 16, dropout=0.0, activation="gelu")
        dense(x)
        dense.set_weights(layer.get_weights())
        pattern = layer.self_attention.attention_pattern(22)  # (N, T, T)
        patterns.append(pattern)
        bias = np.where(pattern, 0.0, -1e9).astype("float32")[None]
        x = dense(x, padding_mask=data["padding_mask"], attention_bias=bias)
    assert not patterns[0].all()
    assert not np.array_equal(patterns[0], patterns[1]), "each layer has its own seed"
    np.testing.assert_allclose(got, _np(x), atol=1e-5)


def test_seed_drawn_once_and_kept():
    model = BigBirdEncoder(**SIZES, block_size=3, num_random_blocks=1, max_sequence_length=32)
    revived = BigBirdEncoder.from_config(model.get_config())
    revived.set_weights(model.get_weights())
    data = _inputs()
    np.testing.assert_allclose(_np(revived(data)), _np(model(data)), atol=1e-6)


def test_bad_inputs():
    with pytest.raises(ValueError, match="block_size"):
        BigBirdEncoder(**SIZES, block_size=0)
    model = BigBirdEncoder(**SIZES, block_size=4, num_random_blocks=1, max_sequence_length=32, seed=0)
    with pytest.raises(ValueError, match="sequence_length=8"):
        model(_inputs(length=8))
