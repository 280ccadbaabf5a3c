import keras
import keras_hub
import numpy as np
import pytest
from keras import ops

from kzoo import TransformerSeq2Seq
from tests.harness import run_model_test

CONFIG = {
    "vocabulary_size": 20,
    "num_layers": 2,
    "num_heads": 2,
    "hidden_dim": 8,
    "intermediate_dim": 16,
    "max_sequence_length": 12,
    "dropout": 0.0,
    "decoder_vocabulary_size": 15,
}


def _inputs(batch=3, s=7, t=5, seed=0):
    rng = np.random.default_rng(seed)
    emask = np.ones((batch, s), bool)
    emask[1, 4:] = False
    emask[2, :] = False  # fully padded source: cross-attention sees nothing
    dmask = np.ones((batch, t), bool)
    dmask[1, 3:] = False
    return {
        "encoder_token_ids": rng.integers(1, 20, (batch, s)).astype("int32"),
        "encoder_padding_mask": emask,
        "decoder_token_ids": rng.integers(1, 15, (batch, t)).astype("int32"),
        "decoder_padding_mask": dmask,
    }


def _np(x):
    return ops.convert_to_numpy(x)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_harness(normalize_first):
    out = run_model_test(
        TransformerSeq2Seq, {**CONFIG, "normalize_first": normalize_first}, _inputs(),
        expected_output_shape=(3, 5, 15),
    )
    assert keras.backend.standardize_dtype(out.dtype) == "float32"


@pytest.mark.parametrize("position_encoding", ["sinusoidal", "learned", "rotary", "alibi", "t5"])
def test_cached_decoding_equals_full_forward_pass(position_encoding):
    model = TransformerSeq2Seq(**CONFIG, position_encoding=position_encoding)
    data = _inputs()
    data["decoder_padding_mask"][:] = True
    full = _np(model(data))
    encoded = model.encode(data["encoder_token_ids"], data["encoder_padding_mask"])
    cross = model.cross_attention_cache(encoded)
    cache = model.empty_cache(3, 5)
    steps = []
    for i in range(5):
        logits, cache = model.call_with_cache(
            data["decoder_token_ids"][:, i : i + 1], data["encoder_padding_mask"], cache, cross, i
        )
        steps.append(_np(logits))
    np.testing.assert_allclose(np.concatenate(steps, 1), full, atol=1e-5, rtol=1e-5)


def _naive_greedy(model, enc_ids, enc_mask, start, length):
    dec = [start]
    while len(dec) < length:
        d = np.array([dec], "int32")
        logits = _np(model({
            "encoder_token_ids": enc_ids[None], "encoder_padding_mask": enc_mask[None],
            "decoder_token_ids": d, "decoder_padding_mask": np.ones_like(d, bool),
        }))
        dec.append(int(np.argmax(logits[0, -1])))
    return dec


def test_greedy_equals_naive_loop_compiled_once_beam1_equals_greedy():
    model = TransformerSeq2Seq(**CONFIG)
    data = _inputs()
    enc = {k: data[k][:2] for k in ("encoder_token_ids", "encoder_padding_mask")}
    out = model.generate(enc, max_length=6, start_token_id=1)
    assert out.shape == (2, 6) and np.all(out[:, 0] == 1)
    for row in range(2):
        assert out[row].tolist() == _naive_greedy(
            model, enc["encoder_token_ids"][row], enc["encoder_padding_mask"][row], 1, 6
        )
    assert model.generate_trace_count == 1
    model.generate(enc, max_length=6, start_token_id=1)
    assert model.generate_trace_count == 1  # reused, not retraced
    beam = model.generate(
        enc, max_length=6, start_token_id=1, sampler=keras_hub.samplers.BeamSampler(num_beams=1)
    )
    np.testing.assert_array_equal(beam, out)
    beam3 = model.generate(enc, max_length=6, start_token_id=1, sampler="beam")
    assert beam3.shape == (2, 6)
    topk = model.generate(enc, max_length=6, start_token_id=1, sampler="top_k")
    assert topk.shape == (2, 6) and topk.min() >= 0 and topk.max() < 15


def test_end_token_pads_after_it():
    model = TransformerSeq2Seq(**CONFIG)
    data = _inputs()
    enc = {k: data[k][:1] for k in ("encoder_token_ids", "encoder_padding_mask")}
    free = model.generate(enc, max_length=8, start_token_id=1)
    end = int(free[0, 2])
    first = int(np.argmax(free[0, 1:] == end)) + 1
    out = model.generate(enc, max_length=8, start_token_id=1, stop_token_ids=(end,))
    np.testing.assert_array_equal(out[0, : first + 1], free[0, : first + 1])
    assert np.all(out[0, first + 1 :] == 0)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"hidden_dim": 10, "num_heads": 4}, r"hidden_dim.*10.*num_heads.*4"),
     ({"decoder_vocabulary_size": 0}, "decoder_vocabulary_size"),
     ({"vocabulary_size": 2.5}, "vocabulary_size")],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TransformerSeq2Seq(**{**CONFIG, **kwargs})


def test_bad_inputs():
    model = TransformerSeq2Seq(**CONFIG)
    data = _inputs()
    with pytest.raises(ValueError, match="decoder_token_ids.*float"):
        model({**data, "decoder_token_ids": data["decoder_token_ids"].astype("float32")})
    with pytest.raises(ValueError, match=r"encoder_padding_mask.*\(3, 7\)"):
        model({**data, "encoder_padding_mask": data["encoder_padding_mask"][:, :3]})
    enc = {k: data[k] for k in ("encoder_token_ids", "encoder_padding_mask")}
    with pytest.raises(ValueError, match="max_length"):
        model.generate(enc, max_length=0, start_token_id=1)
