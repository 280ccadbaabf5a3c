import keras
import numpy as np
import pytest
from keras import ops

from kzoo.layers.sparse.reversible import ReversibleBlock
from kzoo.layers.sparse.reversible import ReversibleEncoder
from tests.harness import run_layer_test


@keras.saving.register_keras_serializable(package="kzoo_tests")
class _MaskedMix(keras.layers.Layer):
    """A tiny F that uses its padding mask: tanh(Dense(x)) + masked mean."""

    def build(self, x_shape):
        self.dense = keras.layers.Dense(x_shape[-1], dtype=self.dtype_policy)
        self.dense.build(x_shape)

    def call(self, x, padding_mask=None):
        h = ops.tanh(self.dense(x))
        if padding_mask is None:
            return h + ops.mean(h, axis=1, keepdims=True)
        m = ops.cast(padding_mask, h.dtype)[..., None]
        mean = ops.sum(h * m, axis=1, keepdims=True) / ops.maximum(
            ops.sum(m, axis=1, keepdims=True), 1.0
        )
        return h + mean


def _blocks(n=3, seed=0):
    return [
        ReversibleBlock(
            _MaskedMix(),
            keras.layers.Dense(
                8, activation="tanh", kernel_initializer=keras.initializers.GlorotUniform(seed + i)
            ),
        )
        for i in range(n)
    ]


def _data(t=6):
    return np.random.default_rng(0).normal(size=(2, t, 8)).astype("float32")


def _padding(t=6):
    m = np.ones((2, t), bool)
    m[1, 4:] = False
    return m


def _grads(layer, x, mask):
    """Gradients of sum(sin(out) * w) w.r.t. the input and every weight."""
    weight = np.random.default_rng(1).normal(size=(2, x.shape[1], 16)).astype("float32")
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            loss = tf.reduce_sum(tf.sin(layer(xt, padding_mask=mask)) * weight)
        grads = tape.gradient(loss, [xt] + list(layer.trainable_variables))
        return [np.asarray(g) for g in grads]
    import jax

    def f(x, ws):
        out, _ = layer.stateless_call(ws, [], x, padding_mask=mask)
        return jax.numpy.sum(jax.numpy.sin(out) * weight)

    gx, gws = jax.grad(f, argnums=(0, 1))(
        x, [v.value for v in layer.trainable_variables]
    )
    return [np.asarray(gx)] + [np.asarray(g) for g in gws]


def test_memory_saving_gradients_equal_plain_autodiff():
    x, mask = _data(), _padding()
    saving = ReversibleEncoder(_blocks(), memory_saving=True)
    plain = ReversibleEncoder(_blocks(), memory_saving=False)
    saving(x, padding_mask=mask)
    plain(x, padding_mask=mask)
    plain.set_weights(saving.get_weights())
    np.testing.assert_allclose(
        ops.convert_to_numpy(saving(x, padding_mask=mask)),
        ops.convert_to_numpy(plain(x, padding_mask=mask)),
        atol=1e-6,
    )
    got, want = _grads(saving, x, mask), _grads(plain, x, mask)
    assert len(got) == len(want) == 1 + 3 * 4
    for i, (a, b) in enumerate(zip(got, want)):
        assert np.abs(b).max() > 0, f"gradient {i} is zero: the test cannot fail"
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-4, err_msg=f"grad {i}")


def test_block_inverse_and_hand_computed_forward():
    x1, x2 = _data(), _data()[:, ::-1].copy()
    block = _blocks(1)[0]
    y1, y2 = block(x1, x2)
    f = ops.convert_to_numpy(block.f(x2))
    np.testing.assert_allclose(ops.convert_to_numpy(y1), x1 + f, atol=1e-6)
    g = ops.convert_to_numpy(block.g(y1))
    np.testing.assert_allclose(ops.convert_to_numpy(y2), x2 + g, atol=1e-6)
    r1, r2 = block.inverse(y1, y2)
    np.testing.assert_allclose(ops.convert_to_numpy(r1), x1, atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(r2), x2, atol=1e-5)


@pytest.mark.parametrize("memory_saving", [True, False])
def test_harness(memory_saving):
    run_layer_test(
        ReversibleEncoder,
        {"blocks": _blocks(2), "memory_saving": memory_saving},
        {"inputs": _data(), "padding_mask": _padding()},
        expected_output_shape=(2, 6, 16),
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="blocks"):
        ReversibleEncoder([])
    with pytest.raises(ValueError, match="`f`"):
        ReversibleBlock("dense", keras.layers.Dense(8))
    stateful = ReversibleBlock(
        keras.layers.Dropout(0.1), keras.layers.Dense(8)
    )
    with pytest.raises(ValueError, match="blocks.*non-trainable"):
        ReversibleEncoder([stateful])(_data())
