import numpy as np
import pytest
from keras import ops

from kzoo.layers.attention.lsh_attention import LSHAttention
from tests.harness import run_layer_test


def _data(batch=2, t=8, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, t, dim)).astype("float32")


def _padding(batch=2, t=8, real=5):
    mask = np.ones((batch, t), bool)
    mask[1, real:] = False
    return mask


def _dense_shared_qk(layer, x, padding_mask=None, causal=False, band=None):
    """NumPy reference: dense shared-QK attention with Reformer's masking rule.

    `band` (optional) is an extra (T, T) boolean pattern of visible keys.
    """
    w = {v.path.split("/", 1)[1]: ops.convert_to_numpy(v) for v in layer.weights}
    q = np.einsum("btd,dnh->btnh", x, w["query/kernel"]) + w["query/bias"]
    v = np.einsum("btd,dnh->btnh", x, w["value/kernel"]) + w["value/bias"]
    h = q.shape[-1]
    k = q / np.linalg.norm(q, axis=-1, keepdims=True) / np.sqrt(h)
    scores = np.einsum("btnh,bsnh->bnts", q, k)
    b, t = x.shape[:2]
    allowed = np.ones((b, 1, t, t), bool)
    if causal:
        allowed &= np.tril(np.ones((t, t), bool))
    if band is not None:
        allowed &= band
    if padding_mask is not None:
        allowed &= padding_mask[:, None, None, :]
    eye = np.eye(t, dtype=bool)
    others = allowed & ~eye
    mask = np.where(others.any(-1, keepdims=True), others, allowed)
    scores = np.where(mask, scores, -np.inf)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs = np.where(mask, probs, 0.0)
    probs = probs / np.maximum(probs.sum(-1, keepdims=True), 1e-30)
    out = np.einsum("bnts,bsnv->btnv", probs, v)
    return (
        np.einsum("btnv,nvd->btd", out, w["attention_output/kernel"])
        + w["attention_output/bias"]
    )


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("num_hashes", [1, 3])
def test_one_bucket_equals_dense_shared_qk(causal, num_hashes):
    # One bucket and one chunk: every position sees every position. With
    # several rounds the rounds are identical and their combination must
    # give back the same attention.
    x = _data()
    pad = _padding()
    layer = LSHAttention(
        num_heads=2, key_dim=4, num_hashes=num_hashes, bucket_size=8,
        num_buckets=1, seed=3,
    )
    out = layer(x, padding_mask=pad, use_causal_mask=causal)
    ref = _dense_shared_qk(layer, x, pad, causal=causal)
    np.testing.assert_allclose(ops.convert_to_numpy(out), ref, atol=1e-5, rtol=1e-5)


def test_chunks_attend_to_own_and_previous_chunk():
    # One bucket, chunks of 4 in position order, causal: position t sees
    # keys from the start of the previous chunk up to t.
    x = _data(t=12)
    layer = LSHAttention(
        num_heads=2, key_dim=4, bucket_size=4, num_buckets=1
    )
    out = layer(x, use_causal_mask=True)
    t = np.arange(12)
    chunk = t // 4
    band = (t[None, :] <= t[:, None]) & (chunk[None, :] >= chunk[:, None] - 1)
    ref = _dense_shared_qk(layer, x, causal=True, band=band)
    np.testing.assert_allclose(ops.convert_to_numpy(out), ref, atol=1e-5, rtol=1e-5)


