"""Translation data: load, split by hash, SentencePiece, tf.data pipelines."""

import dataclasses
import os

from kzoo.data import translation
from translation.config import bucket_boundaries, origins


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
