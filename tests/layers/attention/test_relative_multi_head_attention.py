import numpy as np
import pytest
from keras import ops

from kzoo.layers.attention.relative_multi_head_attention import (
    RelativeMultiHeadAttention,
)
from kzoo.layers.attention.relative_multi_head_attention import relative_shift
from tests.harness import run_layer_test


def _data(t=12, dim=8, seed=0):
    return np.random.default_rng(seed).normal(size=(2, t, dim)).astype("float32")


def _randomize(layer, seed=1):
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in layer.get_weights()]
    )


def _numpy_reference(layer, x, mask):
    """Naive Transformer-XL attention over x with an explicit (B, T, T) mask,
    relative distances computed pair by pair (no shift trick)."""
    w = {v.path.split("/", 1)[1]: ops.convert_to_numpy(v) for v in layer.weights}
    q = np.einsum("btd,dnh->btnh", x, w["query/kernel"]) + w["query/bias"]
    k = np.einsum("btd,dnh->btnh", x, w["key/kernel"]) + w["key/bias"]
    v = np.einsum("btd,dnh->btnh", x, w["value/kernel"]) + w["value/bias"]
    t, d = x.shape[1], x.shape[2]
    inv = 1.0 / 10000 ** (np.arange(d // 2) * 2.0 / d)
    scores = np.zeros((x.shape[0], q.shape[2], t, t))
    for i in range(t):
        for j in range(t):
            ang = (i - j) * inv
            rel = np.concatenate([np.sin(ang), np.cos(ang)])
            rk = np.einsum("d,dnh->nh", rel, w["position/kernel"])
            scores[:, :, i, j] = np.einsum(
                "bnh,bnh->bn", q[:, i] + w["relative_biases/content_bias"], k[:, j]
            ) + np.einsum("bnh,nh->bn", q[:, i] + w["relative_biases/position_bias"], rk)
    scores /= np.sqrt(q.shape[-1])
    scores = np.where(mask[:, None], scores, -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    out = np.einsum("bnts,bsnv->btnv", probs, v)
    return np.einsum("btnv,nvd->btd", out, w["attention_output/kernel"]) + w[
        "attention_output/bias"
    ]


def test_relative_shift_places_every_distance():
    t, s = 3, 5  # memory 2
    p = s + t - 1
    raw = np.arange(t * p, dtype="float32").reshape(1, t, p)
    out = ops.convert_to_numpy(relative_shift(raw, s))[0]
    for i in range(t):
        for j in range(s):
            distance = (s - t) + i - j
            assert out[i, j] == raw[0, i, s - 1 - distance]


def test_full_run_matches_pairwise_numpy_reference():
    x = _data(t=6)
    layer = RelativeMultiHeadAttention(num_heads=2, key_dim=4)
    layer(x)
    _randomize(layer)
    mask = np.broadcast_to(np.tril(np.ones((6, 6), bool)), (2, 6, 6))
    np.testing.assert_allclose(
        ops.convert_to_numpy(layer(x, use_causal_mask=True)),
        _numpy_reference(layer, x, mask), atol=1e-4, rtol=1e-4,
    )


@pytest.mark.parametrize("memory_length", [4, 8])
def test_segment_by_segment_equals_concatenation(memory_length):
    # Three segments of 4. Segment-wise with memory = the last
    # `memory_length` inputs equals one run over the concatenation under
    # the causal mask limited to keys >= segment start - memory_length.
    x = _data(t=12)
    seg = 4
    layer = RelativeMultiHeadAttention(num_heads=2, key_dim=4)
    layer(x)
    _randomize(layer)
    outs, memory = [], None
    for start in range(0, 12, seg):
        part = x[:, start : start + seg]
        keys = part if memory is None else np.concatenate([memory, part], 1)
        outs.append(ops.convert_to_numpy(layer(part, value=keys, use_causal_mask=True)))
        history = part if memory is None else np.concatenate([memory, part], 1)
        memory = history[:, -memory_length:]
    pos = np.arange(12)
    seg_start = pos // seg * seg
    mask = (pos[None, :] <= pos[:, None]) & (
        pos[None, :] >= seg_start[:, None] - memory_length
    )
    full = ops.convert_to_numpy(layer(x, attention_mask=np.broadcast_to(mask, (2, 12, 12))))
    np.testing.assert_allclose(np.concatenate(outs, 1), full, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(
        full, _numpy_reference(layer, x, np.broadcast_to(mask, (2, 12, 12))), atol=1e-4, rtol=1e-4
    )


def test_causal_offset_is_the_memory_length():
    # Query i sits at position M + i: with memory, query 0 sees the whole
    # memory and itself, and nothing after; a later key changes nothing.
    x, mem = _data(t=4), _data(t=3, seed=2)
    layer = RelativeMultiHeadAttention(num_heads=2, key_dim=4)
    keys = np.concatenate([mem, x], 1)
    out = ops.convert_to_numpy(layer(x, value=keys, use_causal_mask=True))
    changed = x.copy()
    changed[:, 1:] += 5.0  # queries 1.. change, and so do keys M+1..
    keys2 = np.concatenate([mem, changed], 1)
    out2 = ops.convert_to_numpy(layer(changed, value=keys2, use_causal_mask=True))
    np.testing.assert_allclose(out[:, 0], out2[:, 0], atol=1e-6)
    assert not np.allclose(out[:, 1], out2[:, 1])


def test_harness_with_memory_and_padding():
    pad = np.ones((2, 10), bool)
    pad[1, :3] = False  # the second sequence has a shorter memory
    pad[1, -1] = False
    x = _data(t=6)
    keys = np.concatenate([_data(t=4, seed=3), x], 1)
    run_layer_test(
        RelativeMultiHeadAttention,
        {"num_heads": 2, "key_dim": 4, "dropout": 0.1},
        {"query": x, "value": keys, "padding_mask": pad},
        call_kwargs={"use_causal_mask": True},
        expected_output_shape=(2, 6, 8),
    )


def test_bad_inputs():
    layer = RelativeMultiHeadAttention(num_heads=2, key_dim=4)
    x = _data(t=4)
    with pytest.raises(ValueError, match="same length"):
        layer(x, value=_data(t=7), key=_data(t=6))
    with pytest.raises(ValueError, match="padding_mask"):
        layer(x, value=np.concatenate([_data(t=3), x], 1), padding_mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="at least as long as the query"):
        layer(x, value=x[:, :2])
    with pytest.raises(ValueError, match="RelativeMultiHeadAttention.*`cache`"):
        layer(x, cache=np.zeros((2, 2, 4, 2, 4), "float32"), cache_update_index=0)
    with pytest.raises(ValueError, match="query"):
        layer(x[0])


def test_dense_variables_first_in_keras_order():
    import keras

    x = _data(t=4)
    ref = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    ref(x, x)
    layer = RelativeMultiHeadAttention(num_heads=2, key_dim=4)
    layer(x)
    names = [w.path.split("/", 1)[1] for w in layer.weights]
    assert names[:8] == [w.path.split("/", 1)[1] for w in ref.weights]
    assert names[8:] == [
        "position/kernel", "relative_biases/content_bias", "relative_biases/position_bias"
    ]
