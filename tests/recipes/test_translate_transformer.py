"""End-to-end smoke test of recipes/translate_transformer.py (TensorFlow only)."""

import importlib
import json
import os
import sys

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.tf_only

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_transformer_smoke_run_scores_what_it_saved(tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the translation recipes need the TensorFlow backend")
    import sacrebleu

    sys.path.insert(0, os.path.join(ROOT, "recipes"))
    try:
        recipe = importlib.import_module("translate_transformer")
    finally:
        sys.path.pop(0)
    out = str(tmp_path / "out")
    metrics = recipe.main(["--smoke", "--output_dir", out, "--run_dir", str(tmp_path / "run"),
                           "--beam_size", "2"])
    for name in ("model.keras", "config.json", "metrics.json", "test_translations.tsv",
                 "saved_model/saved_model.pb"):
        assert os.path.exists(os.path.join(out, name)), name
    with open(os.path.join(out, "metrics.json")) as f:
        saved = json.load(f)
    assert saved["bleu"] == metrics["bleu"] and np.isfinite(saved["test_loss"])
    assert saved["steps_this_run"] == 12
    # --beam_size reaches the decoding (it used to be dropped for this model).
    assert saved["beam_size"] == 2 and saved["decoding"]["beam_size"] == 2
    assert saved["decoding"]["search"].startswith("beam search")
    # BLEU and chrF recomputed from the saved translations agree.
    with open(os.path.join(out, "test_translations.tsv")) as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    assert len(rows) == saved["test_sentences"]
    hyps, refs = [r[1] for r in rows], [r[2] for r in rows]
    assert round(sacrebleu.metrics.BLEU().corpus_score(hyps, [refs]).score, 2) == saved["bleu"]
    assert round(sacrebleu.metrics.CHRF().corpus_score(hyps, [refs]).score, 2) == saved["chrf"]
    # The strings -> strings SavedModel translates as scored; edge cases.
    import tensorflow as tf

    served = tf.saved_model.load(os.path.join(out, "saved_model")).signatures["serving_default"]
    got = [t.decode() for t in served(inputs=tf.constant(
        ["", "Привет, мир!", rows[0][0]]))["outputs"].numpy()]
    assert got[0] == "" and isinstance(got[1], str)
    assert got[2] == rows[0][1]
