"""Sentence pairs for translation: the shipped corpus, a loader for user
files, a deterministic split, subword tokenizers and `tf.data` pipelines.

The pipeline is TensorFlow code (`tf.data`, tensorflow-text through
keras-hub), as all kzoo input pipelines are; the batches it yields are plain
integer and boolean arrays that any Keras backend trains on.

Batches are `(inputs, labels, sample_weight)`:

    inputs = {
        "encoder_token_ids":    (B, S) int32, source pieces, 0 = padding
        "encoder_padding_mask": (B, S) bool, True = real token
        "decoder_token_ids":    (B, T) int32, [BOS] + target pieces
        "decoder_padding_mask": (B, T) bool
    }
    labels        (B, T) int32, target pieces + [EOS]
    sample_weight (B, T) float32, 1.0 at real label positions

Token ids follow the SentencePiece layout that keras-hub uses:
`PAD_ID = 0`, `UNK_ID = 1`, `BOS_ID = 2`, `EOS_ID = 3`.
"""

import collections
import dataclasses
import gzip
import hashlib
import io
import os

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

DE_EN_PAIRS_PATH = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "files", "de_en_pairs.tsv.gz"
)

# Padded lengths of the length buckets: one compiled train step per bucket,
# little padding inside each.
DEFAULT_BUCKET_BOUNDARIES = (8, 12, 16, 24, 32, 48, 64)


@dataclasses.dataclass
class LoadSummary:
    """What `load_sentence_pairs` read and what it skipped, and why.

    Attributes:
        path: the file read.
        lines: number of lines in the file.
        pairs: number of pairs kept.
        blank_lines: empty or whitespace-only lines (ignored, not errors).
        skipped: reason -> number of lines skipped (`"no tab"`,
            `"empty side"`, `"undecodable bytes"`).
        examples: the first few skipped lines as `(line_number, reason)`.
    """

    path: str
    lines: int = 0
    pairs: int = 0
    blank_lines: int = 0
    skipped: dict = dataclasses.field(default_factory=dict)
    examples: list = dataclasses.field(default_factory=list)

    @property
    def num_skipped(self):
        return sum(self.skipped.values())

    def describe(self):
        text = (
            f"{self.path}: {self.lines} lines, {self.pairs} pairs kept, "
            f"{self.num_skipped} skipped"
        )
        if self.skipped:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.items()))
            first = ", ".join(f"line {n} ({r})" for n, r in self.examples)
            text += f" ({reasons}; first: {first})"
        return text


def _open_binary(path):
    if str(path).endswith(".gz"):
        return gzip.open(path, "rb")
    return io.open(path, "rb")


def load_sentence_pairs(
    path, strict=False, source_column=0, target_column=1, max_examples=5
):
    """Reads tab-separated sentence pairs (Tatoeba / Anki `spa-eng.txt` style).

    Each line holds at least two tab-separated columns (a third, such as
    Tatoeba's attribution, is ignored). Files ending in `.gz` are read
    through gzip. A line without a tab, with an empty side or with bytes that
    are not UTF-8 is skipped and counted in the returned summary; with
    `strict=True` it raises a `ValueError` naming the file and the line.
    Blank lines are ignored in both modes.

    Args:
        path: the file.
        strict: raise on the first bad line instead of skipping it.
        source_column: index of the source sentence's column.
        target_column: index of the target sentence's column.
        max_examples: how many skipped lines the summary lists.

    Returns:
        `(pairs, summary)`: a list of `(source, target)` string tuples in file
        order, and a `LoadSummary`.
    """
    from kzoo.utils.validation import check_non_negative_int

    check_non_negative_int("source_column", source_column)
    check_non_negative_int("target_column", target_column)
    if source_column == target_column:
        raise ValueError(
            "`source_column` and `target_column` must differ; received "
            f"source_column={source_column}, target_column={target_column}"
        )
    needed = max(source_column, target_column) + 1
    summary = LoadSummary(path=str(path))
    skipped = collections.Counter()
    pairs = []

    def bad(line_number, reason):
        if strict:
            raise ValueError(
                f"{path}, line {line_number}: {reason}; expected "
                f"'source<TAB>target' with {needed} or more tab-separated "
                "non-empty columns (strict=True; without it bad lines are "
                "skipped and counted)"
            )
        skipped[reason] += 1
        if len(summary.examples) < max_examples:
            summary.examples.append((line_number, reason))

    with _open_binary(path) as f:
        for line_number, raw in enumerate(f, start=1):
            summary.lines = line_number
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                bad(line_number, "undecodable bytes")
                continue
            line = line.rstrip("\r\n")
            if line.startswith("\ufeff"):
                line = line[1:]
            if not line.strip():
                summary.blank_lines += 1
                continue
            columns = line.split("\t")
            if len(columns) < 2:
                bad(line_number, "no tab")
                continue
            if len(columns) < needed:
                bad(line_number, f"fewer than {needed} columns")
                continue
            source = " ".join(columns[source_column].split())
            target = " ".join(columns[target_column].split())
            if not source or not target:
                bad(line_number, "empty side")
                continue
            pairs.append((source, target))
    summary.pairs = len(pairs)
    summary.skipped = dict(skipped)
    return pairs, summary


