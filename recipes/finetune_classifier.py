"""Fine-tunes a pretrained BERT encoder on BBC News topics, next to a
TF-IDF + logistic-regression baseline (scikit-learn) measured in the same run.

    python recipes/pretrain_bert.py                  # -> saved_models/bert_tiny
    python recipes/finetune_classifier.py            # -> saved_models/bbc_bert_tiny
    python recipes/finetune_classifier.py --pretrained saved_models/bert_mini
    python recipes/finetune_classifier.py --smoke    # saved_models_smoke/bert_tiny -> saved_models_smoke/
    # Long documents: a Longformer made from the same pretrained BERT
    # (positions extended by repetition), on whole articles
    python recipes/finetune_classifier.py --encoder longformer --sequence_length 1024

Reads top to bottom: config -> load the pretrained encoder and check its
vocabulary -> BBC News (deduplicated, fixed split; see
kzoo/data/files/BBC_PROVENANCE.md), articles truncated to `sequence_length`
WordPiece tokens -> `BertClassifier` (pooled output, dropout, dense) -> AdamW
with warm-up and linear decay, model selection on the validation split ->
accuracy and macro-F1 on the untouched test split, for BERT and for the
baseline -> `<output_dir>/bbc_<pretrained name>/` with the classifier, the
vocabulary, the config and the metrics.

With `--encoder longformer` the pretrained BERT becomes a `LongformerEncoder`
(`LongformerEncoder.from_encoder`: every weight copied, position embeddings
extended to `sequence_length` by repetition, as Beltagy et al. did from
RoBERTa), [CLS] gets global attention, and articles are read up to
`sequence_length` tokens, past the BERT's maximum; the output goes to
`<output_dir>/bbc_longformer_<pretrained name>/`.
"""

import dataclasses
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bert_common as bert  # noqa: E402
import common  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

import kzoo  # noqa: E402
from kzoo.data.classification import BBC_LABELS, load_bbc_news  # noqa: E402


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    pretrained: str = "saved_models/bert_tiny"  # an export of pretrain_bert.py
    encoder: str = "bert"  # bert | longformer (from the same pretrained BERT)
    attention_window: int = 128  # longformer: whole window (w/2 each side)
    vocabulary_file: str = ""  # "" = <pretrained>/vocab.txt
    sequence_length: int = 256  # WordPiece tokens per article (truncated)
    max_train: int = 0  # 0 = all; else the first N articles (smoke runs)
    max_eval: int = 0  # 0 = the whole validation and test splits
    batch_size: int = 32
    epochs: int = 4
    learning_rate: float = 1e-3  # tiny/mini after short pretraining; 3e-4 underfits
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    dropout: float = 0.1
    pooling: str = "mean"  # mean (of real tokens) | cls (BERT's pooled [CLS])
    mixed_precision: str = "none"  # none | mixed_float16 | mixed_bfloat16
    jit_compile: bool = False
    seed: int = 1
    output_dir: str = "saved_models"  # -> <output_dir>/bbc_<pretrained name>
    verbose: int = 2


# A smoke run reads the smoke pretraining's export and writes to
# saved_models_smoke/ (its --output_dir gets the _smoke suffix).
SMOKE = dict(sequence_length=32, max_train=40, max_eval=20, batch_size=8,
             epochs=1, pretrained="saved_models_smoke/bert_tiny")


def load_split(split, limit):
    texts, labels = load_bbc_news(split)
    if limit:  # a fixed random subset, so that every label appears
        keep = np.sort(np.random.RandomState(0).permutation(len(texts))[:limit])
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    return texts, np.asarray(labels, "int32")


ENCODERS = ("bert", "longformer")


def to_longformer_inputs(x):
    """BERT inputs (N, S) -> Longformer inputs: no segments, [CLS] global."""
    return {"token_ids": x["token_ids"], "padding_mask": x["padding_mask"],
            "global_attention_mask": np.asarray(
                kzoo.models.longformer.first_token_global_mask(x["padding_mask"]))}


def build_classifier(encoder, config, steps):
    if config.encoder == "longformer":
        model = kzoo.LongformerClassifier(
            encoder, num_classes=len(BBC_LABELS), dropout=config.dropout,
            pooling=config.pooling)
    else:
        model = kzoo.BertClassifier(encoder, num_classes=len(BBC_LABELS),
                                    dropout=config.dropout, pooling=config.pooling)
    schedule = bert.WarmupLinearDecay(
        config.learning_rate, int(config.warmup_fraction * steps), steps)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay,
                                       clipnorm=1.0)
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    model.compile(
        optimizer=common.wrap_optimizer(optimizer, config.mixed_precision),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=config.jit_compile)
    return model


