import numpy as np
import pytest
from keras import ops

from kzoo.layers import SinusoidalPositionEncoding
from tests.harness import run_layer_test


def _reference(length, dim, start=0, wavelength=10000.0):
    """Vaswani et al. 2017, section 3.5, written out."""
    pe = np.zeros((length, dim))
    for pos in range(length):
        for i in range(dim // 2):
            pe[pos, 2 * i] = np.sin((pos + start) / wavelength ** (2 * i / dim))
            pe[pos, 2 * i + 1] = np.cos((pos + start) / wavelength ** (2 * i / dim))
    return pe


def test_harness_and_formula():
    x = np.random.default_rng(0).normal(size=(2, 7, 8)).astype("float32")
    out = run_layer_test(
        SinusoidalPositionEncoding,
        {"max_wavelength": 10000.0},
        {"inputs": x},
        expected_output_shape=(2, 7, 8),
        run_training=False,  # no weights: nothing to train
    )
    out = ops.convert_to_numpy(out)
    np.testing.assert_allclose(out[0], _reference(7, 8), atol=1e-5)
    np.testing.assert_allclose(out[1], out[0])


def test_start_index_and_wavelength():
    x = np.zeros((1, 3, 6), "float32")
    layer = SinusoidalPositionEncoding(max_wavelength=100.0)
    out = ops.convert_to_numpy(layer(x, start_index=5))
    np.testing.assert_allclose(out[0], _reference(3, 6, 5, 100.0), atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_wavelength"):
        SinusoidalPositionEncoding(max_wavelength=0)
    with pytest.raises(ValueError, match="hidden_dim.*even.*7"):
        SinusoidalPositionEncoding()(np.zeros((1, 3, 7), "float32"))
    with pytest.raises(ValueError, match="inputs.*rank 3"):
        SinusoidalPositionEncoding()(np.zeros((3, 8), "float32"))
