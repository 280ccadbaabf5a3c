import numpy as np
import pytest
from keras import ops

from kzoo.layers import MultiHeadAttention
from kzoo.layers.attention.linformer_attention import LinformerAttention
from tests.harness import run_layer_test


def _data(t=8, dim=8, seed=0):
    return np.random.default_rng(seed).normal(size=(2, t, dim)).astype("float32")


def _padding(t=8):
    m = np.ones((2, t), bool)
    m[1, 5:] = False
    return m


def test_identity_projection_equals_dense():
    x = _data()
    dense = MultiHeadAttention(num_heads=2, key_dim=4)
    want = ops.convert_to_numpy(dense(x))
    lin = LinformerAttention(num_heads=2, key_dim=4, projected_length=8, max_sequence_length=8)
    lin(x)
    eye = np.eye(8, dtype="float32")
    lin.set_weights(dense.get_weights() + [eye, eye])
    out, scores = lin(x, return_attention_scores=True)
    np.testing.assert_allclose(ops.convert_to_numpy(out), want, atol=1e-5, rtol=1e-5)
    # Longer max_sequence_length, shorter input: first rows of E and F.
    lin = LinformerAttention(num_heads=2, key_dim=4, projected_length=8, max_sequence_length=12)
    lin(x)
    eye = np.eye(12, 8, dtype="float32")
    lin.set_weights(dense.get_weights() + [eye, eye])
    np.testing.assert_allclose(ops.convert_to_numpy(lin(x)), want, atol=1e-5, rtol=1e-5)


def test_projection_matches_numpy():
    x, pad = _data(), _padding()
    lin = LinformerAttention(num_heads=2, key_dim=4, projected_length=3, max_sequence_length=10)
    out = ops.convert_to_numpy(lin(x, padding_mask=pad))
    w = {v.path.split("/", 1)[1]: ops.convert_to_numpy(v) for v in lin.weights}
    q = np.einsum("btd,dnh->btnh", x, w["query/kernel"]) + w["query/bias"]
    k = np.einsum("btd,dnh->btnh", x, w["key/kernel"]) + w["key/bias"]
    v = np.einsum("btd,dnh->btnh", x, w["value/kernel"]) + w["value/bias"]
    k, v = k * pad[:, :, None, None], v * pad[:, :, None, None]
    k = np.einsum("bsnh,sk->bknh", k, w["projections/key_projection"][:8])
    v = np.einsum("bsnh,sk->bknh", v, w["projections/value_projection"][:8])
    s = np.einsum("btnh,bknh->bntk", q, k) / 2.0
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    ref = np.einsum("bntk,bknv->btnv", p, v)
    ref = np.einsum("btnv,nvd->btd", ref, w["attention_output/kernel"]) + w["attention_output/bias"]
    np.testing.assert_allclose(out, ref, atol=1e-5, rtol=1e-5)


def test_padding_invariance():
    x, pad = _data(), _padding()
    lin = LinformerAttention(num_heads=2, key_dim=4, projected_length=3, max_sequence_length=12)
    a = ops.convert_to_numpy(lin(x, padding_mask=pad))
    x2 = np.concatenate([x, _data(t=4, seed=5)], 1)
    pad2 = np.concatenate([pad, np.zeros((2, 4), bool)], 1)
    b = ops.convert_to_numpy(lin(x2, padding_mask=pad2))
    np.testing.assert_allclose(b[0, :8], a[0], atol=1e-5)
    np.testing.assert_allclose(b[1, :5], a[1, :5], atol=1e-5)


def test_harness():
    run_layer_test(
        LinformerAttention,
        {"num_heads": 2, "key_dim": 4, "projected_length": 4, "max_sequence_length": 16},
        {"query": _data(), "padding_mask": _padding()},
        expected_output_shape=(2, 8, 8),
    )


def test_bad_inputs():
    with pytest.raises(ValueError, match="projected_length"):
        LinformerAttention(num_heads=2, key_dim=4, projected_length=0, max_sequence_length=8)
    with pytest.raises(ValueError, match="max_sequence_length"):
        LinformerAttention(num_heads=2, key_dim=4, projected_length=2, max_sequence_length=None)
    lin = LinformerAttention(num_heads=2, key_dim=4, projected_length=2, max_sequence_length=6)
    with pytest.raises(ValueError, match="max_sequence_length=6; received 8"):
        lin(_data())
