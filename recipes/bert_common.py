"""What the BERT recipes share beyond `common`: the WordPiece vocabulary,
export and loading of a pretrained encoder with its checks, the schedule,
size, speed and classification scores. Config parsing, precision, JSON
artefacts, the crash hook and the throughput meter are `common`'s.

`pretrain_bert.py` writes `saved_models/bert_<size>/`:

    encoder.keras   the `kzoo.BertEncoder` (weights + config)
    vocab.txt       the WordPiece vocabulary, one token a line
    config.json     the recipe config, the encoder config, vocab size + SHA-256
    metrics.json    measured figures of the run

`finetune_classifier.py` and `distill.py` load it with `load_pretrained`,
which checks the vocabulary against the encoder and its config: a mismatch is
an error naming the file, raised before anything is written.

TensorFlow backend only (tf.data, tensorflow-text, tf.distribute).
"""

import dataclasses
import hashlib
import os
import shutil
import time

import common  # noqa: F401  (sets KERAS_BACKEND before keras is imported)
from common.artefacts import read_json, to_jsonable, write_json  # noqa: F401

import keras  # noqa: E402
import numpy as np  # noqa: E402

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD, UNK, CLS, SEP, MASK = range(5)


def check_sequence_length(sequence_length, max_sequence_length, where):
    if sequence_length > max_sequence_length:
        raise ValueError(
            f"--sequence_length {sequence_length} is above the maximum "
            f"sequence length of {where} ({max_sequence_length}); use "
            f"--sequence_length {max_sequence_length} or less"
        )


# ---------------------------------------------------------------------------
# WordPiece vocabulary (tensorflow-text through keras-hub).
# ---------------------------------------------------------------------------


def train_vocabulary(texts, vocabulary_size):
    """A lower-cased WordPiece vocabulary learned from `texts` (list of str).

    The special tokens come first, so `[PAD]` is 0. The result can be a few
    tokens shorter than `vocabulary_size` (the learner stops when no more
    pieces meet its count threshold).
    """
    import keras_hub
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices(list(texts)).batch(1000)
    return keras_hub.tokenizers.compute_word_piece_vocabulary(
        data, vocabulary_size, lowercase=True,
        reserved_tokens=list(SPECIAL_TOKENS),
    )


def vocabulary_sha256(vocabulary):
    return hashlib.sha256("\n".join(vocabulary).encode("utf-8")).hexdigest()


def save_vocabulary(path, vocabulary):
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(vocabulary) + "\n")


