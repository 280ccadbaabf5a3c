import numpy as np
import pytest
from keras import ops

from kzoo.layers.position.axial_position_embedding import AxialPositionEmbedding
from tests.harness import run_layer_test


def test_equals_explicit_concatenation():
    layer = AxialPositionEmbedding(axial_shape=(3, 4), axial_dims=(2, 6))
    x = np.zeros((2, 10, 8), "float32")
    out = ops.convert_to_numpy(layer(x))
    first, second = [ops.convert_to_numpy(w) for w in layer.weights]
    expected = np.stack(
        [np.concatenate([first[p // 4], second[p % 4]]) for p in range(10)]
    )
    np.testing.assert_allclose(out, np.broadcast_to(expected, (2, 10, 8)))
    # start_index shifts the positions (decoding).
    out = ops.convert_to_numpy(layer(x[:, :2], start_index=5))
    np.testing.assert_allclose(out[0], expected[5:7])


def test_harness():
    x = np.random.default_rng(0).normal(size=(2, 12, 8)).astype("float32")
    run_layer_test(
        AxialPositionEmbedding,
        {"axial_shape": (4, 4)},
        {"inputs": x},
        expected_output_shape=(2, 12, 8),
        run_training=True,
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="axial_shape"):
        AxialPositionEmbedding(axial_shape=(4,))
    with pytest.raises(ValueError, match="axial_dims"):
        AxialPositionEmbedding(axial_shape=(4, 4), axial_dims=(3, 3))(
            np.zeros((1, 4, 8), "float32")
        )
    with pytest.raises(ValueError, match="at most d1 \\* d2 = 16"):
        AxialPositionEmbedding(axial_shape=(4, 4))(np.zeros((1, 17, 8), "float32"))
