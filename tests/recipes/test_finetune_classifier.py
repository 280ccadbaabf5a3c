"""recipes/finetune_classifier.py: smoke run on BBC News next to the
scikit-learn baseline; metrics recomputed from the saved model; bad input."""

import collections
import dataclasses
import importlib.util
import json
import os
import re
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.tf_only

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_recipe(name):
    pytest.importorskip("tensorflow")
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the recipes use tf.data and tensorflow-text")
    sys.path.insert(0, os.path.join(REPO, "recipes"))
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(REPO, "recipes", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclasses.dataclass(frozen=True)
class _TinyRun:
    size: str = "test"


def make_pretrained(path, max_sequence_length=64):
    """A tiny untrained export in pretrain_bert's format (fast, no training):
    special tokens + the 300 most frequent lower-cased BBC training words."""
    import bert_common
    import kzoo
    from kzoo.data.classification import load_bbc_news

    texts, _ = load_bbc_news("train")
    counts = collections.Counter(
        w for t in texts[:300] for w in re.findall(r"[a-z]+", t.lower()))
    vocab = list(bert_common.SPECIAL_TOKENS) + [w for w, _ in counts.most_common(300)]
    encoder = kzoo.BertEncoder(
        vocabulary_size=len(vocab), num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, dropout=0.0, max_sequence_length=max_sequence_length)
    bert_common.export_pretrained(str(path), encoder, vocab, _TinyRun(), {})
    return vocab


@pytest.fixture(scope="module")
def finetune():
    return load_recipe("finetune_classifier")


def _macro_f1(y, p, k):
    f1 = []
    for c in range(k):
        tp = np.sum((p == c) & (y == c))
        prec = tp / max(np.sum(p == c), 1)
        rec = tp / max(np.sum(y == c), 1)
        f1.append(0.0 if tp == 0 else 2 * prec * rec / (prec + rec))
    return float(np.mean(f1))


def test_smoke_run_metrics_match_the_saved_model(finetune, tmp_path):
    import bert_common
    import keras

    make_pretrained(tmp_path / "bert_test")
    metrics = finetune.main(["--smoke", "--pretrained", str(tmp_path / "bert_test"),
                             "--output_dir", str(tmp_path / "out"), "--verbose", "0"])
    out = tmp_path / "out" / "bbc_bert_test"
    assert sorted(os.listdir(out)) == [
        "classifier.keras", "config.json", "metrics.json", "vocab.txt"]
    assert not (tmp_path / "out" / "bbc_bert_test.tmp_best").exists()
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved) >= {"bert", "tfidf_logistic_regression"}
    assert saved["test_articles"] == 20 and saved["train_articles"] == 40
    # Recompute the reported test figures from the saved classifier, with a
    # hand-written macro-F1.
    texts, labels = finetune.load_split("test", 20)
    tokenizer = bert_common.make_tokenizer(bert_common.load_vocabulary(str(out / "vocab.txt")))
    x = bert_common.encode_classification(tokenizer, texts, 32)
    model = keras.saving.load_model(str(out / "classifier.keras"))
    pred = np.argmax(model.predict(x, verbose=0), -1)
    np.testing.assert_allclose(saved["bert"]["accuracy"], np.mean(pred == labels))
    np.testing.assert_allclose(saved["bert"]["macro_f1"], _macro_f1(labels, pred, 5))
    # The baseline really ran on the same split: its figures are a function
    # of its predictions, which beat chance on 20 articles of 5 topics.
    assert saved["tfidf_logistic_regression"]["accuracy"] > 0.3
    assert metrics["bert"]["accuracy"] == saved["bert"]["accuracy"]


def test_bad_input_is_a_clear_error_and_nothing_is_written(finetune, tmp_path):
    import bert_common

    vocab = make_pretrained(tmp_path / "bert_test", max_sequence_length=64)
    out = tmp_path / "out"
    base = ["--smoke", "--pretrained", str(tmp_path / "bert_test"), "--output_dir", str(out)]
    with pytest.raises(ValueError, match=r"sequence_length 128 is above .* \(64\)"):
        finetune.main(base + ["--sequence_length", "128"])
    longer = tmp_path / "longer.txt"
    bert_common.save_vocabulary(str(longer), vocab + ["extra"])
    with pytest.raises(ValueError, match=r"longer\.txt has 306 tokens .*vocabulary_size=305"):
        finetune.main(base + ["--vocabulary_file", str(longer)])
    swapped = tmp_path / "swapped.txt"
    bert_common.save_vocabulary(str(swapped), vocab[:5] + vocab[6:] + vocab[5:6])
    with pytest.raises(ValueError, match=r"swapped\.txt does not match the encoder"):
        finetune.main(base + ["--vocabulary_file", str(swapped)])
    with pytest.raises(FileNotFoundError, match="not a pretrained export"):
        finetune.main(["--smoke", "--pretrained", str(tmp_path / "missing"),
                       "--output_dir", str(out)])
    assert not out.exists()


def test_longformer_smoke_reads_past_the_bert_maximum(finetune, tmp_path):
    """--encoder longformer: the same pretrained BERT made a Longformer,
    articles read to 96 tokens past the BERT's 64 positions; the reported
    figures are those of the saved classifier."""
    import bert_common
    import keras

    make_pretrained(tmp_path / "bert_test", max_sequence_length=64)
    metrics = finetune.main(["--smoke", "--pretrained", str(tmp_path / "bert_test"),
                             "--encoder", "longformer", "--sequence_length", "96",
                             "--attention_window", "16",
                             "--output_dir", str(tmp_path / "out"), "--verbose", "0"])
    out = tmp_path / "out" / "bbc_longformer_bert_test"
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["encoder"] == "longformer" and saved["attention_window"] == 16
    assert saved["longformer"]["accuracy"] == metrics["longformer"]["accuracy"]
    model = keras.saving.load_model(str(out / "classifier.keras"))
    assert type(model).__name__ == "LongformerClassifier"
    assert model.encoder.max_sequence_length == 96
    texts, labels = finetune.load_split("test", 20)
    tokenizer = bert_common.make_tokenizer(bert_common.load_vocabulary(str(out / "vocab.txt")))
    x = finetune.to_longformer_inputs(bert_common.encode_classification(tokenizer, texts, 96))
    assert x["global_attention_mask"][:, 0].all() and not x["global_attention_mask"][:, 1:].any()
    pred = np.argmax(model.predict(x, verbose=0), -1)
    np.testing.assert_allclose(saved["longformer"]["accuracy"], np.mean(pred == labels))
    with pytest.raises(ValueError, match=r"attention_window` must be an even positive integer.*received 15"):
        finetune.main(["--smoke", "--pretrained", str(tmp_path / "bert_test"),
                       "--encoder", "longformer", "--attention_window", "15",
                       "--output_dir", str(tmp_path / "out2")])
    with pytest.raises(ValueError, match=r"--encoder must be one of.*'gpt'"):
        finetune.main(["--smoke", "--pretrained", str(tmp_path / "bert_test"),
                       "--encoder", "gpt", "--output_dir", str(tmp_path / "out2")])
    assert not (tmp_path / "out2").exists()
