import numpy as np
import pytest
from keras import ops

from kzoo.models.transformer_xl import TransformerXLBlock
from kzoo.models.transformer_xl import TransformerXLLM
from tests.harness import run_layer_test
from tests.harness import run_model_test

SMALL = dict(vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=8,
             intermediate_dim=16, memory_length=16, dropout=0.0)


def _ids(t=12, seed=0):
    return np.random.default_rng(seed).integers(1, 40, size=(2, t)).astype("int32")


def _np(x):
    return ops.convert_to_numpy(x)


def _run(model, ids, memories):
    # Memories as they come back (tensors) beside NumPy ids: the model
    # converts the mixed dict.
    out = model({"token_ids": ids, "padding_mask": np.ones(ids.shape, bool),
                 "memories": memories})
    assert sorted(out) == ["logits", "memories"]
    return out["logits"], out["memories"]


def test_harness_with_memory_and_padding():
    ids = _ids(t=6)
    pad = np.ones((2, 6), bool)
    pad[1, 4:] = False
    mem = np.random.default_rng(1).normal(size=(2, 2, 4, 8)).astype("float32")
    run_model_test(
        TransformerXLLM,
        SMALL,
        {"token_ids": ids, "padding_mask": pad, "memories": mem},
        expected_output_shape=[(2, 6, 40), (2, 2, 10, 8)],
    )


def test_segments_with_long_memory_equal_one_full_pass():
    # With memory_length >= the whole text, segment-level recurrence sees
    # exactly the causal context of a single pass, in every layer.
    model = TransformerXLLM(**SMALL)
    ids = _ids(t=12)
    full, full_mem = _run(model, ids, model.initial_memories(2))
    mem, logits = model.initial_memories(2), []
    for start in range(0, 12, 4):
        out, mem = _run(model, ids[:, start : start + 4], mem)
        logits.append(_np(out))
    np.testing.assert_allclose(np.concatenate(logits, 1), _np(full), atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(_np(mem), _np(full_mem), atol=1e-5)
    assert _np(mem).shape == (2, 2, 12, 8)


def test_memory_is_truncated_and_changes_predictions():
    model = TransformerXLLM(**dict(SMALL, memory_length=4))
    ids = _ids(t=12)
    _, mem = _run(model, ids[:, :8], model.initial_memories(2))
    assert _np(mem).shape == (2, 2, 4, 8)
    with_mem, _ = _run(model, ids[:, 8:], mem)
    without, _ = _run(model, ids[:, 8:], model.initial_memories(2))
    assert np.abs(_np(with_mem) - _np(without)).max() > 1e-3
    # The memory of layer 0 is the last 4 token embeddings.
    emb = _np(model.token_embedding.embeddings)[ids[:, 4:8]]
    np.testing.assert_allclose(_np(mem)[:, 0], emb, atol=1e-6)


def test_generate_carries_memory_and_equals_full_greedy_decoding():
    model = TransformerXLLM(**dict(SMALL, memory_length=32))
    prompt = _ids(t=5)
    got = model.generate(prompt, max_length=9, segment_length=2)
    ids = prompt
    for _ in range(4):
        logits, _ = _run(model, ids, model.initial_memories(2))
        ids = np.concatenate([ids, np.argmax(_np(logits)[:, -1], -1)[:, None]], 1)
    np.testing.assert_array_equal(got, ids)


def test_block_harness():
    x = np.random.default_rng(0).normal(size=(2, 6, 8)).astype("float32")
    mem = np.random.default_rng(1).normal(size=(2, 3, 8)).astype("float32")
    pad = np.ones((2, 6), bool)
    pad[1, 5:] = False
    run_layer_test(
        TransformerXLBlock,
        {"num_heads": 2, "intermediate_dim": 16, "dropout": 0.1, "seed": 3},
        {"inputs": x, "memory": mem, "padding_mask": pad},
        expected_output_shape=(2, 6, 8),
    )


def test_bad_inputs():
    with pytest.raises(ValueError, match="memory_length"):
        TransformerXLLM(**dict(SMALL, memory_length=0))
    model = TransformerXLLM(**dict(SMALL, memory_length=4))
    ids = _ids(t=4)
    with pytest.raises(ValueError, match="memories"):
        _run(model, ids, np.zeros((2, 3, 2, 8), "float32"))
    with pytest.raises(ValueError, match="memory_length=4 positions; received 5"):
        _run(model, ids, np.zeros((2, 2, 5, 8), "float32"))
    with pytest.raises(ValueError, match="memories"):
        model({"token_ids": ids, "padding_mask": np.ones((2, 4), bool)})


def test_block_stops_the_gradient_into_memory():
    # SG(m) of the paper: the block cuts the memory's gradient; the segment's
    # own input still gets one.
    import keras

    x = np.random.default_rng(0).normal(size=(2, 4, 8)).astype("float32")
    mem = np.random.default_rng(2).normal(size=(2, 3, 8)).astype("float32")
    block = TransformerXLBlock(num_heads=2, intermediate_dim=16)
    block(x, memory=mem)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        m, xt = tf.constant(mem), tf.constant(x)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([m, xt])
            y = tf.reduce_sum(block(xt, memory=m))
        g_mem = tape.gradient(y, m, unconnected_gradients="zero")
        g_x = tape.gradient(y, xt)
    else:
        import jax

        g_mem = jax.grad(lambda m: block(x, memory=m).sum())(mem)
        g_x = jax.grad(lambda v: block(v, memory=mem).sum())(x)
    assert np.all(np.asarray(g_mem) == 0)
    assert np.any(np.asarray(g_x) != 0)


def test_fit_with_a_loss_on_logits_only_and_memories_fed_back():
    import keras

    keras.utils.set_random_seed(0)
    model = TransformerXLLM(**dict(SMALL, memory_length=4))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss={
        "logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)})
    ids = _ids(t=9)
    inputs, labels = ids[:, :-1], ids[:, 1:]
    memories = model.initial_memories(2)
    first = None
    for _ in range(5):
        for start in (0, 4):
            x = {"token_ids": inputs[:, start:start + 4],
                 "padding_mask": np.ones((2, 4), bool), "memories": memories}
            loss = model.train_on_batch(x, {"logits": labels[:, start:start + 4]})
            first = loss if first is None else first
            memories = model(x)["memories"]  # a tensor, fed back as is
    assert np.isfinite(loss) and loss < first
