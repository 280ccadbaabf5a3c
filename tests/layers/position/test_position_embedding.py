import numpy as np
import pytest
from keras import ops

from kzoo.layers import PositionEmbedding
from tests.harness import run_layer_test


def test_harness_and_table_lookup():
    x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
    out = run_layer_test(
        PositionEmbedding,
        {"sequence_length": 12, "initializer": "glorot_uniform"},
        {"inputs": x},
        expected_output_shape=(2, 5, 8),
    )
    # The harness builds with seed 1; rebuild the same table and compare.
    layer = PositionEmbedding(sequence_length=12)
    layer(x)
    table = ops.convert_to_numpy(layer.position_embeddings)
    out = ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(out[0], table[:5])
    np.testing.assert_allclose(out[1], table[:5])


def test_start_index_selects_rows():
    x = np.zeros((2, 3, 4), "float32")
    layer = PositionEmbedding(sequence_length=10)
    layer(x)
    table = ops.convert_to_numpy(layer.position_embeddings)
    np.testing.assert_allclose(ops.convert_to_numpy(layer(x, start_index=6))[1], table[6:9])


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="sequence_length"):
        PositionEmbedding(sequence_length=0)
    with pytest.raises(ValueError, match="sequence_length.*4"):
        PositionEmbedding(sequence_length=4)(np.zeros((1, 6, 8), "float32"))
    layer = PositionEmbedding(sequence_length=4)
    layer(np.zeros((1, 2, 8), "float32"))
    with pytest.raises(ValueError, match="start_index=3"):
        layer(np.zeros((1, 2, 8), "float32"), start_index=3)
