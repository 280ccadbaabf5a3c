import keras
import numpy as np
import pytest
from keras import ops

from kzoo import GRUTranslator
from kzoo.models.generation import BeamSampler
from tests.harness import run_model_test

ATTENTIONS = ("bahdanau", "luong_dot", "luong_general")
START, END = 1, 2


def _inputs(batch=2, s=6, t=5, vocab=20, seed=0):
    rng = np.random.default_rng(seed)
    enc = rng.integers(3, vocab, size=(batch, s)).astype("int32")
    dec = rng.integers(3, vocab, size=(batch, t)).astype("int32")
    dec[:, 0] = START
    enc_mask = np.ones((batch, s), bool)
    enc_mask[-1, 4:] = False
    dec_mask = np.ones((batch, t), bool)
    dec_mask[0, 3:] = False
    enc[~enc_mask] = 0
    dec[~dec_mask] = 0
    return {
        "encoder_token_ids": enc,
        "encoder_padding_mask": enc_mask,
        "decoder_token_ids": dec,
        "decoder_padding_mask": dec_mask,
    }


def _generate(model, ids, mask, length, end=END, **kwargs):
    """`length` generated tokens: `generate`'s output without its first
    column, the start token."""
    out = model.generate(
        {"encoder_token_ids": ids, "encoder_padding_mask": mask}, max_length=length + 1,
        start_token_id=START, stop_token_ids=(end,), **kwargs,
    )
    assert isinstance(out, np.ndarray) and out.dtype == np.int32
    assert np.all(out[:, 0] == START)
    return out[:, 1:]


def _model(attention="bahdanau", cell="gru", layers=1, target_vocab=20, seed=3):
    keras.utils.set_random_seed(seed)
    return GRUTranslator(
        source_vocabulary_size=20,
        target_vocabulary_size=target_vocab,
        embedding_dim=8,
        hidden_dim=12,
        num_encoder_layers=layers,
        attention=attention,
        cell=cell,
    )


@pytest.mark.parametrize(
    "attention, cell, layers", [("bahdanau", "gru", 1), ("luong_general", "lstm", 2)]
)
def test_harness(attention, cell, layers):
    run_model_test(
        GRUTranslator,
        {
            "source_vocabulary_size": 20,
            "target_vocabulary_size": 20,
            "embedding_dim": 8,
            "hidden_dim": 8,
            "num_encoder_layers": layers,
            "attention": attention,
            "cell": cell,
            "dropout": 0.1,
        },
        _inputs(),
        expected_output_shape=(2, 5, 20),
    )


def _stepped_log_probs(model, x):
    """Feeds decoder_token_ids one at a time through `_decode_step`."""
    memory, mask, state = model._encode(
        x["encoder_token_ids"], x["encoder_padding_mask"], False
    )
    projected = model.decoder.project_memory(memory)
    steps = []
    for t in range(x["decoder_token_ids"].shape[1]):
        log_probs, state = model._decode_step(
            ops.convert_to_tensor(x["decoder_token_ids"][:, t]),
            state, memory, projected, mask,
        )
        steps.append(ops.convert_to_numpy(log_probs))
    return np.stack(steps, 1)  # (B, T, V)


@pytest.mark.parametrize(
    "attention, cell", [(a, c) for a in ATTENTIONS for c in ("gru", "lstm")]
)
def test_decoder_stepped_by_hand_equals_teacher_forced_pass(attention, cell):
    model = _model(attention, cell, layers=2)
    x = _inputs()
    logits = ops.convert_to_numpy(model(x))
    full = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    stepped = _stepped_log_probs(model, x)
    real = x["decoder_padding_mask"]
    # Teacher forcing does not mask id 0; compare the other ids.
    np.testing.assert_allclose(stepped[real][:, 1:], full[real][:, 1:], atol=1e-5)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_right_padding_does_not_change_real_positions(attention):
    model = _model(attention, "lstm")
    x = _inputs()
    base = ops.convert_to_numpy(model(x))
    rng = np.random.default_rng(9)
    padded = {}
    for side, extra in (("encoder", 3), ("decoder", 2)):
        ids = x[f"{side}_token_ids"]
        mask = x[f"{side}_padding_mask"]
        padded[f"{side}_token_ids"] = np.concatenate(
            [ids, rng.integers(3, 20, size=(2, extra)).astype("int32")], 1
        )  # garbage ids under the mask
        padded[f"{side}_padding_mask"] = np.concatenate(
            [mask, np.zeros((2, extra), bool)], 1
        )
    longer = ops.convert_to_numpy(model(padded))
    real = x["decoder_padding_mask"]
    np.testing.assert_allclose(longer[:, :5][real], base[real], atol=1e-5)
    # Generation does not see the source padding either.
    np.testing.assert_array_equal(
        _generate(model, x["encoder_token_ids"], x["encoder_padding_mask"], 6),
        _generate(model, padded["encoder_token_ids"], padded["encoder_padding_mask"], 6),
    )