def test_hashed_attention_matches_reference_with_same_buckets():
    # Several buckets and rounds: rebuild the buckets with the layer's own
    # rotations, then compute each round by hand (dense attention restricted
    # to the keys in the query's chunk and the previous chunk) and combine.
    x = _data(batch=1, t=16)
    layer = LSHAttention(
        num_heads=1, key_dim=4, num_hashes=2, bucket_size=4, num_buckets=4, seed=7
    )
    out = ops.convert_to_numpy(layer(x))
    w = {v.path.split("/", 1)[1]: ops.convert_to_numpy(v) for v in layer.weights}
    q = (np.einsum("btd,dnh->btnh", x, w["query/kernel"]) + w["query/bias"])[0, :, 0]
    v = (np.einsum("btd,dnh->btnh", x, w["value/kernel"]) + w["value/bias"])[0, :, 0]
    buckets = ops.convert_to_numpy(
        layer._hash(ops.convert_to_tensor(q[None, None]), 4)
    )[0, 0]  # (R, T)
    k = q / np.linalg.norm(q, axis=-1, keepdims=True) / 2.0
    # Sorted slots of all rounds, one after the other; chunks are cut from
    # this sequence and look back across the round boundary (as in the
    # reference implementations, trax and Hugging Face).
    orders = [np.lexsort((np.arange(16), buckets[r])) for r in range(2)]
    sorted_pos = np.concatenate(orders)
    outs, lses = [], []
    for r in range(2):
        slot = np.empty(16, int)
        slot[orders[r]] = np.arange(16)
        o = np.zeros((16, 4))
        lse = np.zeros(16)
        for i in range(16):
            c = (r * 16 + slot[i]) // 4
            keys = sorted_pos[[s for s in range(32) if s // 4 in (c, (c - 1) % 8)]]
            keys = [j for j in keys if j != i] or [i]
            s = q[i] @ k[keys].T
            lse[i] = np.log(np.exp(s - s.max()).sum()) + s.max()
            o[i] = np.exp(s - lse[i]) @ v[keys]
        outs.append(o)
        lses.append(lse)
    lses = np.stack(lses)
    weights = np.exp(lses - lses.max(0))
    weights /= weights.sum(0)
    att = (np.stack(outs) * weights[..., None]).sum(0)
    ref = np.einsum("tv,vd->td", att, w["attention_output/kernel"][0]) + w[
        "attention_output/bias"
    ]
    np.testing.assert_allclose(out[0], ref, atol=1e-5, rtol=1e-5)


def test_deterministic_and_padding_invariant():
    x = _data(t=8)
    pad = _padding(real=5)
    layer = LSHAttention(num_heads=2, key_dim=4, bucket_size=8, num_buckets=1)
    a = ops.convert_to_numpy(layer(x, padding_mask=pad))
    np.testing.assert_array_equal(a, ops.convert_to_numpy(layer(x, padding_mask=pad)))
    # Append 8 more padding tokens: the real positions do not change.
    x2 = np.concatenate([x, _data(t=8, seed=5)], axis=1)
    pad2 = np.concatenate([pad, np.zeros((2, 8), bool)], axis=1)
    layer2 = LSHAttention(num_heads=2, key_dim=4, bucket_size=16, num_buckets=1)
    layer2(x2, padding_mask=pad2)
    layer2.set_weights(layer.get_weights())
    b = ops.convert_to_numpy(layer2(x2, padding_mask=pad2))
    np.testing.assert_allclose(b[0, :8], a[0], atol=1e-5)
    np.testing.assert_allclose(b[1, :5], a[1, :5], atol=1e-5)


def test_harness_causal_with_padding():
    run_layer_test(
        LSHAttention,
        {
            "num_heads": 2, "key_dim": 4, "num_hashes": 2, "bucket_size": 4,
            "num_buckets": 2, "seed": 1,
            "redraw_rotations": True,  # the fit step draws new rotations
        },
        {"query": _data(), "padding_mask": _padding()},
        call_kwargs={"use_causal_mask": True},
        expected_output_shape=(2, 8, 8),
    )


def test_redrawn_rotations_change_each_training_call_not_inference():
    x = _data(t=32, dim=8)
    kwargs = {"num_heads": 2, "key_dim": 4, "num_hashes": 2, "bucket_size": 4,
              "num_buckets": 8, "seed": 3}
    redraw = LSHAttention(redraw_rotations=True, **kwargs)
    fixed = LSHAttention(**kwargs)
    redraw(x)
    fixed(x)
    fixed.set_weights(redraw.get_weights())
    # Inference: the fixed draw from `seed`, as without redrawing.
    want = ops.convert_to_numpy(fixed(x))
    np.testing.assert_array_equal(ops.convert_to_numpy(redraw(x)), want)
    # Training (no dropout): new rotations, so other buckets, at each call.
    first = ops.convert_to_numpy(redraw(x, training=True))
    second = ops.convert_to_numpy(redraw(x, training=True))
    assert not np.allclose(first, second, atol=1e-4)
    assert not np.allclose(second, want, atol=1e-4)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(fixed(x, training=True)), want
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_heads": 2, "key_dim": 4, "bucket_size": 0}, "bucket_size"),
        ({"num_heads": 2, "key_dim": 4, "num_hashes": 0}, "num_hashes"),
        ({"num_heads": 2, "key_dim": 4, "num_buckets": 3}, "num_buckets"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LSHAttention(**kwargs)


def test_bucket_size_must_divide_length():
    layer = LSHAttention(num_heads=2, key_dim=4, bucket_size=3)
    with pytest.raises(ValueError, match="bucket_size.*3"):
        layer(_data(t=8))
    layer = LSHAttention(num_heads=2, key_dim=4, bucket_size=4)
    with pytest.raises(ValueError, match="padding_mask"):
        layer(_data(t=8), padding_mask=np.ones((2, 7), bool))
