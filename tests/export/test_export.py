"""kzoo.export: strings in, strings out, for both translators and the LM.

Tiny models and SentencePiece tokenizers trained on a few sentences. Each
export is checked against decoding the model directly with its own
`generate` (greedy and beam search), eagerly, after `tf.saved_model.load`
and through `saved_model_cli`.
"""

import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

pytestmark = [
    pytest.mark.tf_only,
    pytest.mark.skipif(
        keras.backend.backend() != "tensorflow",
        reason="kzoo.export writes TensorFlow SavedModels with tf.string "
        "tokenizers inside; it runs only on the TensorFlow backend",
    ),
]

ENGLISH = [
    "Good morning.", "Good night.", "Thank you very much.", "Where is the station?",
    "I like tea.", "The train is late.", "We need a map.", "Is it far?",
]
GERMAN = [
    "Guten Morgen.", "Gute Nacht.", "Vielen Dank.", "Wo ist der Bahnhof?",
    "Ich mag Tee.", "Der Zug ist spät.", "Wir brauchen eine Karte.", "Ist es weit?",
]
MAX_INPUT, MAX_OUTPUT = 24, 6


@pytest.fixture(scope="module")
def tokenizers():
    from kzoo.data.tokenizers import FrozenSentencePiece, corpus_words
    from kzoo.data.translation import train_sentence_piece

    source = train_sentence_piece(ENGLISH, 60)
    target = train_sentence_piece(GERMAN, 60)
    return source, target, FrozenSentencePiece(source, corpus_words(ENGLISH)), \
        FrozenSentencePiece(target)


def _model(kind, source, target):
    from kzoo import GRUTranslator, TransformerSeq2Seq

    keras.utils.set_random_seed(3)
    if kind == "gru":
        model = GRUTranslator(source.vocabulary_size(), target.vocabulary_size(), 8, 8)
    else:
        model = TransformerSeq2Seq(
            source.vocabulary_size(), 1, 2, 16, 32, max_sequence_length=32, dropout=0.0,
            decoder_vocabulary_size=target.vocabulary_size(),
        )
    ids = np.array([[5, 6, 7, 0]], "int32")
    model({"encoder_token_ids": ids, "encoder_padding_mask": ids > 0,
           "decoder_token_ids": ids, "decoder_padding_mask": ids > 0})
    return model


def _model_generate(model, ids, beam_size):
    """The model's own decoding: (B, MAX_OUTPUT) ids without the start token."""
    from kzoo.data.translation import BOS_ID, EOS_ID
    from kzoo.models.generation import BeamSampler

    inputs = {"encoder_token_ids": ids, "encoder_padding_mask": ids > 0}
    # Both translators: the export's default length_penalty, 0.6.
    sampler = "greedy" if beam_size == 1 else BeamSampler(num_beams=beam_size,
                                                          length_penalty=0.6)
    out = model.generate(inputs, max_length=MAX_OUTPUT + 1, start_token_id=BOS_ID,
                         stop_token_ids=(EOS_ID,), sampler=sampler)
    return np.asarray(out)[:, 1:]


def _by_hand(model, tokenizers, sentences, beam_size):
    """Tokenize, pad to 8/16/24 (as the export), the model's own decoding,
    strip special tokens, detokenize."""
    import tensorflow as tf

    _, _, source, target = tokenizers
    pieces = source.tokenize(tf.constant(sentences)).to_list()
    pieces = [p[:MAX_INPUT] for p in pieces]
    width = 8
    while width < max(len(p) for p in pieces):
        width *= 2
    ids = np.zeros((len(sentences), min(width, MAX_INPUT)), "int32")
    for i, p in enumerate(pieces):
        ids[i, : len(p)] = p
    out = _model_generate(model, ids, beam_size)
    rows = [[int(t) for t in row if t > 3] for row in out]
    text = target.detokenize(tf.ragged.constant(rows, dtype=tf.int32, ragged_rank=1))
    return [t.decode() if p else "" for p, t in zip(pieces, text.numpy())], out


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_translator_equals_the_models_own_greedy_and_beam_decoding(kind, tokenizers, tmp_path):
    import tensorflow as tf

    from kzoo.export import export_translator

    source, target, frozen_source, frozen_target = tokenizers
    model = _model(kind, source, target)
    sentences = ENGLISH[:6] + [""]
    greedy_text, greedy_ids = _by_hand(model, tokenizers, sentences, 1)
    beam_text, beam_ids = _by_hand(model, tokenizers, sentences, 3)
    # The inputs are ones where beam search changes the result, so an
    # export that dropped `beam_size` would fail below.
    assert (greedy_ids != beam_ids).any()
    for beam_size, expected in ((1, greedy_text), (3, beam_text)):
        path = str(tmp_path / f"beam{beam_size}")
        translator = export_translator(
            model, path, frozen_source, frozen_target, max_input_length=MAX_INPUT,
            max_output_length=MAX_OUTPUT, beam_size=beam_size,
        )
        assert translator.decoding["beam_size"] == beam_size
        assert translator.decoding["length_penalty"] == (None if beam_size == 1 else 0.6)
        assert translator.decoding["jit_compile"] is (kind == "gru")  # "auto"
        assert translator(sentences) == expected
        served = tf.saved_model.load(path).signatures["serving_default"]
        out = served(inputs=tf.constant(sentences))
        assert [o.decode() for o in out["outputs"].numpy()] == expected
        assert not out["truncated"].numpy().any()


