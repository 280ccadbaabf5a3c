"""One generation contract (`kzoo.models.generation`) on all six generative
models: the same `generate(inputs, max_length, sampler, stop_token_ids)`
call, NumPy int32 (B, max_length) out with the prompt (or the start token)
first, padding after the first stop token, greedy equal to a step-by-step
argmax of the full forward pass, Transformer-XL memory carried, the GNMT
length penalty in beam search, and the named errors. Both backends.

Tiny models, built once per module; every model sees the same input shapes,
so each (model, sampler, stop tokens) compiles once.
"""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from kzoo import GRUTranslator
from kzoo import ReformerLM
from kzoo import SparseTransformerLM
from kzoo import TransformerLM
from kzoo import TransformerSeq2Seq
from kzoo import TransformerXLLM
from kzoo.models import generation
from kzoo.models.generation import BeamSampler

V, L = 20, 8
START, STOP = generation.DEFAULT_START_TOKEN_ID, 3
PROMPT = {
    "token_ids": np.array([[5, 6, 7], [4, 9, 0]], "int32"),
    "padding_mask": np.array([[1, 1, 1], [1, 1, 0]], bool),
}
SOURCE = {
    "encoder_token_ids": np.array([[5, 6, 7, 8], [9, 4, 0, 0]], "int32"),
    "encoder_padding_mask": np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool),
}
SIZES = dict(num_layers=1, num_heads=2, hidden_dim=8, intermediate_dim=16)
BUILDERS = {
    "transformer_lm": lambda: TransformerLM(V, max_sequence_length=L, dropout=0.0, **SIZES),
    "sparse_transformer_lm": lambda: SparseTransformerLM(
        V, stride=2, max_sequence_length=L, dropout=0.0, **SIZES),
    "reformer_lm": lambda: ReformerLM(V, axial_shape=(2, 4), bucket_size=4, seed=1, **SIZES),
    "transformer_xl_lm": lambda: TransformerXLLM(V, memory_length=L, dropout=0.0, **SIZES),
    "transformer_seq2seq": lambda: TransformerSeq2Seq(
        V, max_sequence_length=L, dropout=0.0, **SIZES),
    "gru_translator": lambda: GRUTranslator(V, V, embedding_dim=8, hidden_dim=8),
}
LMS = ["transformer_lm", "sparse_transformer_lm", "reformer_lm", "transformer_xl_lm"]


def _is_seq2seq(model):
    return isinstance(model, (TransformerSeq2Seq, GRUTranslator))


def _inputs(model):
    return SOURCE if _is_seq2seq(model) else PROMPT


def _prompt_mask(model, batch=2):
    """(B, L) True where the output holds the prompt (or start token)."""
    mask = np.zeros((batch, L), bool)
    if _is_seq2seq(model):
        mask[:, 0] = True
    else:
        mask[:, :3] = PROMPT["padding_mask"]
    return mask


@pytest.fixture(scope="module", params=list(BUILDERS))
def model(request):
    keras.utils.set_random_seed(0)
    return BUILDERS[request.param]()


@pytest.fixture(scope="module")
def lm(request):
    keras.utils.set_random_seed(0)
    return BUILDERS[request.param]()


def _check_format(model, out):
    assert isinstance(out, np.ndarray) and out.dtype == np.int32 and out.shape == (2, L)
    assert out.min() >= 0 and out.max() < V
    kept = _prompt_mask(model)
    if _is_seq2seq(model):
        assert np.all(out[:, 0] == START)
    else:
        padded = np.zeros((2, L), "int32")
        padded[:, :3] = PROMPT["token_ids"]
        np.testing.assert_array_equal(out[kept], padded[kept])
    for row, keep in zip(out, kept):
        stops = np.flatnonzero((row == STOP) & ~keep)
        if len(stops):
            assert np.all(row[stops[0] + 1 :] == 0), row


@pytest.mark.parametrize("sampler", ["greedy", "beam", "top_p"])
def test_the_same_call_gives_numpy_with_the_prompt_first(model, sampler):
    out = model.generate(_inputs(model), max_length=L, sampler=sampler, stop_token_ids=(STOP,))
    _check_format(model, out)
    if sampler == "greedy" and not isinstance(model, TransformerXLLM):
        traces = model.generate_trace_count
        again = model.generate(_inputs(model), max_length=L, stop_token_ids=(STOP,))
        np.testing.assert_array_equal(again, out)
        assert model.generate_trace_count == traces  # compiled once, reused


