import numpy as np
import pytest
from keras import ops

from kzoo.layers import RotaryEmbedding
from tests.harness import run_layer_test


def _reference(x, start=0, wavelength=10000.0):
    """RoFormer eq. 34: rotate pairs (2i, 2i+1) by angle p * w^(-2i/H)."""
    out = np.empty_like(x, dtype="float64")
    dim = x.shape[-1]
    for p in range(x.shape[1]):
        for i in range(dim // 2):
            angle = (p + start) * wavelength ** (-2 * i / dim)
            c, s = np.cos(angle), np.sin(angle)
            a, b = x[:, p, ..., 2 * i], x[:, p, ..., 2 * i + 1]
            out[:, p, ..., 2 * i] = a * c - b * s
            out[:, p, ..., 2 * i + 1] = a * s + b * c
    return out


def _x(shape=(2, 6, 2, 8), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def test_harness_and_formula():
    x = _x()
    out = run_layer_test(
        RotaryEmbedding,
        {"max_wavelength": 10000.0, "scaling_factor": 1.0},
        {"inputs": x},
        expected_output_shape=(2, 6, 2, 8),
        run_training=False,  # no weights
    )
    np.testing.assert_allclose(ops.convert_to_numpy(out), _reference(x), atol=1e-5)


def test_start_index_equals_slice_of_longer_sequence():
    x = _x()
    layer = RotaryEmbedding()
    full = ops.convert_to_numpy(layer(x))
    step = ops.convert_to_numpy(layer(x[:, 4:5], start_index=4))
    np.testing.assert_allclose(step, full[:, 4:5], atol=1e-5)


def test_scores_depend_only_on_distance():
    rng = np.random.default_rng(1)
    q, k = rng.normal(size=8).astype("float32"), rng.normal(size=8).astype("float32")
    layer = RotaryEmbedding()
    length = 12
    qs = ops.convert_to_numpy(layer(np.tile(q, (1, length, 1, 1))))[0, :, 0]
    ks = ops.convert_to_numpy(layer(np.tile(k, (1, length, 1, 1))))[0, :, 0]
    scores = qs @ ks.T  # scores[m, n] = <R_m q, R_n k>
    for distance in range(-3, 4):
        diag = np.diagonal(scores, offset=distance)
        np.testing.assert_allclose(diag, diag[0], atol=1e-4)
    # And the norm is preserved (a rotation).
    np.testing.assert_allclose(np.linalg.norm(qs, axis=-1), np.linalg.norm(q), rtol=1e-5)


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="max_wavelength"):
        RotaryEmbedding(max_wavelength=-1.0)
    with pytest.raises(ValueError, match="scaling_factor"):
        RotaryEmbedding(scaling_factor=0)
    with pytest.raises(ValueError, match="even.*7"):
        RotaryEmbedding()(np.zeros((1, 3, 2, 7), "float32"))
    with pytest.raises(ValueError, match="inputs.*rank"):
        RotaryEmbedding()(np.zeros((3, 8), "float32"))
