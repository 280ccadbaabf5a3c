"""What the translation recipes share: config parsing, data, training, scoring.

`translate_gru.py` and `translate_transformer.py` differ only in their model
and its size table; the data, the split, the tokenizers, the training loop
(schedule, early stopping, checkpoints with exact resume, TensorBoard), the
metrics (BLEU and chrF with sacrebleu on detokenized text) and the artefacts
are the same, so their numbers can stand side by side.

TensorFlow backend only (tf.data, tensorflow-text, SavedModel export).
Uses only the public kzoo API plus kzoo.data, kzoo.training and kzoo.export.
"""

import argparse
import dataclasses
import json
import math
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kzoo.data import translation  # noqa: E402
from kzoo.training import (  # noqa: E402
    ResumableEarlyStopping,
    TokenCount,
    make_backup_callback,
    resumed_step,
)

# ---------------------------------------------------------------------------
# Config: a frozen dataclass, a table of named sizes, command-line overrides.
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TranslationConfig:
    """Fields every translation recipe has; recipes add their model's."""

    # data
    # "en-de" = the shipped Debian corpus (148,125 pairs); "ding" = the shipped
    # Ding dictionary sentences (17,884); anything else = a TSV path.
    corpus: str = "en-de"
    origins: str = ""  # en-de only: comma-separated origins to keep, "" = all
    strict: bool = False  # a bad line in --corpus is an error, not a skip
    reverse: bool = False  # translate column 2 -> column 1
    max_pairs: int = 0  # 0 = all; else the first N pairs of the hash order
    validation_fraction: float = 0.05
    test_fraction: float = 0.05
    # SentencePiece pieces per language. Small on purpose: on 16k pairs,
    # 2,000 pieces beat 4,000 (BLEU 2.86 vs 2.03 for the default GRU; small
    # vocabularies suit low-resource NMT, Sennrich & Zhang 2019).
    vocabulary_size: int = 2000
    max_length: int = 48  # pieces kept per side (decoder: incl. BOS/EOS)
    bucket_boundaries: str = "12,16,24,32,48"  # padded lengths of the buckets
    # optimisation
    batch_size: int = 64
    epochs: int = 12  # passes over the training split (at most)
    learning_rate: float = 2e-3
    warmup_steps: int = 200
    clipnorm: float = 1.0
    steps_per_period: int = 250  # validation, early stopping and checkpoint
    patience: int = 3  # periods without a better validation loss
    seed: int = 1
    mixed_precision: str = "none"  # none | mixed_float16 | mixed_bfloat16
    jit_compile: bool = False
    # evaluation and export
    beam_size: int = 1
    length_penalty: float = 0.6
    max_output_length: int = 48
    eval_max_sentences: int = 0  # 0 = the whole test split
    num_samples: int = 5
    samples_every: int = 1  # periods between TensorBoard samples
    # logging and output
    log_every: int = 50
    profile_batch: str = "30,35"  # "" = no profiler trace
    output_dir: str = ""
    run_dir: str = ""
    verbose: int = 2
    stop_after_steps: int = 0  # TEST ONLY: raise after N steps (resume tests)


MIXED_PRECISION = ("none", "mixed_float16", "mixed_bfloat16")


