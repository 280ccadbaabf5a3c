import numpy as np
import keras
import pytest
from keras import ops

from kzoo.layers import BahdanauAttention
from tests.harness import run_layer_test


def _data(batch=2, t=3, s=6, dq=5, d=4, seed=0):
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(batch, t, dq)).astype("float32")
    value = rng.normal(size=(batch, s, d)).astype("float32")
    mask = np.ones((batch, s), bool)
    mask[1, 4:] = False  # right padding
    return query, value, mask


def _numpy_bahdanau(layer, query, value, mask):
    wq = ops.convert_to_numpy(layer._query_dense.kernel)
    wk = ops.convert_to_numpy(layer._key_dense.kernel)
    bk = ops.convert_to_numpy(layer._key_dense.bias)
    v = ops.convert_to_numpy(layer.score_vector)
    hidden = np.tanh((query @ wq)[:, :, None, :] + (value @ wk + bk)[:, None])
    scores = hidden @ v  # (B, T, S)
    scores = np.where(mask[:, None, :], scores, -np.inf)
    w = np.exp(scores - scores.max(-1, keepdims=True))
    w = w / w.sum(-1, keepdims=True)
    return np.einsum("bts,bsd->btd", w, value), w


def test_harness_with_padding_and_fully_masked_row():
    query, value, mask = _data()
    mask[0, :] = False  # a sequence with no real key
    context, weights = run_layer_test(
        BahdanauAttention,
        {"units": 8},
        {"query": query, "value": value, "padding_mask": mask},
        expected_output_shape=[(2, 3, 4), (2, 3, 6)],
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(weights)[0], 0.0)
    np.testing.assert_array_equal(ops.convert_to_numpy(context)[0], 0.0)


def test_matches_numpy_formula():
    query, value, mask = _data()
    layer = BahdanauAttention(units=7)
    context, weights = layer(query, value, padding_mask=mask)
    ref_context, ref_weights = _numpy_bahdanau(layer, query, value, mask)
    np.testing.assert_allclose(weights, ref_weights, atol=1e-5)
    np.testing.assert_allclose(context, ref_context, atol=1e-5)
    assert np.all(ops.convert_to_numpy(weights)[1, :, 4:] == 0.0)
    assert keras.backend.standardize_dtype(weights.dtype) == "float32"


def test_separate_key_and_precomputed_keys():
    query, value, mask = _data()
    key = np.random.default_rng(1).normal(size=value.shape).astype("float32")
    layer = BahdanauAttention(units=7)
    context, weights = layer(query, value, padding_mask=mask, key=key)
    again = layer.attend(query, value, layer.project_keys(key), mask)
    np.testing.assert_allclose(context, again[0], atol=1e-6)
    # With key != value, weights come from key, context from value.
    _, ref_w = _numpy_bahdanau(layer, query, key, mask)
    np.testing.assert_allclose(weights, ref_w, atol=1e-5)


def test_float16_large_scores_stay_finite():
    query, value, mask = _data()
    layer = BahdanauAttention(units=8, dtype="mixed_float16")
    context, weights = layer(query * 300, value, padding_mask=mask)
    assert np.all(np.isfinite(ops.convert_to_numpy(ops.cast(context, "float32"))))
    np.testing.assert_allclose(ops.convert_to_numpy(weights).sum(-1), 1.0, atol=1e-3)


@pytest.mark.parametrize("units", [0, -3, 2.5, True])
def test_bad_units(units):
    with pytest.raises(ValueError, match="units"):
        BahdanauAttention(units=units)


def test_bad_inputs():
    query, value, mask = _data()
    layer = BahdanauAttention(units=4)
    with pytest.raises(ValueError, match="query.*rank 3"):
        layer(query[0], value)
    with pytest.raises(ValueError, match="padding_mask"):
        layer(query, value, padding_mask=mask[:, :3])
