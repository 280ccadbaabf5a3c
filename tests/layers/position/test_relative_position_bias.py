import math

import numpy as np
import pytest
from keras import ops

from kzoo.layers import RelativePositionBias
from tests.harness import run_layer_test


def _t5_bucket(relative_position, bidirectional=True, num_buckets=32, max_distance=128):
    """T5's `_relative_position_bucket` (mesh_tensorflow), ported to numpy."""
    ret = 0
    n = -relative_position
    if bidirectional:
        num_buckets //= 2
        ret += (n < 0).astype(np.int32) * num_buckets
        n = np.abs(n)
    else:
        n = np.maximum(n, 0)
    max_exact = num_buckets // 2
    is_small = n < max_exact
    val_if_large = max_exact + (
        np.log(np.maximum(n, 1).astype(np.float32) / max_exact)
        / math.log(max_distance / max_exact)
        * (num_buckets - max_exact)
    ).astype(np.int32)
    val_if_large = np.minimum(val_if_large, num_buckets - 1)
    return ret + np.where(is_small, n, val_if_large)


def _x(t, seed=0):
    return np.random.default_rng(seed).normal(size=(2, t, 8)).astype("float32")


@pytest.mark.parametrize("bidirectional", [True, False])
def test_harness_and_bucket_lookup(bidirectional):
    kwargs = {"num_heads": 3, "num_buckets": 8, "max_distance": 12, "bidirectional": bidirectional}
    out = run_layer_test(
        RelativePositionBias,
        kwargs,
        {"query": _x(16)},
        expected_output_shape=(1, 3, 16, 16),
        # The harness's fit step needs outputs with the inputs' batch size;
        # the bias is (1, N, T, S). Training is checked below instead.
        run_training=False,
    )
    layer = RelativePositionBias(**kwargs)
    out = ops.convert_to_numpy(layer(_x(16)))
    table = ops.convert_to_numpy(layer.embeddings)  # (K, N)
    pos = np.arange(16)
    buckets = _t5_bucket(pos[None, :] - pos[:, None], bidirectional, 8, 12)
    np.testing.assert_allclose(out[0], np.transpose(table[buckets], (2, 0, 1)))


def test_bias_trains_inside_attention():
    """Gradients reach the bucket table when the bias feeds attention."""
    import keras

    from kzoo.layers import MultiHeadAttention

    x = keras.Input((6, 8))
    bias = RelativePositionBias(2, num_buckets=8, max_distance=16)
    out = MultiHeadAttention(2, 4)(x, attention_bias=bias(x))
    model = keras.Model(x, out)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse", jit_compile=True)
    before = ops.convert_to_numpy(bias.embeddings).copy()
    model.fit(_x(6), np.ones((2, 6, 8), "float32"), epochs=1, verbose=0)
    assert not np.allclose(before, ops.convert_to_numpy(bias.embeddings))


@pytest.mark.parametrize("bidirectional", [True, False])
def test_buckets_match_t5_over_long_range(bidirectional):
    from kzoo.layers.position.relative_position_bias import relative_position_bucket

    relative = np.arange(-300, 301, dtype=np.int32)
    ours = ops.convert_to_numpy(
        relative_position_bucket(ops.convert_to_tensor(relative), bidirectional, 32, 128)
    )
    np.testing.assert_array_equal(ours, _t5_bucket(relative, bidirectional, 32, 128))
    # Spot checks written out by hand (bidirectional, 32 buckets, 128 max).
    if bidirectional:
        table = dict(zip(relative.tolist(), ours.tolist()))
        assert table[0] == 0 and table[-1] == 1 and table[-7] == 7
        assert table[1] == 17 and table[-300] == 15 and table[300] == 31


def test_query_offset_for_decoding():
    layer = RelativePositionBias(2, num_buckets=8, max_distance=16, bidirectional=False)
    full = ops.convert_to_numpy(layer(_x(6)))
    step = ops.convert_to_numpy(layer(_x(1), _x(6), query_offset=4))
    np.testing.assert_allclose(step[:, :, 0], full[:, :, 4])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_heads": 0}, "num_heads"),
        ({"num_heads": 2, "num_buckets": -1}, "num_buckets"),
        ({"num_heads": 2, "num_buckets": 2}, "num_buckets"),
        ({"num_heads": 2, "max_distance": 0}, "max_distance"),
        ({"num_heads": 2, "num_buckets": 32, "max_distance": 8}, "max_distance"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RelativePositionBias(**kwargs)
