import os
import tempfile

import keras
import numpy as np
import pytest
from keras import ops

from kzoo.layers import MultiHeadAttention
from kzoo.layers.attention.bigbird_attention import BigBirdAttention
from tests.harness import run_layer_test
from tests.layers.attention.test_longformer_attention import _grads


def _data(batch=2, length=24, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(batch, length, dim)).astype("float32")


def _np(x):
    return np.asarray(ops.convert_to_numpy(ops.cast(x, "float32")))


def _pair(x, **kwargs):
    layer = BigBirdAttention(num_heads=2, key_dim=4, **kwargs)
    layer(x)
    dense = MultiHeadAttention(num_heads=2, key_dim=4)
    dense(x)
    dense.set_weights(layer.get_weights())
    return layer, dense


def _bias(pattern):
    """(N, T, T) pattern -> (1, N, T, T) additive bias for dense attention."""
    return np.where(pattern, 0.0, -1e9).astype("float32")[None]


# -- shared harness ------------------------------------------------------------


def test_harness_padding_and_fully_masked_row():
    x = _data()
    pad = np.ones((2, 24), bool)
    # Sequence 1 has real tokens in block 2 only: block 4's rows see the
    # global blocks 0 and 5 and the window 3..5, all padding -> zero rows.
    pad[1] = False
    pad[1, 8:12] = True
    out = run_layer_test(
        BigBirdAttention,
        {"num_heads": 2, "key_dim": 4, "block_size": 4, "num_random_blocks": 0},
        {"query": x, "padding_mask": pad},
        expected_output_shape=(2, 24, 8),
    )
    assert np.all(np.isfinite(_np(out)))


def test_harness_random_blocks_and_internal_padding():
    x = _data(length=22)  # not a multiple of block_size: padded inside
    pad = np.ones((2, 22), bool)
    pad[1, 17:] = False
    run_layer_test(
        BigBirdAttention,
        {
            "num_heads": 2,
            "key_dim": 4,
            "block_size": 3,
            "num_random_blocks": 2,
            "seed": 11,
            "value_dim": 3,
            "output_dim": 5,
        },
        {"query": x, "padding_mask": pad},
        expected_output_shape=(2, 22, 5),
    )


# -- equal to dense attention -------------------------------------------------


def test_blocks_covering_sequence_equal_dense():
    # 5 blocks, 1 global block at each end, window 3, 1 random block: every
    # middle block sees every block.
    x = _data(length=20)
    pad = np.ones((2, 20), bool)
    pad[1, 13:] = False
    layer, dense = _pair(x, block_size=4, num_random_blocks=1, seed=0)
    assert layer.attention_pattern(20).all()
    np.testing.assert_allclose(
        _np(layer(x, padding_mask=pad)), _np(dense(x, padding_mask=pad)), atol=1e-5
    )


@pytest.mark.parametrize(
    "length, block_size, random_blocks, global_blocks",
    [(30, 3, 2, 1), (40, 4, 3, 1), (20, 2, 1, 2), (23, 3, 1, 1)],
)
def test_equals_dense_under_its_block_mask(
    length, block_size, random_blocks, global_blocks
):
    x = _data(length=length)
    pad = np.ones((2, length), bool)
    pad[1, length - 5 :] = False
    layer, dense = _pair(
        x,
        block_size=block_size,
        num_random_blocks=random_blocks,
        num_global_blocks=global_blocks,
        seed=3,
    )
    pattern = layer.attention_pattern(length)  # (N, T, T)
    assert pattern.shape == (2, length, length)
    assert not pattern.all(), "the pattern should be sparse for this test"
    assert not np.array_equal(pattern[0], pattern[1]), "random blocks per head"
    got = layer(x, padding_mask=pad)
    want = dense(x, padding_mask=pad, attention_bias=_bias(pattern))
    np.testing.assert_allclose(_np(got), _np(want), atol=1e-5)
    got_grads = _grads(layer, x, padding_mask=pad)
    want_grads = _grads(dense, x, padding_mask=pad, attention_bias=_bias(pattern))
    assert len(got_grads) == 9
    for g, w in zip(got_grads, want_grads):
        np.testing.assert_allclose(g, w, atol=1e-5)


