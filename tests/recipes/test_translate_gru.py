"""End-to-end tests of recipes/translate_gru.py and of kzoo.export.translator.

TensorFlow only (tf.data, tensorflow-text, SavedModel). The recipe runs
in-process at its `--smoke` size (a few hundred pairs, a 16-wide model, 12
steps); each run takes 20-60 s on 2 busy CPU cores.
"""

import importlib
import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.tf_only

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NON_LATIN = "Привет, мир! 你好。 مرحبا"


def _require_tf():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the translation recipe and SavedModel export need TensorFlow")
    return pytest.importorskip("tensorflow")


def _recipe():
    sys.path.insert(0, os.path.join(ROOT, "recipes"))
    try:
        return importlib.import_module("translate_gru")
    finally:
        sys.path.pop(0)


def _run(tmp, name, *flags):
    recipe = _recipe()
    output_dir, run_dir = str(tmp / name / "out"), str(tmp / name / "run")
    argv = ["--smoke", "--output_dir", output_dir, "--run_dir", run_dir, *flags]
    return recipe.main(argv), output_dir, run_dir


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    _require_tf()
    tmp = tmp_path_factory.mktemp("gru_smoke")
    return _run(tmp, "reference")


def _tags(log_dir):
    import glob

    import tensorflow as tf

    tags = set()
    for path in glob.glob(os.path.join(log_dir, "**", "events.out.tfevents.*"), recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(v.tag for v in event.summary.value)
    return tags


def test_smoke_run_writes_every_artefact_and_the_saved_model_serves(smoke_run):
    tf = _require_tf()
    import sacrebleu

    metrics, output_dir, run_dir = smoke_run
    for name in ("model.keras", "config.json", "metrics.json", "source.spm", "target.spm",
                 "saved_model/saved_model.pb"):
        assert os.path.exists(os.path.join(output_dir, name)), name
    with open(os.path.join(output_dir, "config.json")) as f:
        config = json.load(f)
    assert config["size"] == "smoke" and config["hidden_dim"] == 16
    with open(os.path.join(output_dir, "metrics.json")) as f:
        saved_metrics = json.load(f)
    for key in ("bleu", "chrf", "test_loss", "train_seconds", "parameters",
                "inference_sentences_per_second", "train_sentences_per_second"):
        assert np.isfinite(saved_metrics[key]), key
    assert saved_metrics["steps_this_run"] == 12 and saved_metrics["resumed_from_step"] == 0

    # TensorBoard: Keras' scalars, ours, text, images and a profiler trace.
    tags = _tags(os.path.join(run_dir, "tensorboard"))
    assert {"epoch_loss", "learning_rate", "tokens_per_second", "translations",
            "attention/0"} <= tags
    assert os.listdir(os.path.join(run_dir, "tensorboard", "train", "plugins", "profile"))
    assert not os.path.exists(os.path.join(run_dir, "backup"))  # finished: deleted

    # The SavedModel is what was scored: its BLEU on the test split equals
    # the reported one (same split, same translations).
    served = tf.saved_model.load(os.path.join(output_dir, "saved_model"))
    serve = served.signatures["serving_default"]
    from kzoo.data import translation

    split = translation.split_pairs(translation.load_corpus()[0])  # the default corpus
    total = sum(len(p) for p in split)
    test = split.test[: max(1, round(len(split.test) * 300 / total))][:16]
    outputs = serve(inputs=tf.constant([s for s, _, _ in test]))["outputs"].numpy()
    hypotheses = [o.decode("utf-8") for o in outputs]
    bleu = sacrebleu.metrics.BLEU().corpus_score(hypotheses, [[t for _, t, _ in test]])
    assert round(bleu.score, 2) == metrics["bleu"]

    # Edge cases through the serving signature.
    out = serve(inputs=tf.constant(["", "Good morning.", NON_LATIN, "   "]))
    texts = [o.decode("utf-8") for o in out["outputs"].numpy()]
    assert texts[0] == "" and texts[3] == ""
    assert isinstance(texts[2], str)
    assert out["truncated"].numpy().tolist() == [False] * 4


def test_saved_model_cli_prints_translations(smoke_run):
    _require_tf()
    _, output_dir, _ = smoke_run
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(cli):
        pytest.skip("saved_model_cli is not installed next to this Python")
    result = subprocess.run(
        [cli, "run", "--dir", os.path.join(output_dir, "saved_model"), "--tag_set", "serve",
         "--signature_def", "serving_default", "--input_exprs",
         'inputs=["Good morning.", ""]'],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Result for output key outputs" in result.stdout
    assert "b''" in result.stdout  # the empty input's translation


def test_resume_after_interruption_matches_uninterrupted_run(smoke_run, tmp_path):
    """Stopped after 6 of 12 steps (mid period 2), then restarted: it resumes
    at the step-4 backup and ends with the weights of the uninterrupted run.

    Measured difference on 2 CPU cores, TensorFlow 2.21: 0 (bitwise equal
    weights and losses); the test allows 1e-5 relative for thread-order
    nondeterminism in float sums.
    """
    _require_tf()
    recipe_common = sys.modules["common"]  # recipes/common, imported by the recipe
    reference, ref_out, _ = smoke_run
    with pytest.raises(recipe_common.TrainingInterrupted):
        _run(tmp_path, "resumed", "--stop_after_steps", "6")
    backup = tmp_path / "resumed" / "run" / "backup"
    assert json.loads((backup / "training_metadata.json").read_text())["epoch"] == 1
    resumed, out, _ = _run(tmp_path, "resumed")
    assert resumed["resumed_from_step"] == 4 and resumed["steps_this_run"] == 8
    # The clock spans both runs: all 3 periods' validation losses, the same
    # best as the uninterrupted run, and more time than this run alone.
    assert len(resumed["val_loss_by_period"]) == 3
    np.testing.assert_allclose(
        resumed["val_loss_by_period"], reference["val_loss_by_period"], rtol=1e-5
    )
    np.testing.assert_allclose(
        resumed["best_val_loss"], reference["best_val_loss"], rtol=1e-5
    )
    assert resumed["train_seconds_all_runs"] > resumed["train_seconds"]
    np.testing.assert_allclose(
        resumed["history"]["loss"], reference["history"]["loss"][1:], rtol=1e-5
    )
    np.testing.assert_allclose(resumed["test_loss"], reference["test_loss"], rtol=1e-5)
    a = keras.saving.load_model(os.path.join(ref_out, "model.keras"))
    b = keras.saving.load_model(os.path.join(out, "model.keras"))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wb, wa, rtol=1e-5, atol=1e-7)


def test_translator_matches_generate_by_hand_and_handles_edges(tmp_path):
    tf = _require_tf()
    from kzoo import GRUTranslator
    from kzoo.data import translation
    from kzoo.data.tokenizers import FrozenSentencePiece, corpus_words
    from kzoo.export.translator import Translator

    pairs = translation.split_pairs(translation.load_de_en_pairs()[0]).train[:300]
    src = translation.train_sentence_piece([s for s, _ in pairs], 150)
    tgt = translation.train_sentence_piece([t for _, t in pairs], 150)
    keras.utils.set_random_seed(0)
    model = GRUTranslator(src.vocabulary_size(), tgt.vocabulary_size(), 8, 8)
    ids = np.array([[5, 6, 7, 0]], "int32")
    model({"encoder_token_ids": ids, "encoder_padding_mask": ids > 0,
           "decoder_token_ids": ids, "decoder_padding_mask": ids > 0})
    translator = Translator(
        model, FrozenSentencePiece(src, corpus_words(s for s, _ in pairs)),
        FrozenSentencePiece(tgt), max_input_length=12, max_output_length=6,
    )

    sentences = [pairs[0][0], pairs[1][0], "", NON_LATIN]  # corpus words
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # long inputs may be truncated
        got = translator(sentences)
    # Reference, by hand: tokenize, pad to 8, generate, cut at </s>, detokenize.
    assert isinstance(got[3], str)  # non-Latin: unknown pieces, no crash
    for sentence, text in zip(sentences[:3], got):
        pieces = np.asarray(src(sentence), "int32")[:12]  # tensorflow-text
        if len(pieces) == 0:
            assert text == ""
            continue
        padded = np.zeros((1, 16 if len(pieces) > 8 else 8), "int32")
        padded[0, : len(pieces)] = pieces
        out = np.asarray(model.generate(
            {"encoder_token_ids": padded, "encoder_padding_mask": padded > 0},
            max_length=7, start_token_id=translation.BOS_ID,
            stop_token_ids=(translation.EOS_ID,)))[0]  # start token first
        out = [int(t) for t in out if t > translation.EOS_ID]
        expected = tgt.detokenize(np.asarray([out], "int32"))
        expected = np.asarray(expected).reshape(-1)[0]
        expected = expected.decode() if isinstance(expected, bytes) else str(expected)
        assert text == expected

    with pytest.warns(UserWarning, match="truncated"):
        long_out = translator(["word " * 50 + "."])
    assert isinstance(long_out[0], str)

    path = str(tmp_path / "saved_model")
    translator.export(path)
    served = tf.saved_model.load(path).signatures["serving_default"]
    result = served(inputs=tf.constant(sentences + ["word " * 50]))
    assert [o.decode() for o in result["outputs"].numpy()[:4]] == got
    expected = [len(np.asarray(src(x))) > 12 for x in sentences[:3]] + [True]
    assert result["truncated"].numpy().tolist()[:3] + [result["truncated"].numpy()[4]] == expected


def test_smoke_runs_write_to_their_own_folders_and_help_shows_defaults(capsys):
    _require_tf()
    recipe = _recipe()
    common = sys.modules["common"]  # recipes/common
    config, size = common.parse_config(recipe.GRUConfig, ["--smoke"], recipe.SIZES)
    assert size == "smoke"
    assert config.output_dir == "saved_models/gru_translator_smoke"
    assert config.run_dir == "runs/gru_translator_smoke"
    full, _ = common.parse_config(recipe.GRUConfig, [], recipe.SIZES)
    assert full.output_dir == "saved_models/gru_translator"
    assert full.run_dir == "runs/gru_translator"
    given, _ = common.parse_config(recipe.GRUConfig,
                                   ["--smoke", "--output_dir", "x", "--run_dir", "y"],
                                   recipe.SIZES)
    assert (given.output_dir, given.run_dir) == ("x", "y")
    with pytest.raises(SystemExit):
        common.parse_config(recipe.GRUConfig, ["--help"], recipe.SIZES)
    text = capsys.readouterr().out
    assert "--hidden_dim HIDDEN_DIM" in text
    assert "default: 'saved_models/gru_translator'" in text
    assert "set by --size" in text