def test_translator_options_are_checked(tokenizers):
    from kzoo import TransformerLM
    from kzoo.export import Translator

    source, target, frozen_source, frozen_target = tokenizers
    model = _model("transformer", source, target)
    with pytest.raises(ValueError, match="max_input_length.*max_sequence_length.*received 64"):
        Translator(model, frozen_source, frozen_target, max_input_length=64)
    with pytest.raises(ValueError, match="max_output_length.*received max_output_length=40"):
        Translator(model, frozen_source, frozen_target, max_input_length=8,
                   max_output_length=40)
    with pytest.raises(ValueError, match="beam_size.*received 0"):
        Translator(model, frozen_source, frozen_target, max_input_length=8, beam_size=0)
    with pytest.raises(ValueError, match="jit_compile.*received 'yes'"):
        Translator(model, frozen_source, frozen_target, max_input_length=8, max_output_length=8,
                   jit_compile="yes")
    with pytest.raises(ValueError, match="GRUTranslator and TransformerSeq2Seq; received TransformerLM"):
        Translator(TransformerLM(10, 1, 2, 8, 16), frozen_source, frozen_target)


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_too_long_inputs_truncate_with_the_flag_and_raise_without(kind, tokenizers, tmp_path):
    import tensorflow as tf

    from kzoo.export import Translator

    source, target, frozen_source, frozen_target = tokenizers
    model = _model(kind, source, target)
    long = " ".join(ENGLISH)  # far more than 12 pieces
    options = dict(max_input_length=12, max_output_length=MAX_OUTPUT)
    cut = Translator(model, frozen_source, frozen_target, truncate=True, **options)
    with pytest.warns(UserWarning, match="1 input.*longer than 12 pieces were truncated"):
        got = cut([long, ENGLISH[0]])
    # Truncation keeps the first 12 pieces: the same as giving those pieces.
    first = frozen_source.tokenize(tf.constant([long]))[0, :12]
    assert got[0] == cut([frozen_source.detokenize(first[None]).numpy()[0].decode()])[0]

    strict = Translator(model, frozen_source, frozen_target, truncate=False, **options)
    assert strict([ENGLISH[0]]) == [got[1]]  # short inputs are unaffected
    with pytest.raises(ValueError, match="longer than max_input_length=12 pieces and truncate=False"):
        strict([ENGLISH[0], long])
    path = strict.export(str(tmp_path / "strict"))
    served = tf.saved_model.load(path).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_input_length=12"):
        served(inputs=tf.constant([long]))


def _saved_model_cli(path, expression):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(cli):
        pytest.skip(f"no saved_model_cli next to {sys.executable}")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def",
         "serving_default", "--input_exprs", expression],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.parametrize("kind", ["gru", "transformer"])
def test_saved_model_cli_returns_strings(kind, tokenizers, tmp_path):
    from kzoo.export import export_translator

    source, target, frozen_source, frozen_target = tokenizers
    model = _model(kind, source, target)
    path = str(tmp_path / "saved_model")
    translator = export_translator(model, path, frozen_source, frozen_target,
                                   max_input_length=MAX_INPUT, max_output_length=MAX_OUTPUT,
                                   beam_size=2)
    expected = translator(ENGLISH[:2])
    stdout = _saved_model_cli(path, f"inputs={ENGLISH[:2]!r}")
    assert "Result for output key outputs" in stdout
    for text in expected:
        assert repr(text.encode()) in stdout  # b'...' in the printed array


@pytest.fixture(scope="module")
def lm_parts():
    from kzoo import TransformerLM
    from kzoo.data.tokenizers import FrozenSentencePiece, corpus_words
    from kzoo.data.translation import train_sentence_piece

    tokenizer = train_sentence_piece(ENGLISH, 60)
    keras.utils.set_random_seed(5)
    lm = TransformerLM(tokenizer.vocabulary_size(), 1, 2, 16, 32, max_sequence_length=24,
                       dropout=0.0)
    lm({"token_ids": np.ones((1, 4), "int32"), "padding_mask": np.ones((1, 4), bool)})
    return lm, tokenizer, FrozenSentencePiece(tokenizer, corpus_words(ENGLISH))


