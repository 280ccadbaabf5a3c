import keras
import numpy as np
import pytest
from keras import ops

from kzoo.layers import MultiHeadAttention
from kzoo.layers.attention.sparse_transformer_attention import (
    SparseTransformerAttention,
)
from tests.harness import run_layer_test
from tests.layers.attention.test_longformer_attention import _grads


def _data(batch=2, length=16, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, length, dim)).astype("float32")


def _np(x):
    return np.asarray(ops.convert_to_numpy(ops.cast(x, "float32")))


def _naive_pattern(length, pattern, stride, summary):
    """The pattern written out loop by loop, as in the paper's definitions."""
    mask = np.zeros((length, length), bool)
    for t in range(length):
        for s in range(t + 1):
            if pattern == "strided":
                mask[t, s] = (t - s) < stride or (t - s) % stride == 0
            else:
                mask[t, s] = s // stride == t // stride or (
                    s % stride >= stride - summary
                )
    return mask


@pytest.mark.parametrize("pattern", ["strided", "fixed"])
def test_harness_padding_and_fully_masked_row(pattern):
    x = _data()
    pad = np.ones((2, 16), bool)
    pad[1, :5] = False  # left padding: causal rows 0..4 see nothing
    out = run_layer_test(
        SparseTransformerAttention,
        {"num_heads": 2, "key_dim": 4, "pattern": pattern, "stride": 4, "num_summary": 2},
        {"query": x, "padding_mask": pad},
        call_kwargs={"use_causal_mask": True},
        expected_output_shape=(2, 16, 8),
    )
    out = _np(out)
    assert np.all(np.isfinite(out))
    # Zero attention on rows that see only padding: the output bias (0 at init).
    np.testing.assert_allclose(out[1, :5], 0.0, atol=1e-7)


@pytest.mark.parametrize(
    "pattern, stride, summary, length",
    [
        ("strided", 4, 1, 16),
        ("strided", 3, 1, 14),
        ("strided", 5, 1, 11),
        ("fixed", 4, 1, 16),
        ("fixed", 4, 2, 14),
        ("fixed", 3, 2, 13),
    ],
)
def test_equals_dense_under_pattern_mask(pattern, stride, summary, length):
    x = _data(length=length)
    pad = np.ones((2, length), bool)
    pad[1, length - 4 :] = False
    layer = SparseTransformerAttention(
        num_heads=2, key_dim=4, pattern=pattern, stride=stride, num_summary=summary
    )
    layer(x, use_causal_mask=True)
    dense = MultiHeadAttention(num_heads=2, key_dim=4)
    dense(x)
    dense.set_weights(layer.get_weights())
    mask = layer.attention_pattern(length)
    np.testing.assert_array_equal(mask, _naive_pattern(length, pattern, stride, summary))
    assert not mask[np.tril_indices(length)].all(), "pattern must be sparser than causal"
    full_mask = np.broadcast_to(mask, (2, length, length))
    got = layer(x, padding_mask=pad, use_causal_mask=True)
    want = dense(x, padding_mask=pad, attention_mask=full_mask)
    np.testing.assert_allclose(_np(got), _np(want), atol=1e-5)
    got_grads = _grads(layer, x, padding_mask=pad, use_causal_mask=True)
    want_grads = _grads(dense, x, padding_mask=pad, attention_mask=full_mask)
    for g, w in zip(got_grads, want_grads):
        np.testing.assert_allclose(g, w, atol=1e-5)


def test_stride_covering_sequence_is_causal_attention():
    x = _data(length=10)
    layer = SparseTransformerAttention(num_heads=2, key_dim=4, pattern="strided", stride=10)
    layer(x, use_causal_mask=True)
    ref = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    ref(x, x)
    layer.set_weights(ref.get_weights())
    np.testing.assert_allclose(
        _np(layer(x, use_causal_mask=True)), _np(ref(x, x, use_causal_mask=True)), atol=1e-5
    )


def test_causal_future_tokens_do_not_matter():
    x = _data()
    layer = SparseTransformerAttention(num_heads=2, key_dim=4, pattern="fixed", stride=4)
    out = _np(layer(x, use_causal_mask=True))
    changed = x.copy()
    changed[:, 9:] = _data(seed=7)[:, 9:]
    np.testing.assert_allclose(_np(layer(changed, use_causal_mask=True))[:, :9], out[:, :9], atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pattern": "axial"}, "pattern"),
        ({"stride": 0}, "stride"),
        ({"stride": 4, "num_summary": 5}, "num_summary"),
        ({"stride": 4, "num_summary": 0}, "num_summary"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SparseTransformerAttention(num_heads=2, key_dim=4, **kwargs)


def test_bad_inputs():
    layer = SparseTransformerAttention(num_heads=2, key_dim=4, stride=4)
    with pytest.raises(ValueError, match=r"padding_mask.*\(2, 16\)"):
        layer(_data(), padding_mask=np.ones((2, 15), bool), use_causal_mask=True)
    with pytest.raises(ValueError, match="query.*rank 3"):
        layer(_data()[0], use_causal_mask=True)
    with pytest.raises(ValueError, match="SparseTransformerAttention.*`attention_mask`"):
        layer(_data(), attention_mask=np.ones((2, 16, 16), bool), use_causal_mask=True)
    with pytest.raises(ValueError, match="causal only: call it with use_causal_mask=True"):
        layer(_data())


@pytest.mark.tf_only
@pytest.mark.parametrize("pattern", ["strided", "fixed"])
def test_dynamic_length_signature_falls_back_to_same_numbers(pattern):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.function with a None-length signature is TensorFlow only")
    import tensorflow as tf

    x = _data(length=14)
    pad = np.ones((2, 14), bool)
    pad[1, 10:] = False
    layer = SparseTransformerAttention(
        num_heads=2, key_dim=4, pattern=pattern, stride=4, num_summary=2
    )
    eager = _np(layer(x, padding_mask=pad, use_causal_mask=True))
    fn = tf.function(
        lambda a, b: layer(a, padding_mask=b, use_causal_mask=True),
        input_signature=[tf.TensorSpec((None, None, 8)), tf.TensorSpec((None, None), tf.bool)],
    )
    np.testing.assert_allclose(fn(x, pad).numpy(), eager, atol=1e-5)