def load_vocabulary(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"vocabulary file not found: {path}")
    with open(path, encoding="utf-8") as f:
        vocabulary = f.read().split("\n")
    if vocabulary and vocabulary[-1] == "":
        vocabulary = vocabulary[:-1]
    if tuple(vocabulary[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
        raise ValueError(
            f"{path} must start with the special tokens {list(SPECIAL_TOKENS)}; "
            f"received {vocabulary[:len(SPECIAL_TOKENS)]}"
        )
    return vocabulary


def make_tokenizer(vocabulary, sequence_length=None):
    import keras_hub

    return keras_hub.tokenizers.WordPieceTokenizer(
        vocabulary=list(vocabulary), sequence_length=sequence_length,
        lowercase=True,
    )


def encode_classification(tokenizer, texts, sequence_length):
    """Tokenizes texts into `[CLS] tokens [SEP]` rows truncated to the length.

    Returns the encoder inputs dict of int32/bool NumPy arrays (N, S).
    """
    import keras_hub

    packer = keras_hub.layers.StartEndPacker(
        sequence_length=sequence_length, start_value=CLS, end_value=SEP,
        pad_value=PAD,
    )
    ids = []
    for start in range(0, len(texts), 256):
        ids.append(np.asarray(packer(tokenizer(texts[start:start + 256]))))
    ids = np.concatenate(ids).astype("int32")
    return {
        "token_ids": ids,
        "segment_ids": np.zeros_like(ids),
        "padding_mask": ids != PAD,
    }


# ---------------------------------------------------------------------------
# Export and load of a pretrained encoder.
# ---------------------------------------------------------------------------


def export_pretrained(path, encoder, vocabulary, config, metrics):
    """Writes encoder.keras, vocab.txt, config.json and metrics.json to `path`.

    Written into `path.tmp` first and moved into place at the end, so a
    crash never leaves a half-written export beside a good one.
    """
    tmp = path.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    encoder.save(os.path.join(tmp, "encoder.keras"))
    save_vocabulary(os.path.join(tmp, "vocab.txt"), vocabulary)
    write_json(os.path.join(tmp, "config.json"), {
        "recipe": to_jsonable(dataclasses.asdict(config)),
        "encoder": encoder.get_config(),
        "vocabulary_size": len(vocabulary),
        "vocabulary_sha256": vocabulary_sha256(vocabulary),
    })
    write_json(os.path.join(tmp, "metrics.json"), metrics)
    if os.path.exists(path):
        shutil.rmtree(path)
    os.replace(tmp, path)


def load_pretrained(path, vocabulary_path=None):
    """Loads (encoder, vocabulary, config) exported by `export_pretrained`.

    Args:
        path: the export folder, e.g. saved_models/bert_tiny.
        vocabulary_path: a vocabulary to use instead of `path/vocab.txt`; it
            must be the one the encoder was trained with.

    Raises:
        FileNotFoundError: a file of the export is missing.
        ValueError: the vocabulary does not match the encoder (size or
            SHA-256 recorded at export); the message names the file.
    """
    for name in ("encoder.keras", "config.json"):
        if not os.path.isfile(os.path.join(path, name)):
            raise FileNotFoundError(
                f"{os.path.join(path, name)} not found: `{path}` is not a "
                "pretrained export (run recipes/pretrain_bert.py first)"
            )
    vocabulary_path = vocabulary_path or os.path.join(path, "vocab.txt")
    vocabulary = load_vocabulary(vocabulary_path)
    config = read_json(os.path.join(path, "config.json"))
    expected_size = config["encoder"]["vocabulary_size"]
    if len(vocabulary) != expected_size:
        raise ValueError(
            f"vocabulary {vocabulary_path} has {len(vocabulary)} tokens but the "
            f"encoder in {path} was trained with vocabulary_size={expected_size}"
            "; use the vocab.txt exported with it"
        )
    if vocabulary_sha256(vocabulary) != config["vocabulary_sha256"]:
        raise ValueError(
            f"vocabulary {vocabulary_path} does not match the encoder in {path}:"
            f" SHA-256 {vocabulary_sha256(vocabulary)[:12]}... != "
            f"{config['vocabulary_sha256'][:12]}... recorded at export; use the "
            "vocab.txt exported with it"
        )
    import kzoo  # noqa: F401  (registers BertEncoder for loading)

    encoder = keras.saving.load_model(os.path.join(path, "encoder.keras"))
    return encoder, vocabulary, config


# ---------------------------------------------------------------------------
# Schedule, size and speed.
# ---------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="kzoo_recipes")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then linear decay
    to 0 at `total_steps` (BERT's schedule)."""

    def __init__(self, peak, warmup_steps, total_steps):
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.total_steps = int(total_steps)

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        warm = ops.cast(max(self.warmup_steps, 1), "float32")
        total = ops.cast(max(self.total_steps, self.warmup_steps + 1), "float32")
        up = self.peak * step / warm
        down = self.peak * ops.maximum(total - step, 0.0) / (total - warm)
        return ops.where(step < warm, up, down)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps}


def count_parameters(model):
    return int(sum(np.prod(w.shape) for w in model.weights))


def inference_speed(model, inputs, batch_size, repeats=3):
    """Examples/s of `model.predict_on_batch` (median of `repeats` passes
    over `inputs`, after one untimed batch that builds and traces)."""
    n = len(next(iter(inputs.values())))
    first = {k: v[:batch_size] for k, v in inputs.items()}
    model.predict_on_batch(first)  # build / trace
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(0, n, batch_size):
            model.predict_on_batch({k: v[i:i + batch_size] for k, v in inputs.items()})
        seconds.append(time.perf_counter() - start)
    return n / float(np.median(seconds))


def classification_metrics(labels, predictions, num_classes):
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "macro_f1": float(f1_score(labels, predictions, average="macro",
                                   labels=list(range(num_classes)))),
    }


def tfidf_logistic_regression(train_texts, train_labels, test_texts, seed=0):
    """The scikit-learn baseline: TF-IDF (uni+bigrams) + logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(
        TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2),
        LogisticRegression(C=10.0, max_iter=2000, random_state=seed),
    )
    model.fit(train_texts, train_labels)
    return model.predict(test_texts)
