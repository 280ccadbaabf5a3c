import keras
import numpy as np
import pytest
from keras import ops

from kzoo.layers import MultiHeadAttention
from kzoo.layers.attention.masking import masked_softmax
from tests.harness import run_layer_test


def _data(batch=2, t=6, s=6, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    query = rng.normal(size=(batch, t, dim)).astype("float32")
    value = rng.normal(size=(batch, s, dim)).astype("float32")
    return query, value


def _padding(batch=2, s=6):
    mask = np.ones((batch, s), bool)
    mask[1, 4:] = False  # right padding on the second sequence
    return mask


def test_harness_self_attention_with_padding_and_fully_masked_row():
    query, _ = _data()
    attention_mask = np.ones((2, 6, 6), bool)
    attention_mask[0, 2, :] = False  # a query row that may see nothing
    run_layer_test(
        MultiHeadAttention,
        {"num_heads": 2, "key_dim": 4},
        {
            "query": query,
            "padding_mask": _padding(),
            "attention_mask": attention_mask,
        },
        expected_output_shape=(2, 6, 8),
    )


def test_harness_cross_attention_causal_and_scores():
    query, value = _data(t=4, s=6)
    out = run_layer_test(
        MultiHeadAttention,
        {"num_heads": 2, "key_dim": 4, "value_dim": 3, "output_dim": 5},
        {"query": query, "value": value, "padding_mask": _padding()},
        call_kwargs={"return_attention_scores": True},
        expected_output_shape=[(2, 4, 5), (2, 2, 4, 6)],
    )
    scores = ops.convert_to_numpy(out[1])
    np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    assert np.all(scores[1, :, :, 4:] == 0.0), "padded keys got probability"


def _keras_and_kzoo(**kwargs):
    query, value = _data(t=5, s=6)
    ref = keras.layers.MultiHeadAttention(**kwargs)
    ref(query, value)
    ours = MultiHeadAttention(**kwargs)
    ours(query, value)
    return ref, ours, query, value


def test_same_variables_in_same_order_as_keras():
    ref, ours, _, _ = _keras_and_kzoo(num_heads=2, key_dim=4)
    assert [w.path.split("/", 1)[1] for w in ref.weights] == [
        w.path.split("/", 1)[1] for w in ours.weights
    ]
    assert [tuple(w.shape) for w in ref.weights] == [
        tuple(w.shape) for w in ours.weights
    ]


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("value_dim", [None, 2])
def test_keras_weights_give_keras_outputs(use_bias, value_dim):
    if value_dim is not None and keras.backend.backend() == "jax":
        pytest.skip(
            "the reference, keras.layers.MultiHeadAttention 3.15 on JAX, fails "
            "when value_dim != key_dim (its fused dot_product_attention path "
            "requires equal head sizes); kzoo's layer is checked on TF"
        )
    ref, ours, query, value = _keras_and_kzoo(
        num_heads=3, key_dim=4, value_dim=value_dim, use_bias=use_bias
    )
    ours.set_weights(ref.get_weights())
    # No mask.
    np.testing.assert_allclose(
        ours(query, value), ref(query, value), atol=1e-5, rtol=1e-5
    )
    # Explicit attention mask with no fully masked row.
    rng = np.random.default_rng(3)
    mask = rng.random((2, 5, 6)) > 0.4
    mask[..., 0] = True
    np.testing.assert_allclose(
        ours(query, value, attention_mask=mask),
        ref(query, value, attention_mask=mask),
        atol=1e-5,
        rtol=1e-5,
    )
    # Padding mask is the same as an attention mask repeated over queries.
    pad = _padding()
    np.testing.assert_allclose(
        ours(query, value, padding_mask=pad),
        ref(query, value, attention_mask=np.repeat(pad[:, None, :], 5, axis=1)),
        atol=1e-5,
        rtol=1e-5,
    )
    # Weights move back: Keras given kzoo's weights matches as well.
    ref.set_weights(ours.get_weights())


def test_keras_weights_causal():
    query, _ = _data(t=6, s=6)
    ref = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    ref(query, query)
    ours = MultiHeadAttention(num_heads=2, key_dim=4)
    ours(query)
    ours.set_weights(ref.get_weights())
    np.testing.assert_allclose(
        ours(query, use_causal_mask=True),
        ref(query, query, use_causal_mask=True),
        atol=1e-5,
        rtol=1e-5,
    )


def test_attention_bias_is_added_to_scores():
    query, _ = _data()
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    layer(query)
    # A bias of -inf-like on a key equals masking that key.
    bias = np.zeros((1, 2, 6, 6), "float32")
    bias[..., 3] = -1e9
    mask = np.ones((2, 6, 6), bool)
    mask[..., 3] = False
    np.testing.assert_allclose(
        layer(query, attention_bias=bias),
        layer(query, attention_mask=mask),
        atol=1e-5,
    )


def test_cached_decoding_equals_full_pass():
    query, _ = _data(t=6)
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    full = layer(query, use_causal_mask=True)
    cache = ops.zeros((2, 2, 6, 2, 4))
    steps = []
    for i in range(6):
        x = query[:, i : i + 1]
        out, cache = layer(
            x, cache=cache, cache_update_index=i, use_causal_mask=True
        )
        steps.append(out)
    np.testing.assert_allclose(
        ops.concatenate(steps, axis=1), full, atol=1e-5, rtol=1e-5
    )


def test_fully_masked_row_is_zero_attention_in_float16():
    scores = np.array([[3.0, 70000.0], [1.0, 2.0]], "float32")
    mask = np.array([[False, False], [True, False]])
    probs = ops.convert_to_numpy(masked_softmax(scores, mask))
    np.testing.assert_array_equal(probs, [[0.0, 0.0], [1.0, 0.0]])
    query, _ = _data()
    layer = MultiHeadAttention(num_heads=2, key_dim=4, dtype="mixed_float16")
    out = layer(query * 100, attention_mask=np.zeros((2, 6, 6), bool))
    out = ops.convert_to_numpy(ops.cast(out, "float32"))
    assert np.all(np.isfinite(out))
    # Zero attention output: only the output bias (zeros at init) remains.
    np.testing.assert_allclose(out, 0.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_heads": 0, "key_dim": 4}, "num_heads"),
        ({"num_heads": 2, "key_dim": -1}, "key_dim"),
        ({"num_heads": 2, "key_dim": 4, "dropout": 1.5}, "dropout"),
        ({"num_heads": 2.0, "key_dim": 4}, "num_heads"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MultiHeadAttention(**kwargs)


def test_bad_inputs():
    layer = MultiHeadAttention(num_heads=2, key_dim=4)
    query, _ = _data()
    with pytest.raises(ValueError, match="query.*rank 3"):
        layer(query[0])
    with pytest.raises(ValueError, match=r"padding_mask.*\(2, 6\)"):
        layer(query, padding_mask=np.ones((2, 5), bool))
    with pytest.raises(ValueError, match="attention_mask"):
        layer(query, attention_mask=np.ones((2, 6, 5), bool))