def main(argv=None):
    config, _ = common.parse_config(FinetuneConfig, argv, {"smoke": SMOKE},
                                    __doc__.splitlines()[0])
    common.check_choice("pooling", config.pooling, kzoo.models.bert.POOLING)
    common.check_choice("encoder", config.encoder, ENCODERS)
    common.check_positive(config, "sequence_length", "batch_size", "epochs",
                          "learning_rate")
    if config.encoder == "longformer":
        # The model's own check, before anything is loaded or written.
        kzoo.layers.LongformerAttention(num_heads=1, key_dim=1,
                                 attention_window=config.attention_window)
    # Everything is checked before anything is written.
    encoder, vocabulary, pretrained = bert.load_pretrained(
        config.pretrained, config.vocabulary_file or None)
    if config.encoder == "bert":  # the Longformer extends the positions
        bert.check_sequence_length(
            config.sequence_length, pretrained["encoder"]["max_sequence_length"],
            f"the encoder in {config.pretrained}")
    name = os.path.basename(os.path.normpath(config.pretrained))
    prefix = "bbc_" if config.encoder == "bert" else "bbc_longformer_"
    out_dir = os.path.join(config.output_dir, prefix + name)
    keras.utils.set_random_seed(config.seed)
    common.set_precision(config.mixed_precision)
    if config.mixed_precision != "none":  # re-create the encoder in the policy
        weights = encoder.get_weights()
        encoder = kzoo.BertEncoder.from_config(
            {**encoder.get_config(), "dtype": config.mixed_precision})
        encoder.set_weights(weights)
    if config.encoder == "longformer":
        encoder = kzoo.LongformerEncoder.from_encoder(
            encoder, attention_window=config.attention_window,
            max_sequence_length=config.sequence_length,
            max_global_tokens=1)  # [CLS] only: the global rows stay O(T)

    train_texts, train_y = load_split("train", config.max_train)
    val_texts, val_y = load_split("validation", config.max_eval)
    test_texts, test_y = load_split("test", config.max_eval)
    tokenizer = bert.make_tokenizer(vocabulary)
    train_x, val_x, test_x = (
        bert.encode_classification(tokenizer, t, config.sequence_length)
        for t in (train_texts, val_texts, test_texts))
    truncated = float(np.mean(train_x["token_ids"][:, -1] != bert.PAD))
    if config.encoder == "longformer":
        train_x, val_x, test_x = map(to_longformer_inputs, (train_x, val_x, test_x))
    print(f"BBC News: train {len(train_y)}, validation {len(val_y)}, test "
          f"{len(test_y)}; {truncated:.0%} of training articles truncated at "
          f"{config.sequence_length} tokens")

    steps = config.epochs * (len(train_y) // config.batch_size or 1)
    model = build_classifier(encoder, config, steps)
    best = keras.callbacks.ModelCheckpoint(
        os.path.join(out_dir + ".tmp_best", "best.weights.h5"),
        monitor="val_accuracy", mode="max", save_best_only=True,
        save_weights_only=True)
    start = time.perf_counter()
    model.fit(train_x, train_y, batch_size=config.batch_size,
              epochs=config.epochs, validation_data=(val_x, val_y),
              callbacks=[best], verbose=config.verbose, shuffle=True)
    train_seconds = time.perf_counter() - start
    model.load_weights(best.filepath)  # the epoch best on validation
    test_pred = np.argmax(model.predict(test_x, batch_size=64, verbose=0), -1)
    scores = bert.classification_metrics(test_y, test_pred, len(BBC_LABELS))

    start = time.perf_counter()
    base_pred = bert.tfidf_logistic_regression(train_texts, train_y, test_texts)
    baseline = bert.classification_metrics(test_y, base_pred, len(BBC_LABELS))
    baseline_seconds = time.perf_counter() - start

    metrics = {
        config.encoder: dict(scores, train_seconds=train_seconds,
                             parameters=bert.count_parameters(model)),
        "tfidf_logistic_regression": dict(baseline, train_seconds=baseline_seconds),
        "test_articles": len(test_y),
        "train_articles": len(train_y),
        "encoder": config.encoder,
        "attention_window": config.attention_window if config.encoder == "longformer" else None,
        "sequence_length": config.sequence_length,
        "truncated_fraction": truncated,
        "pretrained": config.pretrained,
    }
    print(f"{'model':<28}{'accuracy':>10}{'macro-F1':>10}")
    for key in (config.encoder, "tfidf_logistic_regression"):
        print(f"{key:<28}{metrics[key]['accuracy']:>10.4f}"
              f"{metrics[key]['macro_f1']:>10.4f}")
    save_classifier(out_dir, model, vocabulary, config, pretrained, metrics)
    print(f"saved to {out_dir}")
    return metrics


def save_classifier(out_dir, model, vocabulary, config, pretrained, metrics):
    import shutil

    tmp = out_dir + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    model.save(os.path.join(tmp, "classifier.keras"))
    bert.save_vocabulary(os.path.join(tmp, "vocab.txt"), vocabulary)
    common.write_json(os.path.join(tmp, "config.json"), {
        "recipe": dataclasses.asdict(config), "labels": list(BBC_LABELS),
        "encoder": pretrained["encoder"],
        "vocabulary_sha256": bert.vocabulary_sha256(vocabulary)})
    common.write_json(os.path.join(tmp, "metrics.json"), metrics)
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    shutil.rmtree(out_dir + ".tmp_best", ignore_errors=True)


if __name__ == "__main__":
    main()