def test_max_length_none_is_the_documented_default(model):
    if isinstance(model, TransformerXLLM):
        expected = 3 + model.memory_length  # prompt length + memory
    elif isinstance(model, GRUTranslator):
        expected = 2 * 4 + 1  # twice the source length + the start token
    else:
        expected = L  # the longest sequence
    out = model.generate(_inputs(model), sampler="greedy", stop_token_ids=(STOP,))
    assert out.shape == (2, expected)


def test_stop_tokens_pad_after_the_first_stop(model):
    free = model.generate(_inputs(model), max_length=L)
    kept = _prompt_mask(model)
    # The second generated token of row 0 becomes a stop token.
    stop = int(free[0][~kept[0]][1])
    out = model.generate(_inputs(model), max_length=L, stop_token_ids=(stop, V - 1))
    assert isinstance(out, np.ndarray) and out.dtype == np.int32 and out.shape == (2, L)
    for row in range(2):
        generated = np.flatnonzero(~kept[row] & np.isin(free[row], (stop, V - 1)))
        end = generated[0] if len(generated) else L - 1
        np.testing.assert_array_equal(out[row, : end + 1], free[row, : end + 1])
        assert np.all(out[row, end + 1 :] == 0)


def _full_logits(model, ids, t):
    """Logits predicting position t, from one full forward pass over the
    (B, L) buffer whose positions >= t are not generated yet (masked; for
    the causal TXL segment they are unseen anyway)."""
    # `predict_on_batch`: one compiled forward pass per model, not op by op.
    if isinstance(model, TransformerXLLM):  # one segment, causal: later ids unseen
        out = model.predict_on_batch({"token_ids": ids, "padding_mask": np.ones(ids.shape, bool),
                                      "memories": model.initial_memories(2)})
        return np.asarray(out["logits"])[:, t - 1]
    mask = np.broadcast_to(np.arange(L) < t, ids.shape)  # later positions: not there yet
    return np.asarray(model.predict_on_batch({"token_ids": ids, "padding_mask": mask}))[:, t - 1]


@pytest.mark.parametrize("lm", LMS, indirect=True)
def test_greedy_equals_a_step_by_step_argmax_of_the_full_forward_pass(lm):
    out = lm.generate(PROMPT, max_length=L)
    kept = _prompt_mask(lm)
    ids = np.zeros((2, L), "int32")
    ids[:, :3] = PROMPT["token_ids"]
    for t in range(1, L):
        if kept[:, t].all():
            continue
        best = _full_logits(lm, ids, t).argmax(-1)
        ids[:, t] = np.where(kept[:, t], ids[:, t], best)
    np.testing.assert_array_equal(out, ids)


def test_transformer_xl_carries_the_memory_across_segments():
    keras.utils.set_random_seed(1)
    model = TransformerXLLM(V, memory_length=3, dropout=0.0, **SIZES)
    rng = np.random.default_rng(0)
    prompt = rng.integers(3, V, size=(2, 5)).astype("int32")
    earlier = rng.integers(3, V, size=(2, 4)).astype("int32")
    memories = model({"token_ids": earlier, "padding_mask": np.ones((2, 4), bool),
                      "memories": model.initial_memories(2)})["memories"]

    def run(segment, memories):
        out = model({"token_ids": segment, "padding_mask": np.ones(segment.shape, bool),
                     "memories": memories})
        return ops.convert_to_numpy(out["logits"]), out["memories"]

    for start_memories in (None, memories):
        got = model.generate({"token_ids": prompt}, max_length=9, segment_length=2,
                             memories=start_memories)
        # By hand: the first 4 prompt tokens in segments of 2, then one token
        # at a time, the memory (3 positions) carried all along.
        mem = model.initial_memories(2) if start_memories is None else start_memories
        for start in (0, 2):
            _, mem = run(prompt[:, start : start + 2], mem)
        ids = prompt
        while ids.shape[1] < 9:
            logits, mem = run(ids[:, -1:], mem)
            ids = np.concatenate([ids, logits[:, -1].argmax(-1)[:, None].astype("int32")], 1)
        np.testing.assert_array_equal(got, ids)
        assert np.asarray(mem).shape == (2, 1, 3, 8)  # the memory is full: truncated