def parse_config(config_cls, sizes, argv=None, description=""):
    """Builds `config_cls` from defaults, a named size and flags, in that order.

    Every dataclass field is a flag (`--hidden_dim 256`, booleans as
    `--jit_compile` / `--no-jit_compile`); `--size NAME` picks a row of
    `sizes` and `--smoke` is `--size smoke`. Flags given explicitly win.
    `--help` shows each flag's default. A smoke run writes to
    `<output_dir>_smoke` and `<run_dir>_smoke` unless they are given.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--size", choices=sorted(sizes), default="default")
    parser.add_argument("--smoke", action="store_true", help="same as --size smoke")
    for field in dataclasses.fields(config_cls):
        flag = f"--{field.name}"
        by_size = sorted(s for s, row in sizes.items() if field.name in row)
        help = f"default: {field.default!r}"
        if by_size:
            help += f" (set by --size {', '.join(by_size)})"
        if field.type in (bool, "bool"):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=help)
        elif field.name == "mixed_precision":
            parser.add_argument(flag, choices=MIXED_PRECISION, default=None, help=help)
        else:
            kind = {"int": int, "float": float, "str": str}.get(field.type, field.type)
            parser.add_argument(flag, type=kind, default=None, help=help)
    args = parser.parse_args(argv)
    size = "smoke" if args.smoke else args.size
    values = dict(sizes.get(size, {}))
    if size == "smoke":
        # A smoke run never overwrites the real run's model or its resume
        # backup: its folders get a suffix unless given explicitly.
        for field in dataclasses.fields(config_cls):
            if field.name in ("output_dir", "run_dir") and field.name not in values:
                values[field.name] = field.default + "_smoke"
    for field in dataclasses.fields(config_cls):
        given = getattr(args, field.name)
        if given is not None:
            values[field.name] = given
    config = config_cls(**values)
    return config, size


def check_config(config):
    """Errors that name the flag, the value received and what would be right."""
    if config.mixed_precision not in MIXED_PRECISION:
        raise ValueError(
            f"--mixed_precision must be one of {MIXED_PRECISION}; received "
            f"{config.mixed_precision!r}"
        )
    for name in ("batch_size", "epochs", "steps_per_period", "vocabulary_size",
                 "max_length", "max_output_length", "beam_size", "log_every"):
        if getattr(config, name) <= 0:
            raise ValueError(
                f"--{name} must be a positive integer; received {getattr(config, name)}"
            )
    boundaries = bucket_boundaries(config)
    if boundaries[-1] < config.max_length:
        raise ValueError(
            f"--bucket_boundaries must end at or above --max_length "
            f"({config.max_length}); received {config.bucket_boundaries!r}"
        )
    if config.corpus not in ("",) + translation.CORPORA and not os.path.isfile(config.corpus):
        raise ValueError(
            f"--corpus must be one of {translation.CORPORA} or an existing TSV "
            f"file; received {config.corpus!r}"
        )
    if config.origins:
        if config.corpus not in ("", "en-de"):
            raise ValueError(
                "--origins selects parts of --corpus en-de only; received "
                f"--origins {config.origins!r} with --corpus {config.corpus!r}"
            )
        translation.check_origins(origins(config))
    if getattr(config, "use_cudnn", False) is True and config.jit_compile:
        raise ValueError(
            "--use_cudnn and --jit_compile cannot be combined: cuDNN kernels "
            "cannot be compiled with XLA (keras-team/keras#18456); received both"
        )


def origins(config):
    """--origins as a tuple, or None for all."""
    names = tuple(o.strip() for o in config.origins.split(",") if o.strip())
    return names or None


def bucket_boundaries(config):
    try:
        values = tuple(int(b) for b in config.bucket_boundaries.split(",") if b.strip())
    except ValueError:
        values = ()
    if not values or list(values) != sorted(set(values)) or values[0] <= 0:
        raise ValueError(
            "--bucket_boundaries must be increasing positive integers separated "
            f"by commas, e.g. '12,16,24,32,48'; received {config.bucket_boundaries!r}"
        )
    return values


def profile_batch(config):
    if not config.profile_batch:
        return 0
    first, last = (int(x) for x in config.profile_batch.split(","))
    return (first, last)


def setup(config):
    """Seeds, dtype policy and output folders; returns (output_dir, run_dir)."""
    if keras.backend.backend() != "tensorflow":
        raise SystemExit(
            "the translation recipes need the TensorFlow backend (tf.data, "
            f"SavedModel export); received KERAS_BACKEND={keras.backend.backend()}"
        )
    check_config(config)
    keras.backend.clear_session()  # fresh layer names: backups load by name
    keras.utils.set_random_seed(config.seed)
    if config.mixed_precision != "none":
        keras.config.set_dtype_policy(config.mixed_precision)
    os.makedirs(config.output_dir, exist_ok=True)
    os.makedirs(config.run_dir, exist_ok=True)
    return config.output_dir, config.run_dir


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class TranslationData:
    """The split as `(source, target)` pairs; `origins` holds, split by split
    and in the same order, where each pair comes from (the corpus's `source`
    column: "wesnoth", "kde", ...; "ding" or "user" for those corpora)."""

    split: translation.SplitPairs
    source_tokenizer: object
    target_tokenizer: object
    load_summary: translation.LoadSummary
    origins: translation.SplitPairs = None


def _subset(pairs, max_pairs):
    return pairs if not max_pairs else pairs[:max_pairs]


def load_data(config, run_dir):
    """Loads, splits and tokenizes; tokenizers come from the training split.

    The tokenizer protos are kept in `run_dir` so that a resumed run uses
    exactly the same vocabulary.
    """
    import keras_hub

    pairs, summary = translation.load_corpus(
        config.corpus, strict=config.strict, origins=origins(config)
    )
    print(f"data: {summary.describe()}")
    if not pairs:
        raise SystemExit(f"no usable sentence pairs in {summary.path}")
    if config.reverse:
        pairs = [(t, s, o) for s, t, o in pairs]
    split = translation.split_pairs(  # stratified by origin
        pairs, config.validation_fraction, config.test_fraction
    )
    if config.max_pairs:
        # Shrink each split in proportion, keeping the hash order.
        total = len(split.train) + len(split.validation) + len(split.test)
        keep = lambda part: max(1, round(len(part) * config.max_pairs / total))  # noqa: E731
        split = translation.SplitPairs(
            *(part[: keep(part)] for part in split)
        )
    print(
        f"split: train {len(split.train)}, validation {len(split.validation)}, "
        f"test {len(split.test)} (by a hash of the source sentence, stratified "
        "by origin)"
    )
    split_origins = translation.SplitPairs(*([p[2] for p in part] for part in split))
    split = translation.SplitPairs(*([p[:2] for p in part] for part in split))
    tokenizers = []
    for side, index in (("source", 0), ("target", 1)):
        path = os.path.join(run_dir, f"{side}.spm")
        if os.path.exists(path):
            with open(path, "rb") as f:
                tokenizer = keras_hub.tokenizers.SentencePieceTokenizer(
                    proto=f.read(), dtype="int32"
                )
        else:
            tokenizer = translation.train_sentence_piece(
                [pair[index] for pair in split.train], config.vocabulary_size
            )
            with open(path + ".tmp", "wb") as f:
                f.write(tokenizer.proto)
            os.replace(path + ".tmp", path)
        tokenizers.append(tokenizer)
    print(
        f"tokenizers: SentencePiece unigram, {tokenizers[0].vocabulary_size()} "
        f"source / {tokenizers[1].vocabulary_size()} target pieces (training split only)"
    )
    return TranslationData(split, tokenizers[0], tokenizers[1], summary, split_origins)


def make_dataset(config, data, pairs, shuffle_seed=None, skip_batches=0):
    """The training stream (with `shuffle_seed`) or an evaluation pass."""
    dataset = translation.make_translation_dataset(
        pairs,
        data.source_tokenizer,
        data.target_tokenizer,
        config.batch_size,
        max_source_length=config.max_length,
        max_target_length=config.max_length,
        shuffle_seed=shuffle_seed,
        skip_batches=skip_batches,
        bucket_boundaries=bucket_boundaries(config),
    )
    if shuffle_seed is not None:
        return dataset
    import tensorflow as tf

    # A known length spares Keras' "ran out of data" warning after a pass.
    dataset = dataset.cache()
    length = int(dataset.reduce(0, lambda n, _: n + 1))
    return dataset.apply(tf.data.experimental.assert_cardinality(length))


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


class TrainingInterrupted(RuntimeError):
    """Raised by `--stop_after_steps` (tests of resume)."""


class StopAfterSteps(keras.callbacks.Callback):
    """TEST ONLY: raises after `steps` training steps, like a killed run."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def on_train_batch_end(self, batch, logs=None):
        done = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if done >= self.steps:
            raise TrainingInterrupted(f"stopped after {done} steps (--stop_after_steps)")


