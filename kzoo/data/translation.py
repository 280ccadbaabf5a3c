"""Sentence pairs for translation: the shipped corpora, a loader for user
files, a deterministic split, subword tokenizers and `tf.data` pipelines.

Two English-German corpora ship with kzoo: `load_en_de_pairs()`, the default
(148,125 pairs from the game text, man pages, help and manuals of
Debian packages, `files/EN_DE_PROVENANCE.md`), and `load_de_en_pairs()`
(17,884 example sentences of the Ding dictionary, `files/DE_EN_PROVENANCE.md`).
`load_corpus("en-de" | "ding" | path)` picks one of them or a user TSV.

Each pair of the en-de corpus carries the corpus's `source` column: where it
comes from (`"wesnoth"`, `"manpages"`, ...). In this module that value is
called the pair's *origin*, because *source* already means the sentence to be
translated.

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
import lzma
import os

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

DE_EN_PAIRS_PATH = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "files", "de_en_pairs.tsv.gz"
)

EN_DE_PAIRS_PATH = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "files", "en_de_pairs.tsv.xz"
)
# The origins of the en-de corpus (its `source` column), in the order of
# EN_DE_PROVENANCE.md; the licences differ by origin.
EN_DE_ORIGINS = ("wesnoth", "manpages", "kde", "gnome", "gimp", "debian-manuals", "gettext")
# Corpus names that `load_corpus` knows (anything else is a path).
CORPORA = ("en-de", "ding")

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
            `"empty side"`, `"undecodable bytes"`, `"fewer than N columns"`,
            `"empty origin"`).
        examples: the first few skipped lines as `(line_number, reason)`.
        not_selected: good lines left out because their origin was not
            among the `origins` asked for (not errors).
    """

    path: str
    lines: int = 0
    pairs: int = 0
    blank_lines: int = 0
    skipped: dict = dataclasses.field(default_factory=dict)
    examples: list = dataclasses.field(default_factory=list)
    not_selected: int = 0

    @property
    def num_skipped(self):
        return sum(self.skipped.values())

    def describe(self):
        text = (
            f"{self.path}: {self.lines} lines, {self.pairs} pairs kept, "
            f"{self.num_skipped} skipped"
        )
        if self.not_selected:
            text += f", {self.not_selected} of other origins left out"
        if self.skipped:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.items()))
            first = ", ".join(f"line {n} ({r})" for n, r in self.examples)
            text += f" ({reasons}; first: {first})"
        return text


def _open_binary(path):
    if str(path).endswith(".gz"):
        return gzip.open(path, "rb")
    if str(path).endswith(".xz"):
        return lzma.open(path, "rb")
    return io.open(path, "rb")