def _greedy_reference(model, ids, mask, max_length, end):
    """Greedy decoding stepped eagerly in Python."""
    memory, m, state = model._encode(ids, mask, False)
    projected = model.decoder.project_memory(memory)
    prev = np.full((ids.shape[0],), START, "int32")
    done = np.zeros(ids.shape[0], bool)
    out = np.zeros((ids.shape[0], max_length), "int32")
    for i in range(max_length):
        log_probs, state = model._decode_step(
            ops.convert_to_tensor(prev), state, memory, projected, m
        )
        nxt = np.where(done, 0, ops.convert_to_numpy(log_probs).argmax(-1))
        out[:, i] = nxt
        done |= nxt == end
        prev = nxt.astype("int32")
    return out


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_greedy_equals_python_loop_and_beam_of_one(attention):
    model = _model(attention, "gru")
    x = _inputs()
    ids, mask = x["encoder_token_ids"], x["encoder_padding_mask"]
    first = _generate(model, ids, mask, 7)
    # Use as end token the first token greedy emits that it did not emit
    # before, so that the padding after the end is exercised.
    fresh = [
        j for j in range(1, 7) if first[0, j] not in first[0, :j] and first[0, j]
    ]
    j = fresh[0] if fresh else 0
    end = int(first[0, j])
    greedy = _generate(model, ids, mask, 7, end)
    np.testing.assert_array_equal(greedy, _greedy_reference(model, ids, mask, 7, end))
    assert greedy[0, j] == end and np.all(greedy[0, j + 1 :] == 0)
    beam1 = _generate(model, ids, mask, 7, end, sampler=BeamSampler(num_beams=1))
    np.testing.assert_array_equal(beam1, greedy)


def _exhaustive_best(model, ids, mask, max_length, end, alpha):
    """The best sequence by GNMT-normalised log-probability, by enumeration."""
    vocab = model.target_vocabulary_size
    memory, m, state = model._encode(ids, mask, False)
    projected = model.decoder.project_memory(memory)
    best = (-np.inf, None)

    def visit(prefix, state, total):
        nonlocal best
        if len(prefix) == max_length or (prefix and prefix[-1] == end):
            score = total / ((5.0 + len(prefix)) / 6.0) ** alpha
            if score > best[0]:
                best = (score, prefix + [0] * (max_length - len(prefix)))
            return
        prev = prefix[-1] if prefix else START
        log_probs, new_state = model._decode_step(
            ops.convert_to_tensor([prev], "int32"), state, memory, projected, m
        )
        log_probs = ops.convert_to_numpy(log_probs)[0]
        for token in range(1, vocab):  # id 0 (padding) is never generated
            visit(prefix + [token], new_state, total + log_probs[token])

    visit([], state, 0.0)
    return best[1]


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_wide_beam_finds_the_exhaustive_best_with_length_penalty(alpha):
    # 3 generable ids (1, 2=end, 3), 3 steps: a beam of 9 keeps every prefix.
    model = _model("luong_general", "gru", target_vocab=4, seed=11)
    x = _inputs(batch=1)
    ids, mask = x["encoder_token_ids"], x["encoder_padding_mask"]
    beam = _generate(model, ids, mask, 3, sampler=BeamSampler(9, length_penalty=alpha))
    expected = _exhaustive_best(model, ids, mask, 3, END, alpha)
    np.testing.assert_array_equal(beam[0], expected)


def test_beam_search_output_format():
    model = _model("bahdanau", "lstm")
    x = _inputs()
    out = _generate(model, x["encoder_token_ids"], x["encoder_padding_mask"], 6,
                    sampler=BeamSampler(3))
    assert out.shape == (2, 6) and out.dtype == np.int32
    for row in out:
        ends = np.flatnonzero(row == END)
        if len(ends):
            assert np.all(row[ends[0] + 1 :] == 0)
        zeros = np.flatnonzero(row == 0)
        if len(zeros):
            assert row[zeros[0] - 1] == END


