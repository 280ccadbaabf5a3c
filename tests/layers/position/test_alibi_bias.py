import numpy as np
import pytest
from keras import ops

from kzoo.layers import ALiBiBias
from kzoo.layers import MultiHeadAttention
from kzoo.layers.position.alibi_bias import alibi_slopes
from tests.harness import run_layer_test


def test_harness_and_bias_formula():
    x = np.random.default_rng(0).normal(size=(2, 5, 8)).astype("float32")
    out = run_layer_test(
        ALiBiBias,
        {"num_heads": 4},
        {"query": x},
        expected_output_shape=(1, 4, 5, 5),
        run_training=False,  # no weights
    )
    out = ops.convert_to_numpy(out)
    slopes = [2.0 ** (-2 * (k + 1)) for k in range(4)]  # 2^(-8/4 * k)
    for n in range(4):
        for t in range(5):
            for s in range(5):
                assert out[0, n, t, s] == pytest.approx(-slopes[n] * abs(t - s))


def test_slopes_8_heads_are_half_to_1_over_256():
    np.testing.assert_allclose(alibi_slopes(8), [1 / 2**k for k in range(1, 9)])


def test_slopes_non_power_of_2():
    # Paper's rule: 4 slopes of n=4, then every other slope of n=8.
    expected = [1 / 4, 1 / 16, 1 / 64, 1 / 256] + [1 / 2, 1 / 8]
    np.testing.assert_allclose(alibi_slopes(6), expected)
    np.testing.assert_allclose(alibi_slopes(1), [1 / 256])


def test_cached_query_offset_and_key_length():
    q, k = np.zeros((1, 1, 8), "float32"), np.zeros((1, 6, 8), "float32")
    bias = ops.convert_to_numpy(ALiBiBias(2)(q, k, query_offset=3))
    np.testing.assert_allclose(bias[0, 0, 0], -np.abs(3 - np.arange(6)) / 16)


def test_causal_attention_with_alibi_matches_reference():
    x = np.random.default_rng(2).normal(size=(1, 4, 8)).astype("float32")
    mha = MultiHeadAttention(num_heads=2, key_dim=4)
    bias = ALiBiBias(2)(x)
    out = ops.convert_to_numpy(mha(x, attention_bias=bias, use_causal_mask=True))
    wq, bq, wk, bk, wv, bv, wo, bo = mha.get_weights()
    q = np.einsum("btd,dnh->btnh", x, wq) + bq
    k = np.einsum("btd,dnh->btnh", x, wk) + bk
    v = np.einsum("btd,dnh->btnh", x, wv) + bv
    scores = np.einsum("btnh,bsnh->bnts", q, k) / 2.0
    t, s = np.arange(4)[:, None], np.arange(4)[None]
    scores = scores - np.array([1 / 16, 1 / 256])[:, None, None] * (t - s)
    scores = np.where(s <= t, scores, -np.inf)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    expected = np.einsum("bnts,bsnh->btnh", p, v)
    expected = np.einsum("btnh,nhd->btd", expected, wo) + bo
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="num_heads"):
        ALiBiBias(num_heads=0)
