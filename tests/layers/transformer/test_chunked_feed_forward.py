import keras
import numpy as np
import pytest
from keras import ops

from kzoo.layers.transformer.chunked_feed_forward import ChunkedFeedForward
from tests.harness import run_layer_test


def _data(t=10):
    return np.random.default_rng(0).normal(size=(2, t, 8)).astype("float32")


def _reference(layer, x):
    w1, b1, w2, b2 = [ops.convert_to_numpy(w) for w in layer.weights]
    h = x @ w1 + b1
    h = np.maximum(h, 0.0)
    return h @ w2 + b2


@pytest.mark.parametrize("t, chunk", [(10, 4), (8, 4), (8, 8), (3, 5)])
def test_equals_unchunked_feed_forward(t, chunk):
    x = _data(t)
    layer = ChunkedFeedForward(intermediate_dim=12, chunk_size=chunk, activation="relu")
    out = ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(out, _reference(layer, x), atol=1e-5, rtol=1e-5)


def test_gradients_equal_unchunked():
    x = _data(10)
    layer = ChunkedFeedForward(intermediate_dim=12, chunk_size=3)
    full = ChunkedFeedForward(intermediate_dim=12, chunk_size=10)
    layer(x)
    full(x)
    full.set_weights(layer.get_weights())
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        def grads(l):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.sin(l(x)))
            return tape.gradient(loss, l.trainable_variables)
    else:
        import jax

        def grads(l):
            def f(ws):
                out, _ = l.stateless_call(ws, [], x)
                return jax.numpy.sum(jax.numpy.sin(out))

            return jax.grad(f)([v.value for v in l.trainable_variables])

    for a, b in zip(grads(layer), grads(full)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-5)


def test_harness():
    run_layer_test(
        ChunkedFeedForward,
        {"intermediate_dim": 16, "chunk_size": 4},
        {"inputs": _data(10)},
        expected_output_shape=(2, 10, 8),
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [({"intermediate_dim": 0}, "intermediate_dim"),
     ({"intermediate_dim": 4, "chunk_size": -2}, "chunk_size")],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ChunkedFeedForward(**kwargs)
