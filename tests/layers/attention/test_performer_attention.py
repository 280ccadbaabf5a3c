import numpy as np
import pytest
from keras import ops

from kzoo.layers import MultiHeadAttention
from kzoo.layers.attention.performer_attention import PerformerAttention
from kzoo.layers.attention.performer_attention import orthogonal_random_features
from tests.harness import run_layer_test


def _data(t=8, dim=8, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return (scale * rng.normal(size=(2, t, dim))).astype("float32")


def _padding(t=8):
    m = np.ones((2, t), bool)
    m[1, 5:] = False
    return m


def _error(num_features, x, pad, causal, seed=0):
    dense = MultiHeadAttention(num_heads=2, key_dim=4)
    dense(x)
    performer = PerformerAttention(
        num_heads=2, key_dim=4, num_random_features=num_features, seed=seed
    )
    performer(x)
    performer.set_weights(dense.get_weights() + [performer.get_weights()[-1]])
    want = ops.convert_to_numpy(dense(x, padding_mask=pad, use_causal_mask=causal))
    got = ops.convert_to_numpy(performer(x, padding_mask=pad, use_causal_mask=causal))
    return np.abs(got - want).mean()


@pytest.mark.parametrize("causal", [False, True])
def test_estimate_converges_to_softmax_attention(causal):
    x, pad = _data(scale=0.5), _padding()
    # Mean absolute error against exact softmax attention (same weights),
    # averaged over three feature draws; inputs of scale 0.5.
    errors = {
        m: np.mean([_error(m, x, pad, causal, seed) for seed in range(3)])
        for m in (16, 1024)
    }
    assert errors[1024] < errors[16] / 3, errors
    assert errors[1024] < 0.01, errors


def test_orthogonal_features_are_orthogonal_in_blocks():
    w = orthogonal_random_features(10, 4, seed=0)
    block = w[:4] / np.linalg.norm(w[:4], axis=1, keepdims=True)
    np.testing.assert_allclose(block @ block.T, np.eye(4), atol=1e-5)


def _reference(layer, x, pad, causal):
    """Explicit (T, S) matrix phi(Q) phi(K)^T, masked, row-normalised."""
    w = {v.path.split("/", 1)[1]: ops.convert_to_numpy(v) for v in layer.weights}
    q = np.einsum("btd,dnh->btnh", x, w["query/kernel"]) + w["query/bias"]
    k = np.einsum("btd,dnh->btnh", x, w["key/kernel"]) + w["key/bias"]
    v = np.einsum("btd,dnh->btnh", x, w["value/kernel"]) + w["value/bias"]
    pq = ops.convert_to_numpy(layer._features(ops.convert_to_tensor(q), True))
    pk = ops.convert_to_numpy(layer._features(ops.convert_to_tensor(k), False))
    a = np.einsum("btnm,bsnm->bnts", pq, pk)
    t = x.shape[1]
    mask = np.ones((2, 1, t, t), bool)
    if causal:
        mask &= np.tril(np.ones((t, t), bool))
    if pad is not None:
        mask &= pad[:, None, None, :]
    a = np.where(mask, a, 0.0)
    a = a / a.sum(-1, keepdims=True)
    out = np.einsum("bnts,bsnv->btnv", a, v)
    return np.einsum("btnv,nvd->btd", out, w["attention_output/kernel"]) + w[
        "attention_output/bias"
    ]


@pytest.mark.parametrize("causal", [False, True])
def test_prefix_sum_form_equals_explicit_masked_matrix(causal):
    x, pad = _data(), _padding()
    layer = PerformerAttention(num_heads=2, key_dim=4, num_random_features=16, seed=2)
    out = ops.convert_to_numpy(layer(x, padding_mask=pad, use_causal_mask=causal))
    np.testing.assert_allclose(out, _reference(layer, x, pad, causal), atol=1e-5, rtol=1e-4)


def test_padding_invariance():
    x, pad = _data(), _padding()
    layer = PerformerAttention(num_heads=2, key_dim=4, num_random_features=16, seed=2)
    a = ops.convert_to_numpy(layer(x, padding_mask=pad))
    x2 = np.concatenate([x, _data(t=4, seed=9)], 1)
    pad2 = np.concatenate([pad, np.zeros((2, 4), bool)], 1)
    b = ops.convert_to_numpy(layer(x2, padding_mask=pad2))
    np.testing.assert_allclose(b[0, :8], a[0], atol=1e-5)
    np.testing.assert_allclose(b[1, :5], a[1, :5], atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_harness(causal):
    run_layer_test(
        PerformerAttention,
        {"num_heads": 2, "key_dim": 4, "num_random_features": 16, "seed": 1},
        {"query": _data(), "padding_mask": _padding()},
        call_kwargs={"use_causal_mask": causal},
        expected_output_shape=(2, 8, 8),
    )


def test_bad_inputs():
    with pytest.raises(ValueError, match="num_random_features"):
        PerformerAttention(num_heads=2, key_dim=4, num_random_features=0)
    layer = PerformerAttention(num_heads=2, key_dim=4, num_random_features=8)
    with pytest.raises(ValueError, match="padding_mask"):
        layer(_data(), padding_mask=np.ones((2, 7), bool))
    with pytest.raises(ValueError, match="use_causal_mask"):
        layer(_data(t=4), _data(t=6), use_causal_mask=True)


def test_dropout_is_rejected_not_ignored():
    with pytest.raises(ValueError, match="no attention probabilities to drop.*received 0.1"):
        PerformerAttention(num_heads=2, key_dim=4, dropout=0.1)