def test_text_generator_continues_prompts_as_the_model_generates(lm_parts, tmp_path):
    import tensorflow as tf

    from kzoo.export import export_text_generator

    lm, _, frozen = lm_parts
    prompts = ["Good morning.", "Where is", "We need"]
    path = str(tmp_path / "lm")
    generator = export_text_generator(lm, path, frozen, max_length=16, end_token_id=3)
    got = generator(prompts)
    # By hand: the model's own generate on the right-padded prompts.
    pieces = frozen.tokenize(tf.constant(prompts)).to_list()
    ids = np.zeros((len(prompts), max(map(len, pieces))), "int32")
    for i, p in enumerate(pieces):
        ids[i, : len(p)] = p
    out = np.asarray(lm.generate({"token_ids": ids, "padding_mask": ids > 0},
                                 max_length=16, stop_token_ids=(3,)))
    expected = []
    for p, row in zip(pieces, out):
        rest = [int(t) for t in row[len(p):] if t not in (0, 3)]
        expected.append(frozen.detokenize(tf.ragged.constant([rest], dtype=tf.int32,
                                                             ragged_rank=1)).numpy()[0].decode())
    assert got == expected
    assert any(expected)  # continuations, not empty strings
    served = tf.saved_model.load(path).signatures["serving_default"]
    assert [o.decode() for o in served(inputs=tf.constant(prompts))["outputs"].numpy()] == got
    stdout = _saved_model_cli(path, f"inputs={prompts[:1]!r}")
    assert repr(got[0].encode()) in stdout


def test_text_generator_sampling_truncation_and_empty_prompts(lm_parts):
    import tensorflow as tf

    from kzoo.export import TextGenerator

    lm, _, frozen = lm_parts
    sampled = TextGenerator(lm, frozen, max_length=16, sampler="top_k", seed=1)
    assert sampled.decoding["sampler"] == "top_k"
    draws = {tuple(sampled(["Good", "Good"])) for _ in range(3)}
    assert len(draws) > 1  # the seed state moves between calls
    with pytest.raises(ValueError, match="beam_size.*sampler='top_k'"):
        TextGenerator(lm, frozen, max_length=16, sampler="top_k", beam_size=2)

    long = " ".join(ENGLISH)
    cut = TextGenerator(lm, frozen, max_length=16, max_prompt_length=6)
    with pytest.warns(UserWarning, match="1 prompt.*longer than 6 pieces"):
        got = cut([long])
    last = frozen.tokenize(tf.constant([long]))[0, -6:]  # the last 6 pieces
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ids = np.asarray(last)[None]
        out = np.asarray(lm.generate({"token_ids": ids, "padding_mask": ids > 0}, max_length=16))
    assert got[0] == frozen.detokenize(out[:, 6:]).numpy()[0].decode()
    strict = TextGenerator(lm, frozen, max_length=16, max_prompt_length=6, truncate=False)
    with pytest.raises(ValueError, match="longer than max_prompt_length=6 pieces and truncate=False"):
        strict([long])
    with pytest.raises(ValueError, match="at least one piece.*start_token_id"):
        cut([""])
    with_start = TextGenerator(lm, frozen, max_length=16, start_token_id=2)
    assert isinstance(with_start([""])[0], str)


def test_text_generator_beam_search_is_the_models_beam_sampler(lm_parts):
    import tensorflow as tf

    from kzoo.export import TextGenerator
    from kzoo.models.generation import BeamSampler

    lm, _, frozen = lm_parts
    prompts = ["Where is", "We need", "Is it"]  # shorter than max_prompt_length
    generator = TextGenerator(lm, frozen, max_length=20, beam_size=3, length_penalty=1.0,
                              end_token_id=3)
    assert generator.decoding["length_penalty"] == 1.0
    pieces = frozen.tokenize(tf.constant(prompts)).to_list()
    ids = np.zeros((len(prompts), max(map(len, pieces))), "int32")
    for i, p in enumerate(pieces):
        ids[i, : len(p)] = p
    out = np.asarray(lm.generate(
        {"token_ids": ids, "padding_mask": ids > 0}, max_length=20, stop_token_ids=(3,),
        sampler=BeamSampler(num_beams=3, length_penalty=1.0)))
    expected = [
        frozen.detokenize(tf.ragged.constant(
            [[int(t) for t in row[len(p):] if t not in (0, 3)]], dtype=tf.int32,
            ragged_rank=1)).numpy()[0].decode()
        for p, row in zip(pieces, out)
    ]
    assert generator(prompts) == expected
    # Prompts where beam search changes the result, so a generator that
    # dropped `beam_size` would fail above.
    assert TextGenerator(lm, frozen, max_length=20, end_token_id=3)(prompts) != expected
    with pytest.raises(ValueError, match="length_penalty.*received -1"):
        TextGenerator(lm, frozen, max_length=20, beam_size=2, length_penalty=-1)