def compile_model(model, config, total_steps):
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(1, total_steps - config.warmup_steps),
        alpha=0.05,
        warmup_target=config.learning_rate,
        warmup_steps=config.warmup_steps,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=schedule, clipnorm=config.clipnorm),
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight"
        ),
        weighted_metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            TokenCount(name="tokens"),
        ],
        jit_compile=config.jit_compile,
    )


def train(model, config, data, run_dir, extra_callbacks=()):
    """Fits with exact resume; returns a dict of training measurements.

    One Keras "epoch" is a period of `steps_per_period` steps over an endless
    deterministic stream of shuffled epochs; validation, early stopping and
    the backup happen at the end of each period. A restarted run resumes at
    the last backup and reads the stream from the same batch on.
    """
    from kzoo.training.clock import TrainingClock
    from kzoo.training.tensorboard import TrainingScalars

    boundaries = bucket_boundaries(config)
    batches_per_epoch = translation.count_batches(
        data.split.train, config.batch_size, data.source_tokenizer,
        data.target_tokenizer, max_source_length=config.max_length,
        max_target_length=config.max_length, bucket_boundaries=boundaries,
    )
    total_steps = config.epochs * batches_per_epoch
    periods = math.ceil(total_steps / config.steps_per_period)
    compile_model(model, config, total_steps)
    backup_dir = os.path.join(run_dir, "backup")
    start_step = resumed_step(backup_dir, config.steps_per_period)
    if start_step:
        print(f"resuming from the backup in {backup_dir} at step {start_step}")
    train_stream = make_dataset(
        config, data, data.split.train, shuffle_seed=config.seed, skip_batches=start_step
    )
    validation = make_dataset(config, data, data.split.validation)
    log_dir = os.path.join(run_dir, "tensorboard")
    clock = TrainingClock(
        os.path.join(run_dir, "clock.json"),
        initial_epoch=start_step // config.steps_per_period,
    )
    callbacks = [
        clock,  # before the backup, so a backed-up period is on the clock
        ResumableEarlyStopping(
            os.path.join(run_dir, "early_stopping"),
            monitor="val_loss",
            patience=config.patience,
            restore_best_weights=True,
        ),
        make_backup_callback(backup_dir),
        keras.callbacks.TensorBoard(
            log_dir, update_freq=config.log_every,
            profile_batch=profile_batch(config), write_graph=False,
        ),
        TrainingScalars(log_dir, update_freq=config.log_every, batch_size=config.batch_size),
        *extra_callbacks,
    ]
    if config.stop_after_steps:
        callbacks.append(StopAfterSteps(config.stop_after_steps))
    print(
        f"training: {batches_per_epoch} batches a pass, at most {config.epochs} "
        f"passes = {total_steps} steps in {periods} periods of "
        f"{config.steps_per_period}"
    )
    start = time.perf_counter()
    history = model.fit(
        train_stream,
        steps_per_epoch=config.steps_per_period,
        epochs=periods,
        validation_data=validation,
        callbacks=callbacks,
        shuffle=False,  # the stream is shuffled, deterministically
        verbose=config.verbose,
    )
    seconds = time.perf_counter() - start
    val_losses = history.history.get("val_loss", [])
    steps_run = len(history.history.get("loss", [])) * config.steps_per_period
    overall = clock.summary()  # across restarts
    overall_losses = [
        r["val_loss"] for r in clock.records if r["val_loss"] is not None
    ]
    return {
        "train_seconds": seconds,
        "train_seconds_all_runs": overall.get("total_seconds"),
        "seconds_to_best_val_loss": overall.get("seconds_to_best"),
        "val_loss_by_period": [r["val_loss"] for r in clock.records],
        "steps_this_run": steps_run,
        "resumed_from_step": start_step,
        "batches_per_epoch": batches_per_epoch,
        "periods_run": len(val_losses),  # this run
        # Best over all runs (a resumed run's history has only its periods).
        "best_val_loss": (
            min(v for v in overall_losses) if overall_losses else None
        ),
        "best_period": overall.get("best_epoch"),
        "train_sentences_per_second": steps_run * config.batch_size / seconds,
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
    }