def _table_next(log_probs):
    """A `next` whose log-probabilities depend on the position only."""
    table = ops.convert_to_tensor(np.log(np.asarray(log_probs, "float32") + 1e-30))

    def next(prompt, cache, index):
        rows = ops.shape(prompt)[0]
        return ops.broadcast_to(ops.take(table, index - 1, axis=0), (rows, 3)), None, cache

    return next


@pytest.mark.parametrize("alpha, expected", [(0.0, [START, 1, 0, 0]), (2.0, [START, 2, 2, 1])])
def test_beam_length_penalty_changes_the_choice(alpha, expected):
    # Ids: 0 padding, 1 stop, 2 "a". By position: P(stop) = 0.4, 0.5, 0.9.
    probs = [[0.0, 0.4, 0.6], [0.0, 0.5, 0.5], [0.0, 0.9, 0.1]]
    # By enumeration: [stop] has log p -0.92 and wins on log p; [a, a, stop]
    # has -1.31, but (5 + 3) / 6 ** 2 = 1.78 lifts it to -0.74, above
    # [stop] (-0.92) and [a, stop] (-1.20 / 1.36 = -0.89).
    best, best_score = None, -np.inf
    for n in (1, 2, 3):
        for body in itertools.product([2], repeat=n - 1):
            for last in (1, 2) if n == 3 else (1,):
                seq = list(body) + [last]
                logp = sum(np.log(probs[i][tok]) for i, tok in enumerate(seq))
                score = logp / ((5 + n) / 6) ** alpha
                if score > best_score:
                    best, best_score = seq, score
    assert [START] + best + [0] * (3 - len(best)) == expected
    prompt = np.array([[START, 0, 0, 0]], "int32")
    mask = np.array([[True, False, False, False]])
    out = generation.sample(BeamSampler(num_beams=3, length_penalty=alpha),
                            _table_next(probs), prompt, mask, None, 1, (1,), 0)
    assert ops.convert_to_numpy(out)[0].tolist() == expected


def test_beam_sampler_arguments_are_checked():
    with pytest.raises(ValueError, match="num_beams"):
        BeamSampler(num_beams=0)
    with pytest.raises(ValueError, match="length_penalty.*-1"):
        BeamSampler(length_penalty=-1)


# -- bad input: the named errors of every model ----------------------------


def _with_ids(model, ids):
    if _is_seq2seq(model):
        return {"encoder_token_ids": ids, "encoder_padding_mask": np.ones(ids.shape, bool)}
    return {"token_ids": ids, "padding_mask": np.ones(ids.shape, bool)}


def test_an_empty_batch_gives_an_empty_result(model):
    out = model.generate(_with_ids(model, np.zeros((0, 3), "int32")), max_length=L)
    assert isinstance(out, np.ndarray) and out.shape == (0, L)


def test_a_zero_length_prompt_raises(model):
    with pytest.raises(ValueError, match="at least one"):
        model.generate(_with_ids(model, np.zeros((2, 0), "int32")), max_length=L)


@pytest.mark.parametrize("bad_id", [-1, V])
def test_ids_out_of_range_raise(model, bad_id):
    ids = np.array([[5, 6, 7], [4, bad_id, 5]], "int32")
    name = "encoder_token_ids" if _is_seq2seq(model) else "token_ids"
    with pytest.raises(ValueError, match=rf"`{name}` must hold ids in \[0, {V}\)"):
        model.generate(_with_ids(model, ids), max_length=L)


@pytest.mark.parametrize("kwargs, message", [
    ({"stop_token_ids": (V,)}, "stop_token_ids"),
    ({"stop_token_ids": "3"}, "stop_token_ids"),
    ({"sampler": "nucleus"}, "sampler.*nucleus"),
    ({"max_length": 0}, "max_length"),
])
def test_bad_arguments_are_named(model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        model.generate(_inputs(model), **{"max_length": L, **kwargs})
