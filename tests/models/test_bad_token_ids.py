"""Token ids outside [0, vocabulary_size): a named error on eager calls and in
`generate`; NaN outputs under tracing and XLA (`predict` with
`jit_compile=True`), never the finite garbage of a clamped or wrapped gather.
Both backends."""

import keras
import numpy as np
import pytest

from kzoo import GRUTranslator, TransformerEncoder, TransformerLM, TransformerSeq2Seq

V = 30
GOOD = np.array([[5, 6, 7, 8], [3, 4, 5, 6]], "int32")


def _with(bad_id):
    ids = GOOD.copy()
    ids[1, 2] = bad_id
    return ids


def _encoder():
    model = TransformerEncoder(V, num_layers=1, num_heads=2, hidden_dim=8,
                               intermediate_dim=16, max_sequence_length=8)
    return model, lambda ids: {"token_ids": ids, "padding_mask": np.ones(ids.shape, bool)}, "token_ids"


def _lm():
    model = TransformerLM(V, num_layers=1, num_heads=2, hidden_dim=8,
                          intermediate_dim=16, max_sequence_length=8)
    return model, lambda ids: {"token_ids": ids, "padding_mask": np.ones(ids.shape, bool)}, "token_ids"


def _seq2seq_inputs(ids):
    return {"encoder_token_ids": ids, "encoder_padding_mask": np.ones(ids.shape, bool),
            "decoder_token_ids": GOOD, "decoder_padding_mask": GOOD > 0}


def _seq2seq():
    model = TransformerSeq2Seq(V, num_layers=1, num_heads=2, hidden_dim=8,
                               intermediate_dim=16, max_sequence_length=8)
    return model, _seq2seq_inputs, "encoder_token_ids"


def _gru():
    return GRUTranslator(V, V, embedding_dim=8, hidden_dim=8), _seq2seq_inputs, "encoder_token_ids"


MODELS = [_encoder, _lm, _seq2seq, _gru]


@pytest.fixture(scope="module", params=MODELS, ids=["encoder", "lm", "seq2seq", "gru"])
def built(request):
    keras.utils.set_random_seed(0)
    return request.param()


@pytest.mark.parametrize("bad_id", [-1, V])
def test_eager_call_names_the_input_the_id_and_the_range(built, bad_id):
    model, inputs, name = built
    with pytest.raises(ValueError, match=rf"`{name}` must hold ids in \[0, {V}\).*"
                                         rf"received {bad_id} at index \(1, 2\)"):
        model(inputs(_with(bad_id)))


@pytest.mark.parametrize("bad_id", [-1, V])
def test_under_xla_the_bad_example_is_nan_and_the_good_one_unchanged(built, bad_id):
    model, inputs, _ = built
    model.compile(jit_compile=True)
    good = np.asarray(model.predict(inputs(GOOD), verbose=0))
    out = np.asarray(model.predict(inputs(_with(bad_id)), verbose=0))
    assert np.isnan(out[1]).any()  # the example with the bad id
    np.testing.assert_allclose(out[0], good[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [_lm, _seq2seq, _gru], ids=["lm", "seq2seq", "gru"])
@pytest.mark.parametrize("bad_id", [-1, V])
def test_generate_raises(make, bad_id):
    model, _, name = make()
    ids = _with(bad_id)
    with pytest.raises(ValueError, match=rf"`{name}` must hold ids in \[0, {V}\)"):
        if isinstance(model, (GRUTranslator, TransformerSeq2Seq)):
            model.generate({"encoder_token_ids": ids, "encoder_padding_mask": ids >= 0},
                           max_length=4, start_token_id=1)
        else:
            model.generate({"token_ids": ids, "padding_mask": ids >= 0}, max_length=6)


# Empty batches, zero lengths and too-long inputs: an empty result or a named
# error, never a deep backend error or a silent wrong result.


@pytest.mark.parametrize("make", [_lm, _seq2seq, _gru], ids=["lm", "seq2seq", "gru"])
def test_generate_on_an_empty_batch_returns_an_empty_result(make):
    model, _, _ = make()
    ids = np.zeros((0, 4), "int32")
    if isinstance(model, (GRUTranslator, TransformerSeq2Seq)):
        out = model.generate({"encoder_token_ids": ids, "encoder_padding_mask": ids > 0},
                             max_length=5, start_token_id=1)
    else:
        out = model.generate({"token_ids": ids, "padding_mask": ids > 0}, max_length=5)
    assert isinstance(out, np.ndarray) and out.shape == (0, 5)


@pytest.mark.parametrize("make", [_lm, _seq2seq, _gru], ids=["lm", "seq2seq", "gru"])
def test_generate_on_zero_length_names_the_problem(make):
    model, _, _ = make()
    ids = np.zeros((2, 0), "int32")
    if isinstance(model, (GRUTranslator, TransformerSeq2Seq)):
        call = lambda: model.generate(
            {"encoder_token_ids": ids, "encoder_padding_mask": ids > 0},
            max_length=5, start_token_id=1)
    else:
        call = lambda: model.generate({"token_ids": ids, "padding_mask": ids > 0},
                                      max_length=5)
    with pytest.raises(ValueError, match="at least one"):
        call()


def test_lm_prompt_without_a_first_token_raises():
    model, _, _ = _lm()
    ids = np.array([[4, 5], [0, 0]], "int32")
    with pytest.raises(ValueError, match=r"no token at position 0 in row\(s\) \[1\]"):
        model.generate({"token_ids": ids, "padding_mask": ids > 0}, max_length=5)


def test_too_long_names_max_sequence_length():
    model, inputs, _ = _encoder()
    ids = np.ones((2, 12), "int32")
    with pytest.raises(ValueError, match=r"length 12 .* `max_sequence_length`=8"):
        model(inputs(ids))