def describe_training(training):
    """One line: steps, time (this run and all runs), best validation loss."""
    line = (
        f"trained {training['steps_this_run']} steps in "
        f"{training['train_seconds']:.0f} s "
        f"({training['train_sentences_per_second']:.0f} sentences/s)"
    )
    if training["resumed_from_step"]:
        line += (
            f" after resuming at step {training['resumed_from_step']}; "
            f"{training['train_seconds_all_runs']:.0f} s over all runs"
        )
    if training["best_val_loss"] is not None:
        line += (
            f"; best validation loss {training['best_val_loss']:.3f} after "
            f"{training['seconds_to_best_val_loss']:.0f} s (period "
            f"{training['best_period']})"
        )
    return line


# ---------------------------------------------------------------------------
# Scoring and artefacts
# ---------------------------------------------------------------------------


def make_translator(model, config, data):
    """Strings -> strings with core-TF-op tokenizers (loads in saved_model_cli).

    `FrozenSentencePiece` stores the SentencePiece segmentation of every
    source word of the corpus (the tokenizer applied to words; no target
    text involved), so its ids equal the tensorflow-text tokenizer's on the
    corpus, and new words get a valid character-level fallback.
    """
    from kzoo.data.tokenizers import FrozenSentencePiece, corpus_words
    from kzoo.export.translator import Translator

    words = corpus_words(s for part in data.split for s, _ in part)
    return Translator(
        model,
        FrozenSentencePiece(data.source_tokenizer, words),
        FrozenSentencePiece(data.target_tokenizer),
        max_input_length=config.max_length,
        max_output_length=config.max_output_length,
        beam_size=config.beam_size,
        length_penalty=config.length_penalty,
    )