def load_de_en_pairs():
    """The shipped English-German pairs (Ding dictionary, GPL-2+).

    See `kzoo/data/files/DE_EN_PROVENANCE.md`. Returns `(pairs, summary)`
    like `load_sentence_pairs`, with English as the source.
    """
    return load_sentence_pairs(DE_EN_PAIRS_PATH, strict=True)


SplitPairs = collections.namedtuple("SplitPairs", ["train", "validation", "test"])


def _unit_hash(text, salt):
    digest = hashlib.sha256(f"{salt}\x00{text}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_pairs(pairs, validation_fraction=0.05, test_fraction=0.05, salt="kzoo"):
    """Deterministic train / validation / test split by a hash of the source.

    A pair's split depends only on its source sentence (and `salt`), never on
    the order or the content of the rest of the file, so adding lines to a
    corpus does not move existing pairs between splits, and every pair with
    the same source lands in the same split (no leakage of a source sentence
    from training into test). Within a split, pairs are ordered by the hash,
    so the split is identical for any permutation of the input.

    Args:
        pairs: list of `(source, target)`.
        validation_fraction: expected share of the validation split.
        test_fraction: expected share of the test split.
        salt: changes the assignment as a whole (a different split).

    Returns:
        `SplitPairs(train, validation, test)`, three lists of pairs.
    """
    for name, value in (
        ("validation_fraction", validation_fraction),
        ("test_fraction", test_fraction),
    ):
        if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
            raise ValueError(f"`{name}` must be a float in [0, 1); received {value!r}")
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(
            "`validation_fraction` + `test_fraction` must be below 1 to leave "
            f"training data; received {validation_fraction} + {test_fraction}"
        )
    keyed = sorted(
        ((_unit_hash(source, salt), source, target) for source, target in set(pairs))
    )
    train, validation, test = [], [], []
    for u, source, target in keyed:
        if u < test_fraction:
            test.append((source, target))
        elif u < test_fraction + validation_fraction:
            validation.append((source, target))
        else:
            train.append((source, target))
    return SplitPairs(train, validation, test)


def train_sentence_piece(
    sentences, vocabulary_size, model_type="unigram", num_threads=2
):
    """Trains a SentencePiece model on `sentences`; returns a keras-hub tokenizer.

    SentencePiece ("SentencePiece: A simple and language independent subword
    tokenizer and detokenizer for Neural Text Processing", Kudo and
    Richardson, 2018) treats whitespace as a symbol, so detokenizing gives
    back clean text ("Hallo, Welt.", not "Hallo , Welt ."), which BLEU needs.
    This calls the `sentencepiece` trainer with the id layout of
    `keras_hub.tokenizers.compute_sentence_piece_proto` (pad 0, unk 1, bos 2,
    eos 3) but also `hard_vocab_limit=False`, so a small corpus yields a
    smaller vocabulary instead of an error. Training is deterministic for a
    given list of sentences.

    Args:
        sentences: list of strings: the TRAINING split only.
        vocabulary_size: target number of pieces.
        model_type: `"unigram"` or `"bpe"`.
        num_threads: trainer threads.

    Returns:
        A `keras_hub.tokenizers.SentencePieceTokenizer` (int32 ids).
    """
    import keras_hub
    import sentencepiece as spm

    from kzoo.utils.validation import check_one_of, check_positive_int

    check_positive_int("vocabulary_size", vocabulary_size)
    check_one_of("model_type", model_type, {"unigram", "bpe"})
    if not sentences:
        raise ValueError("`sentences` must not be empty; received 0 sentences")
    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(sentences)),
        model_writer=writer,
        vocab_size=vocabulary_size,
        model_type=model_type,
        normalization_rule_name="nmt_nfkc",
        character_coverage=1.0,
        hard_vocab_limit=False,
        pad_id=PAD_ID,
        unk_id=UNK_ID,
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        num_threads=num_threads,
        minloglevel=2,
    )
    return keras_hub.tokenizers.SentencePieceTokenizer(
        proto=writer.getvalue(), dtype="int32"
    )