def test_pattern_structure_by_hand():
    layer = BigBirdAttention(num_heads=1, key_dim=2, block_size=1, num_random_blocks=1, seed=0)
    pattern = layer.attention_pattern(6)[0]
    # Blocks 0 and 5 global; middle block p sees p-1..p+1 and one random
    # block among the middle blocks farther than 1 away.
    assert pattern[[0, 5]].all() and pattern[:, [0, 5]].all()
    for p in range(1, 5):
        assert pattern[p, p - 1 : p + 2].all()
        far = [j for j in range(1, 5) if abs(j - p) > 1]
        assert pattern[p, far].sum() == min(1, len(far))
    # Rows 0 and 5: 6 keys each; rows 1..4: 4, 5, 5, 4 fixed keys + 1 random.
    assert pattern.sum() == 12 + (4 + 5 + 5 + 4) + 4


def test_random_pattern_same_after_config_and_keras_reload():
    x = _data(length=40)
    layer = BigBirdAttention(num_heads=2, key_dim=4, block_size=4, num_random_blocks=2, seed=5)
    inputs = keras.Input((40, 8), batch_size=2, name="query")
    model = keras.Model(inputs, layer(inputs))
    before = _np(model(x))
    revived = BigBirdAttention.from_config(layer.get_config())
    np.testing.assert_array_equal(revived.attention_pattern(40), layer.attention_pattern(40))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bigbird.keras")
        model.save(path)
        restored = keras.saving.load_model(path)
    np.testing.assert_allclose(_np(restored(x)), before, atol=1e-6)
    np.testing.assert_array_equal(
        restored.layers[-1].attention_pattern(40), layer.attention_pattern(40)
    )
    other = BigBirdAttention(num_heads=2, key_dim=4, block_size=4, num_random_blocks=2, seed=6)
    assert not np.array_equal(other.attention_pattern(40), layer.attention_pattern(40))


def test_seed_none_is_drawn_once_and_kept_in_config():
    layer = BigBirdAttention(num_heads=2, key_dim=4, block_size=4, num_random_blocks=2)
    seed = layer.get_config()["seed"]
    assert isinstance(seed, int)
    revived = BigBirdAttention.from_config(layer.get_config())
    np.testing.assert_array_equal(revived.attention_pattern(40), layer.attention_pattern(40))


def test_set_weights_from_keras_dense_layer():
    x = _data(length=12)
    ref = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)
    ref(x, x)
    layer = BigBirdAttention(num_heads=2, key_dim=4, block_size=4, num_random_blocks=1)
    layer(x)
    assert [w.path.split("/", 1)[1] for w in ref.weights] == [
        w.path.split("/", 1)[1] for w in layer.weights
    ]
    layer.set_weights(ref.get_weights())
    np.testing.assert_allclose(_np(layer(x)), _np(ref(x, x)), atol=1e-5)


# -- bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"block_size": 0}, "block_size"),
        ({"block_size": 4, "num_random_blocks": -1}, "num_random_blocks"),
        ({"block_size": 4, "num_global_blocks": 0}, "num_global_blocks"),
        ({"block_size": 4, "seed": -3}, "seed"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BigBirdAttention(num_heads=2, key_dim=4, **kwargs)


def test_bad_inputs():
    layer = BigBirdAttention(num_heads=2, key_dim=4, block_size=4)
    with pytest.raises(ValueError, match="sequence_length=8"):
        layer(_data(length=8))  # 2 blocks < 3 needed
    with pytest.raises(ValueError, match="sequence_length=3"):
        layer(_data(length=3))  # shorter than one block
    with pytest.raises(ValueError, match=r"padding_mask.*\(2, 24\)"):
        layer(_data(), padding_mask=np.ones((2, 23), bool))
    with pytest.raises(ValueError, match="attention_bias"):
        layer(_data(), attention_bias=np.zeros((1, 2, 24, 24), "float32"))
    with pytest.raises(ValueError, match="use_causal_mask"):
        layer(_data(), use_causal_mask=True)
