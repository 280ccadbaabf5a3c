import numpy as np
import pytest
from keras import ops

from kzoo.layers import LuongAttention
from tests.harness import run_layer_test


def _data(batch=2, t=3, s=6, dq=4, d=4, seed=0):
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(batch, t, dq)).astype("float32")
    value = rng.normal(size=(batch, s, d)).astype("float32")
    mask = np.ones((batch, s), bool)
    mask[1, 4:] = False
    return query, value, mask


def _numpy_luong(query, value, mask, w_a=None):
    keys = value if w_a is None else value @ w_a  # (B, S, Dq)
    scores = np.einsum("btd,bsd->bts", query, keys)
    scores = np.where(mask[:, None, :], scores, -np.inf)
    w = np.exp(scores - scores.max(-1, keepdims=True))
    w = w / w.sum(-1, keepdims=True)
    return np.einsum("bts,bsd->btd", w, value), w


@pytest.mark.parametrize("score", ["dot", "general"])
def test_harness_with_padding_and_fully_masked_row(score):
    query, value, mask = _data()
    mask[0, :] = False
    context, weights = run_layer_test(
        LuongAttention,
        {"score": score},
        {"query": query, "value": value, "padding_mask": mask},
        expected_output_shape=[(2, 3, 4), (2, 3, 6)],
        # "dot" has no weights to train.
        run_training=score == "general",
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(weights)[0], 0.0)
    np.testing.assert_array_equal(ops.convert_to_numpy(context)[0], 0.0)


def test_dot_matches_numpy_formula():
    query, value, mask = _data()
    context, weights = LuongAttention("dot")(query, value, padding_mask=mask)
    ref_c, ref_w = _numpy_luong(query, value, mask)
    np.testing.assert_allclose(weights, ref_w, atol=1e-5)
    np.testing.assert_allclose(context, ref_c, atol=1e-5)


def test_general_matches_numpy_formula_with_different_widths():
    query, value, mask = _data(dq=3, d=5)
    layer = LuongAttention("general")
    context, weights = layer(query, value, padding_mask=mask)
    w_a = ops.convert_to_numpy(layer._key_dense.kernel)  # (D, Dq)
    assert w_a.shape == (5, 3)
    ref_c, ref_w = _numpy_luong(query, value, mask, w_a)
    np.testing.assert_allclose(weights, ref_w, atol=1e-5)
    np.testing.assert_allclose(context, ref_c, atol=1e-5)
    assert np.all(ops.convert_to_numpy(weights)[1, :, 4:] == 0.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="score"):
        LuongAttention("concat")
    query, value, _ = _data(dq=3, d=5)
    with pytest.raises(ValueError, match="score.*dot.*width"):
        LuongAttention("dot")(query, value)
