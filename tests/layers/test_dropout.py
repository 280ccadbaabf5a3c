import keras
import numpy as np
import pytest
from keras import ops

from kzoo.layers import Dropout
from tests.harness import run_layer_test


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _compiled_training_call(layer):
    """`layer(x, training=True)` compiled with XLA, advancing its seed."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        fn = tf.function(lambda x: layer(x, training=True), jit_compile=True)
        return lambda x: _np(fn(x))
    if keras.backend.backend() == "jax":
        import jax

        @jax.jit
        def fn(state, x):
            return layer.stateless_call([], state, x, training=True)

        def call(x):
            out, state = fn([v.value for v in layer.non_trainable_variables], x)
            for variable, value in zip(layer.non_trainable_variables, state):
                variable.assign(value)
            return _np(out)

        return call
    pytest.skip("compiled call written for the TensorFlow and JAX backends")


def test_harness():
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    # A layer without weights: no fit step to check (training=False is the
    # identity; the training path is checked below).
    out = run_layer_test(
        Dropout, {"rate": 0.3, "seed": 1}, {"inputs": x}, run_training=False
    )
    np.testing.assert_array_equal(_np(out), x)


def test_same_masks_as_keras_dropout_without_xla():
    x = np.ones((4, 64, 32), "float32")
    ours, theirs = Dropout(0.3, seed=7), keras.layers.Dropout(0.3, seed=7)
    for _ in range(2):  # the second call uses the advanced seed state
        np.testing.assert_array_equal(
            _np(ours(x, training=True)), _np(theirs(x, training=True))
        )


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_compiled_masks_keep_the_rate_and_scale(rate):
    layer = Dropout(rate, seed=3)
    call = _compiled_training_call(layer)
    x = np.ones((8, 128, 128), "float32")  # 131,072 draws
    first, second = call(x), call(x)
    for out in (first, second):
        kept = out != 0
        # Binomial standard deviation of the kept fraction is below 0.0014.
        assert abs(kept.mean() - (1 - rate)) < 0.01, kept.mean()
        np.testing.assert_allclose(out[kept], 1 / (1 - rate), rtol=1e-6)
    # A new mask at each call (the seed state advances), not a fixed one.
    assert (first != second).mean() > 0.5 * 2 * rate * (1 - rate)


def test_noise_shape_broadcasts_the_mask():
    layer = Dropout(0.5, noise_shape=(None, 1, 16), seed=2)
    x = np.ones((3, 10, 16), "float32")
    out = _np(layer(x, training=True))
    assert (out == out[:, :1, :]).all()  # the same mask at every position
    assert 0 < (out == 0).mean() < 1
    compiled = _compiled_training_call(layer)(x)
    assert (compiled == compiled[:, :1, :]).all()


def test_rate_zero_and_inference_are_the_identity():
    x = np.random.default_rng(1).normal(size=(2, 7)).astype("float32")
    np.testing.assert_array_equal(_np(Dropout(0.0)(x, training=True)), x)
    np.testing.assert_array_equal(_np(Dropout(0.5, seed=1)(x, training=False)), x)


def test_bad_rate():
    with pytest.raises(ValueError, match="rate"):
        Dropout(1.5)