class PythonTranslator:
    """Strings -> strings for models whose `generate` runs in Python.

    `TransformerSeq2Seq.generate(inputs, max_length, start_token_id,
    end_token_id)` takes a dict, returns NumPy and includes the start token,
    so it cannot be traced into a SavedModel signature; this wrapper does the
    same steps as `kzoo.export.translator.Translator` (same core-op
    tokenizers, truncation, empty input -> empty output) eagerly. It has no
    `export`: such a recipe writes `model.keras` but no strings -> strings
    SavedModel.
    """

    def __init__(self, model, config, data):
        import warnings  # noqa: F401

        from kzoo.data.tokenizers import FrozenSentencePiece, corpus_words

        self.model = model
        self.config = config
        words = corpus_words(s for part in data.split for s, _ in part)
        self.source = FrozenSentencePiece(data.source_tokenizer, words)
        self.target = FrozenSentencePiece(data.target_tokenizer)

    def __call__(self, sentences, batch_size=64):
        import warnings

        import tensorflow as tf

        results, truncated = [], 0
        limit = self.config.max_length
        for start in range(0, len(sentences), batch_size):
            batch = list(sentences[start : start + batch_size])
            pieces = self.source.tokenize(tf.constant(batch, tf.string)).to_list()
            truncated += sum(len(p) > limit for p in pieces)
            pieces = [p[:limit] for p in pieces]
            width = 8
            while width < max(len(p) for p in pieces):
                width *= 2
            ids = np.zeros((len(batch), min(width, limit)), "int32")
            for i, p in enumerate(pieces):
                ids[i, : len(p)] = p
            out = np.asarray(self.model.generate(
                {"encoder_token_ids": ids, "encoder_padding_mask": ids > 0},
                max_length=self.config.max_output_length + 1,
                start_token_id=translation.BOS_ID,
                stop_token_ids=(translation.EOS_ID,),
            ))[:, 1:]  # drop the start token
            rows = [[int(t) for t in row if t > translation.EOS_ID] for row in out]
            text = self.target.detokenize(tf.ragged.constant(rows, dtype=tf.int32,
                                                             ragged_rank=1))
            for p, t in zip(pieces, text.numpy()):
                results.append(t.decode("utf-8") if p else "")
        if truncated:
            warnings.warn(
                f"{truncated} input(s) longer than {limit} pieces were truncated",
                stacklevel=2,
            )
        return results


def _bleu_chrf(hypotheses, references):
    import sacrebleu

    return (
        round(sacrebleu.metrics.BLEU().corpus_score(hypotheses, [references]).score, 2),
        round(sacrebleu.metrics.CHRF().corpus_score(hypotheses, [references]).score, 2),
    )


def score(model, config, data, translator):
    """Test loss, BLEU and chrF (sacrebleu, detokenized), inference speed,
    and BLEU / chrF per origin next to the copy-the-source baseline (the
    source sentence as the "translation": what names, numbers and
    untranslated words alone score)."""
    import sacrebleu

    test = data.split.test
    test_origins = data.origins.test if data.origins else ["corpus"] * len(test)
    if config.eval_max_sentences:
        test = test[: config.eval_max_sentences]
        test_origins = test_origins[: config.eval_max_sentences]
    test_results = model.evaluate(
        make_dataset(config, data, test), return_dict=True, verbose=0
    )
    sources = [s for s, _ in test]
    references = [t for _, t in test]
    translator(sources[:2])  # trace and compile once, outside the timing
    start = time.perf_counter()
    hypotheses = translator(sources)
    seconds = time.perf_counter() - start
    bleu_metric, chrf_metric = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
    bleu = bleu_metric.corpus_score(hypotheses, [references])
    chrf = chrf_metric.corpus_score(hypotheses, [references])
    copy_bleu, copy_chrf = _bleu_chrf(sources, references)
    by_origin = {}
    for origin in sorted(set(test_origins)):
        rows = [i for i, o in enumerate(test_origins) if o == origin]
        hyp = [hypotheses[i] for i in rows]
        ref = [references[i] for i in rows]
        src = [sources[i] for i in rows]
        o_bleu, o_chrf = _bleu_chrf(hyp, ref)
        c_bleu, c_chrf = _bleu_chrf(src, ref)
        by_origin[origin] = {
            "sentences": len(rows), "bleu": o_bleu, "chrf": o_chrf,
            "copy_source_bleu": c_bleu, "copy_source_chrf": c_chrf,
        }
    return {
        "test_loss": float(test_results["loss"]),
        "test_token_accuracy": float(test_results["accuracy"]),
        "test_sentences": len(test),
        "bleu": round(bleu.score, 2),
        "chrf": round(chrf.score, 2),
        "bleu_signature": bleu_metric.get_signature().format(),
        "chrf_signature": chrf_metric.get_signature().format(),
        "copy_source_bleu": copy_bleu,
        "copy_source_chrf": copy_chrf,
        "by_origin": by_origin,
        "inference_sentences_per_second": len(test) / seconds,
        "beam_size": config.beam_size,
    }, list(zip(sources, hypotheses, references))


