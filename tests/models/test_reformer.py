import keras
import numpy as np
import pytest
from keras import ops

from kzoo.models.reformer import ReformerLM
from tests.harness import run_model_test

SMALL = dict(vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=8,
             intermediate_dim=16, axial_shape=(4, 4), num_hashes=2,
             bucket_size=4, feed_forward_chunk_size=4, seed=1)


def _inputs(t=8, seed=0):
    ids = np.random.default_rng(seed).integers(1, 40, size=(2, t)).astype("int32")
    pad = np.ones((2, t), bool)
    pad[1, 6:] = False
    ids[1, 6:] = 0
    return {"token_ids": ids, "padding_mask": pad}


def _np(x):
    return ops.convert_to_numpy(x)


def test_harness_with_padding_no_hashing():
    # Mixed-precision numbers are checked without hashing: a bucket is an
    # argmax, so float16 rounding can flip the bucket of a near-tie position
    # and change which keys its query sees (a legitimate, discontinuous
    # difference; on JAX it reached 0.19 in the logits). One bucket keeps the
    # chunked, look-back, causal, reversible path. Hashing is checked in
    # float32 below and in test_lsh_attention.py.
    run_model_test(
        ReformerLM, dict(SMALL, num_buckets=1), _inputs(), expected_output_shape=(2, 8, 40)
    )


def test_harness_with_hashing_float32():
    # With dropout and rotations redrawn each step: the harness's fit step
    # runs them under jit_compile (inference is deterministic).
    run_model_test(
        ReformerLM, dict(SMALL, dropout=0.1, redraw_rotations=True), _inputs(),
        expected_output_shape=(2, 8, 40), run_precision=False,
    )


def test_forward_equals_hand_composition():
    # One block, by hand: x = tok + pos; y1 = x + LSH(LN(x));
    # y2 = x + FF(LN(y1)); logits = Dense(LN([y1, y2])).
    model = ReformerLM(**dict(SMALL, num_layers=1))
    x = _inputs()
    got = _np(model(x))
    h = model.token_embedding(x["token_ids"])
    h = h + model.position_embedding(h)
    block = model.reversible_encoder.blocks[0]
    y1 = h + block.f.inner(
        block.f.layer_norm(h), padding_mask=x["padding_mask"], use_causal_mask=True
    )
    y2 = h + block.g.inner(block.g.layer_norm(y1))
    want = model.lm_head(model.final_layer_norm(ops.concatenate([y1, y2], -1)))
    np.testing.assert_allclose(got, _np(want), atol=1e-5, rtol=1e-5)


def test_memory_saving_training_step_equals_plain_autodiff():
    x = _inputs()
    target = np.random.default_rng(3).integers(0, 40, size=(2, 8))
    models = [ReformerLM(**dict(SMALL, memory_saving=m)) for m in (True, False)]
    models[1].set_weights(models[0].get_weights())
    for m in models:
        m.compile(
            optimizer=keras.optimizers.SGD(learning_rate=1.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        m.train_on_batch(x, target)
    before = ReformerLM(**SMALL)
    moved = False
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)
    # The step did move the weights (so equality is not trivial).
    for a, b in zip(models[0].get_weights(), before.get_weights()):
        moved |= not np.allclose(a, b)
    assert moved


def test_dropout_memory_saving_replays_the_masks():
    """With dropout and rotations redrawn at each step, the memory-saving
    model's training step equals plain autodiff's (the recomputation replays
    the forward pass's masks and rotations), and both are active in
    training."""
    config = dict(SMALL, dropout=0.3, redraw_rotations=True)
    x = _inputs()
    target = np.random.default_rng(3).integers(0, 40, size=(2, 8))
    models = [ReformerLM(**dict(config, memory_saving=m)) for m in (True, False)]
    models[1].set_weights(models[0].get_weights())
    for m in models:
        # LSH rotations and probabilities, attention branch, feed-forward
        # branch: one seed state each.
        assert len(m.non_trainable_variables) == 4 * SMALL["num_layers"]
        for v, w in zip(m.non_trainable_variables, models[0].non_trainable_variables):
            np.testing.assert_array_equal(_np(v.value), _np(w.value))
    inference = _np(models[0](x))
    noisy = [_np(m(x, training=True)) for m in models]  # both seeds advance
    np.testing.assert_allclose(noisy[0], noisy[1], atol=1e-5)
    assert not np.allclose(noisy[0], inference, atol=1e-4)
    for m in models:
        m.compile(
            optimizer=keras.optimizers.SGD(learning_rate=1.0),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
    losses = [m.train_on_batch(x, target) for m in models]
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    for a, b in zip(models[0].get_weights(), models[1].get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)


def test_causal_without_hashing():
    # With one bucket (positions sorted in order), logits at t depend only
    # on tokens <= t.
    model = ReformerLM(**dict(SMALL, num_buckets=1))
    x = _inputs()
    a = _np(model(x))
    x2 = {k: v.copy() for k, v in x.items()}
    x2["token_ids"][0, 5:] = (x2["token_ids"][0, 5:] + 3) % 40
    b = _np(model(x2))
    np.testing.assert_allclose(b[0, :5], a[0, :5], atol=1e-5)
    assert np.abs(b[0, 5:] - a[0, 5:]).max() > 1e-4


def test_bad_inputs():
    model = ReformerLM(**SMALL)
    with pytest.raises(ValueError, match="bucket_size=4"):
        model(_inputs(t=6))
    with pytest.raises(ValueError, match="at most d1 \\* d2 = 16"):
        model(_inputs(t=20))
    with pytest.raises(ValueError, match="num_heads"):
        ReformerLM(**dict(SMALL, num_heads=3))
