import keras
import numpy as np
import pytest
from keras import ops

from kzoo.layers.attention.band_attention import band_attention
from kzoo.layers.attention.band_attention import band_attention_forward
from kzoo.layers.attention.band_attention import band_bias
from kzoo.layers.attention.band_attention import key_bias

# B=1, N=2, d=1, nb=3 blocks of c=2 rows; window of 1 block on each side
# (K = 6 keys) cut to 2 lane steps each side; G=2 global keys.
SHAPE = (1, 2, 1, 3, 2)


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=SHAPE + (4,)).astype("float32")
    kw = rng.normal(size=(1, 2, 1, 3, 6, 4)).astype("float32")
    vw = rng.normal(size=(1, 2, 1, 3, 6, 3)).astype("float32")
    valid = np.ones((1, 1, 1, 3, 6), bool)
    valid[..., 0, :2] = False  # keys before the sequence
    valid[..., 2, 4:] = False  # keys after it
    valid[..., 1, 3] = False  # a padding key
    valid[..., 2, :] = False  # the last block sees no local key
    kg = rng.normal(size=(1, 2, 2, 4)).astype("float32")
    vg = rng.normal(size=(1, 2, 2, 3)).astype("float32")
    g_valid = np.array([[True, False]])
    return q, kw, vw, valid, kg, vg, g_valid


def _reference(q, kw, vw, valid, kg=None, vg=None, g_valid=None):
    """NumPy softmax over the allowed columns; zero for a row with none."""
    band = band_bias(2, 1, 1, 2) == 0  # (c, K)
    scores = np.einsum("bndqch,bndqkh->bndqck", q, kw)
    allowed = band & valid[..., None, :]
    allowed = np.broadcast_to(allowed, scores.shape)
    values = np.broadcast_to(vw[..., None, :, :], scores.shape + (3,))
    if kg is not None:
        gs = np.einsum("bndqch,bgnh->bndqcg", q, kg)
        scores = np.concatenate([scores, gs], -1)
        ga = np.broadcast_to(g_valid[:, None, None, None, None, :], gs.shape)
        allowed = np.concatenate([allowed, ga], -1)
        gv = np.transpose(vg, (0, 2, 1, 3))[:, :, None, None, None]
        gv = np.broadcast_to(gv, gs.shape + (3,))
        values = np.concatenate([values, gv], -2)
    e = np.where(allowed, np.exp(scores - scores.max(-1, keepdims=True)), 0.0)
    total = e.sum(-1, keepdims=True)
    p = np.where(total > 0, e / np.where(total > 0, total, 1), 0.0)
    return np.einsum("...k,...kv->...v", p, values)


def _call(fn, with_globals, q, kw, vw, valid, kg, vg, g_valid):
    bias = band_bias(2, 1, 1, 2)
    globals_ = None
    if with_globals:
        globals_ = (kg, vg, ops.cast(ops.where(g_valid, 0.0, -1e30), "float32"))
    out = fn(q, kw, vw, bias, key_bias(valid), globals_)
    return out[0] if isinstance(out, tuple) else out


def _value_and_grads(fn, with_globals, inputs):
    """sum(out * r) and its gradients w.r.t. q, kw, vw (and kg, vg)."""
    q, kw, vw, valid, kg, vg, g_valid = inputs
    r = np.random.default_rng(7).normal(size=SHAPE + (3,)).astype("float32")
    diff = [q, kw, vw] + ([kg, vg] if with_globals else [])

    def loss(*args):
        args = list(args)
        full = args[:3] + [valid] + (args[3:] if with_globals else [kg, vg])
        out = _call(fn, with_globals, *full, g_valid)
        return ops.sum(out * r)

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        vals = [tf.constant(a) for a in diff]
        with tf.GradientTape() as tape:
            for v in vals:
                tape.watch(v)
            value = loss(*vals)
        grads = tape.gradient(value, vals)
        return value.numpy(), [g.numpy() for g in grads]
    if keras.backend.backend() == "jax":
        import jax

        value, grads = jax.value_and_grad(loss, argnums=tuple(range(len(diff))))(
            *diff
        )
        return np.asarray(value), [np.asarray(g) for g in grads]
    pytest.skip("gradient check written for the TensorFlow and JAX backends")


@pytest.mark.parametrize("with_globals", [False, True])
def test_forward_equals_numpy_reference(with_globals):
    inputs = _inputs()
    q, kw, vw, valid, kg, vg, g_valid = inputs
    want = _reference(q, kw, vw, valid, *((kg, vg, g_valid) if with_globals else ()))
    got = _call(band_attention, with_globals, *inputs)
    np.testing.assert_allclose(ops.convert_to_numpy(got), want, atol=1e-5)
    if not with_globals:  # the last block saw no key: zero rows, not NaN
        np.testing.assert_array_equal(ops.convert_to_numpy(got)[..., 2, :, :], 0.0)


@pytest.mark.parametrize("with_globals", [False, True])
def test_hand_made_gradient_equals_autodiff(with_globals):
    inputs = _inputs(seed=1)
    value, grads = _value_and_grads(band_attention, with_globals, inputs)
    want_value, want = _value_and_grads(band_attention_forward, with_globals, inputs)
    np.testing.assert_allclose(value, want_value, rtol=1e-5)
    assert len(grads) == len(want) == (5 if with_globals else 3)
    for g, w in zip(grads, want):
        assert np.abs(w).max() > 0
        np.testing.assert_allclose(g, w, atol=1e-5)