def print_samples(samples, count):
    print("sample translations (test split):")
    for source, hypothesis, reference in samples[:count]:
        print(f"  source:     {source}")
        print(f"  model:      {hypothesis}")
        print(f"  reference:  {reference}")


def save_artefacts(
    model, config, size, translator, metrics, output_dir, data, samples=()
):
    """model.keras, saved_model/ (strings -> strings), config.json,
    metrics.json and test_translations.tsv (source, model, reference)."""
    with open(os.path.join(output_dir, "test_translations.tsv"), "w") as f:
        for row in samples:
            f.write("\t".join(x.replace("\t", " ") for x in row) + "\n")
    model.save(os.path.join(output_dir, "model.keras"))
    for side, tokenizer in (("source", data.source_tokenizer), ("target", data.target_tokenizer)):
        with open(os.path.join(output_dir, f"{side}.spm"), "wb") as f:
            f.write(tokenizer.proto)
    saved_model = None
    if hasattr(translator, "export"):
        saved_model = os.path.join(output_dir, "saved_model")
        translator.export(saved_model)
    with open(os.path.join(output_dir, "config.json"), "w") as f:
        json.dump({"size": size, **dataclasses.asdict(config)}, f, indent=2)
    with open(os.path.join(output_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    return saved_model


def tensorboard_samples(config, data, translator, attention_fn, run_dir):
    """The callback that writes sample translations and attention maps."""
    from kzoo.training.tensorboard import TranslationSamples

    samples = data.split.validation[: config.num_samples]
    return TranslationSamples(
        os.path.join(run_dir, "tensorboard"),
        [s for s, _ in samples],
        translate_fn=lambda sentences: translator(sentences),
        attention_fn=attention_fn,
        references=[t for _, t in samples],
        every_n_epochs=config.samples_every,
    )


def attention_maps(model, config, data, translator):
    """(source pieces, output pieces, weights (T, S)) for each sentence.

    Uses the model's `attention_weights(inputs)`, teacher-forced on the
    translator's output; `None` for models without it.
    """
    if not hasattr(model, "attention_weights"):
        return None

    def fn(sentences):
        maps = []
        # The translator's compiled greedy decoding, then one teacher-forced
        # pass on its output for the weights (no per-shape recompilation).
        outputs = translator(sentences)
        for sentence, output in zip(sentences, outputs):
            ids = np.asarray(data.source_tokenizer(sentence), "int32")
            ids = ids[: config.max_length][None, :]  # (1, S)
            out = np.asarray(data.target_tokenizer(output), "int32")
            out = out[: config.max_output_length - 1]
            decoder = np.concatenate([[translation.BOS_ID], out]).astype("int32")
            weights = model.attention_weights({
                "encoder_token_ids": ids,
                "encoder_padding_mask": ids > 0,
                "decoder_token_ids": decoder[None, :],
                "decoder_padding_mask": np.ones((1, len(decoder)), bool),
            })  # (1, T, S)
            to_pieces = lambda tokenizer, xs: [  # noqa: E731
                tokenizer.id_to_token(int(x)) for x in xs
            ]
            maps.append((
                to_pieces(data.source_tokenizer, ids[0]),
                to_pieces(data.target_tokenizer, list(out) + [translation.EOS_ID]),
                np.asarray(keras.ops.convert_to_numpy(weights))[0],
            ))
        return maps

    return fn


def environment():
    import platform

    import tensorflow as tf

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "cpu_count": os.cpu_count(),
        "gpus": len(tf.config.list_physical_devices("GPU")),
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
    }