def _tokenize_fn(
    pairs, source_tokenizer, target_tokenizer, max_source_length, max_target_length
):
    """Returns `(count, fn)`: `fn(index)` -> the tokenized example `index`."""
    import tensorflow as tf

    sources = tf.constant([s for s, _ in pairs], dtype=tf.string)
    targets = tf.constant([t for _, t in pairs], dtype=tf.string)
    bos = tf.constant([BOS_ID], tf.int32)
    eos = tf.constant([EOS_ID], tf.int32)

    def tokenize(index):
        source_ids = tf.cast(source_tokenizer(sources[index]), tf.int32)
        target_ids = tf.cast(target_tokenizer(targets[index]), tf.int32)
        # Truncate: the encoder sees at most `max_source_length` pieces, the
        # decoder `max_target_length` positions ([BOS] + pieces / pieces +
        # [EOS]). A truncated target keeps its [EOS] so that the model still
        # learns to stop.
        source_ids = source_ids[:max_source_length]
        target_ids = target_ids[: max_target_length - 1]
        decoder_ids = tf.concat([bos, target_ids], axis=0)
        labels = tf.concat([target_ids, eos], axis=0)
        return source_ids, decoder_ids, labels

    return len(pairs), tokenize


def _to_model_batch(source_ids, decoder_ids, labels):
    import tensorflow as tf

    inputs = {
        "encoder_token_ids": source_ids,  # (B, S)
        "encoder_padding_mask": tf.not_equal(source_ids, PAD_ID),  # (B, S)
        "decoder_token_ids": decoder_ids,  # (B, T)
        "decoder_padding_mask": tf.not_equal(decoder_ids, PAD_ID),  # (B, T)
    }
    sample_weight = tf.cast(tf.not_equal(labels, PAD_ID), tf.float32)  # (B, T)
    return inputs, labels, sample_weight


def _bucketed(dataset, batch_size, bucket_boundaries):
    import tensorflow as tf

    boundaries = [b + 1 for b in bucket_boundaries]  # bucket holds len < b + 1

    def length(source_ids, decoder_ids, labels):
        return tf.maximum(tf.shape(source_ids)[0], tf.shape(decoder_ids)[0])

    return dataset.bucket_by_sequence_length(
        length,
        bucket_boundaries=boundaries[:-1],
        bucket_batch_sizes=[batch_size] * len(boundaries),
        padded_shapes=([None], [None], [None]),
        padding_values=(PAD_ID, PAD_ID, PAD_ID),
        pad_to_bucket_boundary=False,
    ).map(
        lambda s, d, l: _pad_to_bucket(s, d, l, bucket_boundaries)
    )


def _pad_to_bucket(source_ids, decoder_ids, labels, bucket_boundaries):
    """Pads source and target of a batch to the same bucket length.

    One static length per bucket keeps the number of traced (and, under XLA,
    compiled) train steps to the number of buckets.
    """
    import tensorflow as tf

    longest = tf.maximum(tf.shape(source_ids)[1], tf.shape(decoder_ids)[1])
    bounds = tf.constant(bucket_boundaries, tf.int32)
    padded = tf.reduce_min(tf.boolean_mask(bounds, bounds >= longest))

    def pad(x):
        return tf.pad(x, [[0, 0], [0, padded - tf.shape(x)[1]]])

    return pad(source_ids), pad(decoder_ids), pad(labels)