def test_generate_traces_once_per_input_shape():
    model = _model("bahdanau", "gru")
    x = _inputs()
    ids, mask = x["encoder_token_ids"], x["encoder_padding_mask"]
    a = _generate(model, ids, mask, 5, sampler=BeamSampler(2))
    b = _generate(model, ids + 0, mask, 5, sampler=BeamSampler(2))  # an equal sampler
    assert model.generate_trace_count == 1
    np.testing.assert_array_equal(a, b)
    _generate(model, ids[:1], mask[:1], 5, sampler=BeamSampler(2))
    assert model.generate_trace_count == 2
    _generate(model, ids, mask, 5, sampler=BeamSampler(2))
    assert model.generate_trace_count == 2


def test_attention_weights_for_heat_maps():
    model = _model("luong_dot", "gru")
    x = _inputs()
    weights = ops.convert_to_numpy(model.attention_weights(x))
    assert weights.shape == (2, 5, 6)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert np.all(weights[1, :, 4:] == 0.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"attention": "luong_concat"}, "attention"),
        ({"cell": "simple_rnn"}, "cell"),
        ({"hidden_dim": 0}, "hidden_dim"),
        ({"embedding_dim": -2}, "embedding_dim"),
        ({"source_vocabulary_size": 0}, "source_vocabulary_size"),
        ({"target_vocabulary_size": 1.5}, "target_vocabulary_size"),
        ({"num_encoder_layers": 0}, "num_encoder_layers"),
        ({"dropout": 1.0}, "dropout"),
        ({"use_cudnn": "always"}, "use_cudnn"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    args = dict(
        source_vocabulary_size=20, target_vocabulary_size=20, embedding_dim=8,
        hidden_dim=8,
    )
    with pytest.raises(ValueError, match=message):
        GRUTranslator(**{**args, **kwargs})


def test_bad_inputs():
    model = _model()
    x = _inputs()
    with pytest.raises(ValueError, match="encoder_token_ids"):
        model({**x, "encoder_token_ids": x["encoder_token_ids"].astype("float32")})
    with pytest.raises(ValueError, match="decoder_token_ids"):
        model({**x, "decoder_token_ids": x["decoder_token_ids"].astype("float32")})
    ids, mask = x["encoder_token_ids"], x["encoder_padding_mask"]
    with pytest.raises(ValueError, match="encoder_token_ids"):
        _generate(model, ids.astype("float32"), mask, 5)
    with pytest.raises(ValueError, match="num_beams"):
        _generate(model, ids, mask, 5, sampler=BeamSampler(num_beams=0))
    with pytest.raises(ValueError, match="max_length"):
        _generate(model, ids, mask, -1)
    with pytest.raises(ValueError, match="length_penalty"):
        _generate(model, ids, mask, 5, sampler=BeamSampler(2, length_penalty=-1))
    with pytest.raises(ValueError, match="inputs.*dict"):
        model.generate(ids, max_length=5)


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="tf.data with dynamic shapes"
)
@pytest.mark.parametrize("attention", ["bahdanau", "luong_general"])
def test_jit_fit_on_bucketed_batches_of_unknown_shape(attention):
    # The recipe feeds (None, None) batches; XLA must compile the decoder's
    # loop and its gradient without shape-dependent run-time permutations.
    import tensorflow as tf

    rng = np.random.default_rng(0)

    def pairs():
        for _ in range(12):
            s = rng.integers(3, 20, rng.integers(2, 9)).astype("int32")
            t = np.concatenate([[START], s[::-1]]).astype("int32")
            x = {
                "encoder_token_ids": s,
                "encoder_padding_mask": s > 0,
                "decoder_token_ids": t,
                "decoder_padding_mask": t > 0,
            }
            yield x, np.concatenate([s[::-1], [END]]).astype("int32")

    spec = tf.TensorSpec((None,), tf.int32)
    mask_spec = tf.TensorSpec((None,), tf.bool)
    signature = (
        {
            "encoder_token_ids": spec,
            "encoder_padding_mask": mask_spec,
            "decoder_token_ids": spec,
            "decoder_padding_mask": mask_spec,
        },
        spec,
    )
    data = tf.data.Dataset.from_generator(pairs, output_signature=signature)
    model = _model(attention)
    before = [w.numpy() for w in model.trainable_weights]
    model.compile(
        "adam",
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    loss = model.fit(data.padded_batch(4), epochs=1, verbose=0).history["loss"]
    assert np.isfinite(loss[0])
    moved = [
        not np.allclose(a, w.numpy()) for a, w in zip(before, model.trainable_weights)
    ]
    assert all(moved)
