import keras
import numpy as np
import pytest

from kzoo.layers import FeedForward
from tests.harness import run_layer_test


def _x(shape=(2, 5, 8), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _gelu(x):
    from math import erf

    return 0.5 * x * (1.0 + np.vectorize(erf)(x / np.sqrt(2.0)))


def _silu(x):
    return x / (1.0 + np.exp(-x))


@pytest.mark.parametrize("gated", [False, True])
def test_harness(gated):
    run_layer_test(
        FeedForward,
        {"intermediate_dim": 16, "activation": "silu", "gated": gated, "dropout": 0.1},
        {"inputs": _x()},
        expected_output_shape=(2, 5, 8),
    )


def test_harness_output_dim():
    run_layer_test(
        FeedForward,
        {"intermediate_dim": 12, "activation": "relu", "output_dim": 4},
        {"inputs": _x()},
        expected_output_shape=(2, 5, 4),
    )


@pytest.mark.parametrize(
    "activation, fn", [("relu", lambda x: np.maximum(x, 0)), ("gelu", None)]
)
def test_plain_matches_numpy(activation, fn):
    x = _x()
    layer = FeedForward(intermediate_dim=16, activation=activation)
    out = keras.ops.convert_to_numpy(layer(x))
    w1, b1, w2, b2 = layer.get_weights()
    b1 = b1 + 0.1  # non-zero biases so that they are checked too
    b2 = b2 - 0.2
    layer.set_weights([w1, b1, w2, b2])
    out = keras.ops.convert_to_numpy(layer(x))
    if fn is None:
        fn = _gelu  # Keras' "gelu" is the exact erf form.
    expected = fn(x @ w1 + b1) @ w2 + b2
    np.testing.assert_allclose(out, expected, atol=1e-5, rtol=1e-5)


def test_gated_matches_numpy_swiglu():
    x = _x()
    layer = FeedForward(intermediate_dim=16, activation="silu", gated=True, use_bias=False)
    layer(x)
    w, v, w2 = layer.get_weights()
    expected = (_silu(x @ w) * (x @ v)) @ w2
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(x)), expected, atol=1e-5, rtol=1e-5
    )


def test_dropout_only_in_training():
    x = _x()
    layer = FeedForward(intermediate_dim=16, dropout=0.5, seed=3)
    a = keras.ops.convert_to_numpy(layer(x))
    b = keras.ops.convert_to_numpy(layer(x, training=False))
    c = keras.ops.convert_to_numpy(layer(x, training=True))
    np.testing.assert_allclose(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"intermediate_dim": 0}, "intermediate_dim"),
        ({"intermediate_dim": 4.0}, "intermediate_dim"),
        ({"intermediate_dim": 4, "dropout": -0.1}, "dropout"),
        ({"intermediate_dim": 4, "activation": "nope"}, "activation"),
        ({"intermediate_dim": 4, "output_dim": -2}, "output_dim"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeedForward(**kwargs)