def make_translation_dataset(
    pairs,
    source_tokenizer,
    target_tokenizer,
    batch_size,
    max_source_length=64,
    max_target_length=64,
    shuffle_seed=None,
    skip_batches=0,
    bucket_boundaries=DEFAULT_BUCKET_BOUNDARIES,
):
    """A `tf.data` pipeline of model-ready batches (see the module docstring).

    Tokenization runs inside `tf.data`. Batches group sentences of similar
    length (length buckets) and are padded to the bucket's length, so that
    there are only `len(bucket_boundaries)` distinct batch shapes.

    Without `shuffle_seed`: one pass over `pairs` in their order (for
    evaluation). With `shuffle_seed`: an endless stream of epochs where epoch
    `e` is shuffled with the seed `(shuffle_seed, e)`, so the `k`-th batch of
    the stream is the same in every process; `skip_batches=k` starts the
    stream at batch `k`, which is how a resumed run sees exactly the batches
    that an uninterrupted run would have seen.

    Args:
        pairs: list of `(source, target)` strings.
        source_tokenizer, target_tokenizer: keras-hub tokenizers (string ->
            int ids), e.g. from `train_sentence_piece`.
        batch_size: sentences per batch.
        max_source_length: source pieces kept (longer ones are truncated).
        max_target_length: decoder positions kept, [BOS]/[EOS] included.
        shuffle_seed: `None` for one ordered pass, else an int.
        skip_batches: batches to skip at the start of the shuffled stream.
        bucket_boundaries: increasing padded lengths; the last must be at
            least `max(max_source_length, max_target_length)`.

    Returns:
        A `tf.data.Dataset` of `(inputs, labels, sample_weight)`.
    """
    import tensorflow as tf

    from kzoo.utils.validation import check_non_negative_int, check_positive_int

    check_positive_int("batch_size", batch_size)
    check_positive_int("max_source_length", max_source_length)
    check_positive_int("max_target_length", max_target_length)
    check_non_negative_int("skip_batches", skip_batches)
    if not pairs:
        raise ValueError("`pairs` must not be empty; received 0 pairs")
    bucket_boundaries = tuple(int(b) for b in bucket_boundaries)
    if list(bucket_boundaries) != sorted(set(bucket_boundaries)) or (
        bucket_boundaries[-1] < max(max_source_length, max_target_length)
    ):
        raise ValueError(
            "`bucket_boundaries` must be strictly increasing and end at or "
            "above max(max_source_length, max_target_length) = "
            f"{max(max_source_length, max_target_length)}; received "
            f"{bucket_boundaries}"
        )
    count, tokenize = _tokenize_fn(
        pairs, source_tokenizer, target_tokenizer, max_source_length, max_target_length
    )

    def examples(indices):
        return indices.map(
            tokenize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )

    if shuffle_seed is None:
        batches = _bucketed(
            examples(tf.data.Dataset.range(count)), batch_size, bucket_boundaries
        )
    else:
        seed = tf.constant(int(shuffle_seed), tf.int64)

        def epoch(e):
            # A stateless shuffle keyed by (seed, epoch): the same order in
            # every process, whatever the global random state.
            order = tf.random.experimental.stateless_shuffle(
                tf.range(count, dtype=tf.int64), seed=tf.stack([seed, e])
            )
            indices = tf.data.Dataset.from_tensor_slices(order)
            return _bucketed(examples(indices), batch_size, bucket_boundaries)

        batches = tf.data.Dataset.range(2**62).flat_map(epoch)
        if skip_batches:
            batches = batches.skip(skip_batches)
    return batches.map(_to_model_batch).prefetch(tf.data.AUTOTUNE)


def count_batches(pairs, batch_size, source_tokenizer, target_tokenizer, **kwargs):
    """Number of batches in one pass of `make_translation_dataset`."""
    dataset = make_translation_dataset(
        pairs, source_tokenizer, target_tokenizer, batch_size, **kwargs
    )
    return int(dataset.reduce(0, lambda n, _: n + 1))