def load_sentence_pairs(
    path,
    strict=False,
    source_column=0,
    target_column=1,
    max_examples=5,
    origin_column=None,
    origins=None,
):
    """Reads tab-separated sentence pairs (Tatoeba / Anki `spa-eng.txt` style).

    Each line holds at least two tab-separated columns (a third, such as
    Tatoeba's attribution, is ignored unless it is `origin_column`). Files
    ending in `.gz` or `.xz` are decompressed. A line without a tab, with too
    few columns, with an empty side (or an empty origin) or with bytes that
    are not UTF-8 is skipped and counted in the returned summary; with
    `strict=True` it raises a `ValueError` naming the file and the line.
    Blank lines are ignored in both modes.

    Args:
        path: the file.
        strict: raise on the first bad line instead of skipping it.
        source_column: index of the source sentence's column.
        target_column: index of the target sentence's column.
        max_examples: how many skipped lines the summary lists.
        origin_column: `None` for `(source, target)` pairs; else the index of
            a column that says where each pair comes from, and the pairs are
            `(source, target, origin)`.
        origins: with `origin_column`, keep only the pairs whose origin is in
            this collection (`None`: all). The others are counted in
            `summary.not_selected`, not as bad lines.

    Returns:
        `(pairs, summary)`: a list of `(source, target)` (or `(source, target,
        origin)`) string tuples in file order, and a `LoadSummary`.
    """
    from kzoo.utils.validation import check_non_negative_int

    check_non_negative_int("source_column", source_column)
    check_non_negative_int("target_column", target_column)
    columns_used = [source_column, target_column]
    if origin_column is not None:
        check_non_negative_int("origin_column", origin_column)
        columns_used.append(origin_column)
    elif origins is not None:
        raise ValueError(
            "`origins` needs `origin_column` (the column that says where a pair "
            f"comes from); received origins={origins!r}, origin_column=None"
        )
    if len(set(columns_used)) != len(columns_used):
        raise ValueError(
            "`source_column`, `target_column` and `origin_column` must differ; "
            f"received source_column={source_column}, target_column={target_column}"
            + (f", origin_column={origin_column}" if origin_column is not None else "")
        )
    if isinstance(origins, str):
        origins = (origins,)
    wanted = None if origins is None else frozenset(origins)
    needed = max(columns_used) + 1
    layout = (
        "'source<TAB>target'" if origin_column is None
        else "'source<TAB>target<TAB>origin'"
    )
    summary = LoadSummary(path=str(path))
    skipped = collections.Counter()
    pairs = []

    def bad(line_number, reason):
        if strict:
            raise ValueError(
                f"{path}, line {line_number}: {reason}; expected {layout} with "
                f"{needed} or more tab-separated non-empty columns (strict=True; "
                "without it bad lines are skipped and counted)"
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
            if origin_column is None:
                pairs.append((source, target))
                continue
            origin = columns[origin_column].strip()
            if not origin:
                bad(line_number, "empty origin")
                continue
            if wanted is not None and origin not in wanted:
                summary.not_selected += 1
                continue
            pairs.append((source, target, origin))
    summary.pairs = len(pairs)
    summary.skipped = dict(skipped)
    return pairs, summary


def load_de_en_pairs():
    """The Ding dictionary's English-German example sentences (GPL-2+).

    See `kzoo/data/files/DE_EN_PROVENANCE.md`. Returns `(pairs, summary)`
    like `load_sentence_pairs`, with English as the source.
    """
    return load_sentence_pairs(DE_EN_PAIRS_PATH, strict=True)


def check_origins(origins):
    """`origins` as a tuple of names of `EN_DE_ORIGINS` (a single name is
    fine), `None` kept; a `ValueError` naming the value otherwise."""
    if origins is None:
        return None
    origins = (origins,) if isinstance(origins, str) else tuple(origins)
    unknown = [o for o in origins if o not in EN_DE_ORIGINS]
    if unknown or not origins:
        raise ValueError(
            f"`origins` must be a non-empty collection of {EN_DE_ORIGINS}; "
            f"received {origins!r}"
        )
    return origins


def load_en_de_pairs(origins=None):
    """The shipped English-German corpus: `(english, german, origin)` triples.

    148,125 pairs from Debian packages' game text, man pages, help and
    manuals; English is unique under casefolding and whitespace. The licence
    depends on the origin (`EN_DE_ORIGINS`; see
    `kzoo/data/files/EN_DE_PROVENANCE.md`), so `origins` lets a user keep
    only some: `load_en_de_pairs(origins=("wesnoth", "kde"))`.

    Returns:
        `(pairs, summary)` like `load_sentence_pairs` with `origin_column=2`.
    """
    return load_sentence_pairs(
        EN_DE_PAIRS_PATH, strict=True, origin_column=2, origins=check_origins(origins)
    )


def load_corpus(corpus="en-de", strict=False, origins=None):
    """One corpus by name or path, as `(source, target, origin)` triples.

    Args:
        corpus: `"en-de"` (or `""`): the shipped Debian corpus (the default);
            `"ding"`: the shipped Ding dictionary sentences, origin `"ding"`;
            anything else: the path of a user TSV (`source<TAB>target`, more
            columns ignored), origin `"user"`.
        strict: for a user TSV, raise on a bad line (the shipped files are
            always read strictly).
        origins: for `"en-de"`, the origins to keep (see `load_en_de_pairs`).

    Returns:
        `(pairs, summary)`.
    """
    if corpus in ("", "en-de"):
        return load_en_de_pairs(origins)
    if origins is not None:
        raise ValueError(
            "`origins` selects parts of the 'en-de' corpus only; received "
            f"origins={origins!r} with corpus={corpus!r}"
        )
    if corpus == "ding":
        pairs, summary = load_de_en_pairs()
        return [(s, t, "ding") for s, t in pairs], summary
    if not os.path.isfile(corpus):
        raise ValueError(
            f"`corpus` must be one of {CORPORA} or the path of an existing TSV "
            f"file; received {corpus!r}"
        )
    pairs, summary = load_sentence_pairs(corpus, strict=strict)
    return [(s, t, "user") for s, t in pairs], summary


SplitPairs = collections.namedtuple("SplitPairs", ["train", "validation", "test"])


def normalized_key(text):
    """The form under which two sentences count as the same: casefolded,
    whitespace collapsed ("Good  morning." == "good morning.")."""
    return " ".join(text.casefold().split())


def _unit_hash(text, salt):
    digest = hashlib.sha256(f"{salt}\x00{text}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_pairs(pairs, validation_fraction=0.05, test_fraction=0.05, salt="kzoo"):
    """Deterministic train / validation / test split by a hash of the source.

    A pair's split depends on its source sentence's `normalized_key` (and
    `salt`), not on the order or the rest of the file, so adding lines to a
    corpus does not move existing pairs between splits, and every pair whose
    source is the same sentence up to case and whitespace lands in the same
    split (no source sentence leaks from training into validation or test).
    Within a split, pairs are ordered by the hash, so the split is identical
    for any permutation of the input. Duplicate pairs are kept once.

    Pairs may be `(source, target, origin)` triples (`load_corpus`). The
    split is then stratified by origin: each origin's share of validation and
    test is the fractions' in expectation (the hash), and an origin with at
    least three distinct source sentences has at least one in validation and
    one in test (its lowest-hash training sentences move there if the hash
    gave it none).

    Args:
        pairs: list of `(source, target)` or `(source, target, origin)`.
        validation_fraction: expected share of the validation split.
        test_fraction: expected share of the test split.
        salt: changes the assignment as a whole (a different split).

    Returns:
        `SplitPairs(train, validation, test)`, three lists of the tuples.
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
    groups = collections.defaultdict(list)  # normalized source -> its pairs
    for pair in set(map(tuple, pairs)):
        groups[normalized_key(pair[0])].append(pair)
    hashes = {key: _unit_hash(key, salt) for key in groups}
    homes = {}
    for key, u in hashes.items():
        if u < test_fraction:
            homes[key] = "test"
        elif u < test_fraction + validation_fraction:
            homes[key] = "validation"
        else:
            homes[key] = "train"
    # Stratify by origin: every origin with >= 3 source sentences in each split.
    strata = collections.defaultdict(list)
    for key, members in groups.items():
        if len(members[0]) > 2:
            strata[min(p[2] for p in members)].append(key)
    for keys in strata.values():
        if len(keys) < 3:
            continue
        for split_name, fraction in (("test", test_fraction), ("validation", validation_fraction)):
            if fraction > 0 and not any(homes[k] == split_name for k in keys):
                movable = sorted((hashes[k], k) for k in keys if homes[k] == "train")
                if movable:
                    homes[movable[0][1]] = split_name
    parts = {"train": [], "validation": [], "test": []}
    for key in sorted(groups, key=lambda k: (hashes[k], k)):
        parts[homes[key]].extend(sorted(groups[key]))
    return SplitPairs(parts["train"], parts["validation"], parts["test"])


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
