"""Tests of kzoo.data.translation: loader, split, tokenizers, tf.data batches.

The tf.data / tensorflow-text parts are TensorFlow-only (marked `tf_only`);
the loader and the split are plain Python and run on every backend.
"""

import gzip
import random

import keras
import numpy as np
import pytest

from kzoo.data import translation as tr

PAIRS = [
    ("Good morning.", "Guten Morgen."),
    ("How are you?", "Wie geht es dir?"),
    ("I am tired.", "Ich bin müde."),
    ("The cat sleeps.", "Die Katze schläft."),
    ("We are going home.", "Wir gehen nach Hause."),
    ("She reads a book.", "Sie liest ein Buch."),
]


def _tf_only():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.data and tensorflow-text pipelines need the TensorFlow backend")
    return pytest.importorskip("tensorflow")


# ---------------------------------------------------------------- loader ----


def _write(path, data):
    path.write_bytes(data)
    return str(path)


def test_loader_skips_and_counts_bad_lines(tmp_path):
    data = (
        b"Hi.\tHola.\tCC-BY 2.0 (France) Attribution: tatoeba.org #538123\r\n"  # 1 ok, 3 cols
        b"no tab on this line\n"  # 2 no tab
        b"Run!\t\n"  # 3 empty side
        b"\n"  # 4 blank: ignored
        b"\t\xc2\xa1Corre!\n"  # 5 empty side (source)
        b"Bad \xff\xfe bytes\tMal.\n"  # 6 undecodable
        b"Who?  \t  \xc2\xbfQui\xc3\xa9n?\n"  # 7 ok, whitespace collapsed
    )
    pairs, summary = tr.load_sentence_pairs(_write(tmp_path / "spa-eng.txt", data))
    assert pairs == [("Hi.", "Hola."), ("Who?", "¿Quién?")]
    assert summary.lines == 7
    assert summary.pairs == 2
    assert summary.blank_lines == 1
    assert summary.skipped == {"no tab": 1, "empty side": 2, "undecodable bytes": 1}
    assert summary.num_skipped == 4
    assert summary.examples == [
        (2, "no tab"), (3, "empty side"), (5, "empty side"), (6, "undecodable bytes")
    ]
    assert "4 skipped" in summary.describe()


@pytest.mark.parametrize(
    "line, reason",
    [(b"no tab here", "no tab"), (b"x\t ", "empty side"), (b"\xff\tx", "undecodable")],
)
def test_loader_strict_names_file_and_line(tmp_path, line, reason):
    path = _write(tmp_path / "pairs.tsv", b"A.\tB.\nC.\tD.\n" + line + b"\nE.\tF.\n")
    with pytest.raises(ValueError, match=r"pairs\.tsv, line 3: " + reason):
        tr.load_sentence_pairs(path, strict=True)


def test_loader_reads_gzip_and_columns(tmp_path):
    path = tmp_path / "pairs.tsv.gz"
    with gzip.open(path, "wb") as f:
        f.write("en one.\tde eins.\tattr\nen two.\tde zwei.\tattr\n".encode())
    pairs, _ = tr.load_sentence_pairs(str(path), source_column=1, target_column=0)
    assert pairs == [("de eins.", "en one."), ("de zwei.", "en two.")]
    with pytest.raises(ValueError, match="target_column"):
        tr.load_sentence_pairs(str(path), source_column=1, target_column=1)


def test_shipped_corpus_loads_cleanly():
    pairs, summary = tr.load_de_en_pairs()
    assert len(pairs) == 17884 and summary.num_skipped == 0
    assert len(set(pairs)) == len(pairs)
    for english, german in pairs[:: 997]:
        assert english[0].isupper() and english[-1] in ".?!"
        assert german[0].isupper() and german[-1] in ".?!"
        assert 3 <= len(english.split()) <= 30 and 3 <= len(german.split()) <= 30


# ----------------------------------------------------------------- split ----


def test_split_is_deterministic_disjoint_and_order_independent():
    pairs, _ = tr.load_de_en_pairs()
    pairs = pairs[:3000]
    split = tr.split_pairs(pairs, validation_fraction=0.1, test_fraction=0.1)
    shuffled = list(pairs)
    random.Random(7).shuffle(shuffled)
    assert tr.split_pairs(shuffled, 0.1, 0.1) == split
    train_src = {s for s, _ in split.train}
    val_src = {s for s, _ in split.validation}
    test_src = {s for s, _ in split.test}
    assert not train_src & test_src and not train_src & val_src and not val_src & test_src
    assert sorted(split.train + split.validation + split.test) == sorted(set(pairs))
    # Fractions hold roughly (hash of the source): 300 +- 60 each.
    assert 240 <= len(split.test) <= 360 and 240 <= len(split.validation) <= 360
    # Adding pairs does not move existing ones between splits.
    bigger = tr.split_pairs(pairs + [("A new sentence here.", "Ein neuer Satz.")], 0.1, 0.1)
    assert set(split.test) <= set(bigger.test)
    assert set(split.train) <= set(bigger.train)


def test_split_keeps_a_source_in_one_split():
    pairs = [("Same source.", f"Ziel {i}.") for i in range(5)] + PAIRS
    split = tr.split_pairs(pairs, 0.3, 0.3)
    homes = [
        name
        for name, part in zip(split._fields, split)
        if any(s == "Same source." for s, _ in part)
    ]
    assert len(homes) == 1


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"validation_fraction": 1.5}, "validation_fraction"),
        ({"test_fraction": -0.1}, "test_fraction"),
        ({"validation_fraction": 0.6, "test_fraction": 0.5}, "test_fraction"),
    ],
)
def test_split_rejects_bad_fractions(kwargs, name):
    with pytest.raises(ValueError, match=name):
        tr.split_pairs(PAIRS, **kwargs)


# --------------------------------------------------- tokenizer and batches ----


@pytest.fixture(scope="module")
def protos():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tensorflow-text tokenizers need the TensorFlow backend")
    pairs, _ = tr.load_de_en_pairs()
    train = tr.split_pairs(pairs).train[:2000]
    return (
        tr.train_sentence_piece([s for s, _ in train], 300).proto,
        tr.train_sentence_piece([t for _, t in train], 300).proto,
    )


@pytest.fixture
def tokenizers(protos):
    # New tokenizers per test: TensorFlow drops the SentencePiece resource
    # when a test (conftest) resets the global seed.
    import keras_hub

    return tuple(
        keras_hub.tokenizers.SentencePieceTokenizer(proto=p, dtype="int32")
        for p in protos
    )


@pytest.mark.tf_only
def test_sentence_piece_round_trip_is_clean_text(tokenizers):
    _tf_only()
    _, target = tokenizers
    sentences = ["Hallo, Welt.", "Wie geht's dir heute?", "Er sagt: „Nein!“"]
    ids = target(sentences)
    back = [s if isinstance(s, str) else s.decode() for s in np.asarray(target.detokenize(ids)).tolist()]
    assert back == sentences  # no "Hallo , Welt ."
    assert target.token_to_id("<pad>") == tr.PAD_ID
    assert target.token_to_id("<unk>") == tr.UNK_ID
    assert target.token_to_id("<s>") == tr.BOS_ID
    assert target.token_to_id("</s>") == tr.EOS_ID


@pytest.mark.tf_only
def test_batches_hold_shifted_targets_masks_and_weights(tokenizers):
    _tf_only()
    source_tok, target_tok = tokenizers
    dataset = tr.make_translation_dataset(
        PAIRS, source_tok, target_tok, batch_size=4, bucket_boundaries=(8, 16, 64)
    )
    seen = []
    for inputs, labels, weights in dataset:
        for k in inputs:
            assert inputs[k].shape == labels.shape
        assert labels.shape[1] in (8, 16, 64)
        for row in range(labels.shape[0]):
            src = inputs["encoder_token_ids"][row].numpy()
            dec = inputs["decoder_token_ids"][row].numpy()
            lab = labels[row].numpy()
            n_src = int(inputs["encoder_padding_mask"][row].numpy().sum())
            n_tgt = int(inputs["decoder_padding_mask"][row].numpy().sum())
            np.testing.assert_array_equal(inputs["encoder_padding_mask"][row], src != 0)
            np.testing.assert_array_equal(weights[row], (lab != 0).astype("float32"))
            pieces = dec[1:n_tgt]
            assert dec[0] == tr.BOS_ID
            np.testing.assert_array_equal(lab[: n_tgt - 1], pieces)  # shifted by one
            assert lab[n_tgt - 1] == tr.EOS_ID and not lab[n_tgt:].any()
            seen.append((src[:n_src].tolist(), pieces.tolist()))
    expected = [
        (
            np.asarray(source_tok(s)).tolist(),
            np.asarray(target_tok(t)).tolist(),
        )
        for s, t in PAIRS
    ]
    assert sorted(seen) == sorted(expected)


@pytest.mark.tf_only
def test_truncation_keeps_end_token(tokenizers):
    _tf_only()
    source_tok, target_tok = tokenizers
    long_pair = [(" ".join(["word"] * 40) + ".", " ".join(["Wort"] * 40) + ".")]
    inputs, labels, _ = next(iter(tr.make_translation_dataset(
        long_pair, source_tok, target_tok, 1, max_source_length=10,
        max_target_length=6, bucket_boundaries=(8, 16),
    )))
    assert int(inputs["encoder_padding_mask"].numpy().sum()) == 10
    assert int(inputs["decoder_padding_mask"].numpy().sum()) == 6
    assert labels.numpy()[0, 5] == tr.EOS_ID


@pytest.mark.tf_only
def test_shuffled_stream_is_reproducible_and_skip_resumes_it(tokenizers):
    _tf_only()
    source_tok, target_tok = tokenizers
    pairs = tr.split_pairs(tr.load_de_en_pairs()[0]).validation[:64]

    def ids(dataset, n):
        return [x["encoder_token_ids"].numpy().tolist() for x, _, _ in dataset.take(n)]

    def stream(skip=0):
        return tr.make_translation_dataset(
            pairs, source_tok, target_tok, 8, shuffle_seed=3, skip_batches=skip
        )

    per_epoch = tr.count_batches(pairs, 8, source_tok, target_tok)
    n = 2 * per_epoch + 2  # crosses two epoch boundaries
    full = ids(stream(), n)
    assert full == ids(stream(), n)
    assert ids(stream(skip=per_epoch - 3), n - per_epoch + 3) == full[per_epoch - 3 :]
    first, second = full[:per_epoch], full[per_epoch : 2 * per_epoch]
    assert first != second  # epochs are shuffled differently

    def rows(batches):
        return sorted(tuple(x for x in row if x) for b in batches for row in b)

    assert rows(first) == rows(second)  # ... over the same sentences
    assert len(rows(first)) == len(pairs)


def test_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        tr.make_translation_dataset(PAIRS, None, None, batch_size=0)
    with pytest.raises(ValueError, match="bucket_boundaries"):
        tr.make_translation_dataset(
            PAIRS, None, None, 2, max_source_length=64, bucket_boundaries=(8, 16)
        )
    with pytest.raises(ValueError, match="pairs"):
        tr.make_translation_dataset([], None, None, 2)


@pytest.mark.tf_only
def test_frozen_sentence_piece_equals_tensorflow_text(tokenizers):
    """Core-op tokenizer (for SavedModels) == the tensorflow-text one."""
    tf = _tf_only()
    from kzoo.data.tokenizers import FrozenSentencePiece, corpus_words

    source_tok, target_tok = tokenizers
    pairs = tr.split_pairs(tr.load_de_en_pairs()[0]).test[:200]
    sources = [s for s, _ in pairs]
    frozen = FrozenSentencePiece(source_tok, corpus_words(sources))
    got = frozen.tokenize(tf.constant(sources)).to_list()
    want = source_tok(tf.constant(sources))
    want = want.to_list() if hasattr(want, "to_list") else want
    assert got == [list(map(int, w)) for w in want]
    # Unseen word: "▁" then one piece per character, <unk> if unknown.
    unseen = frozen.tokenize(tf.constant(["QzxЖ"])).to_list()[0]
    assert unseen[0] == source_tok.token_to_id("\u2581")
    assert unseen[-1] == tr.UNK_ID and len(unseen) == 5
    assert frozen.tokenize(tf.constant(["", "   "])).to_list() == [[], []]
    # Decoding equals SentencePiece's on the German side.
    frozen_target = FrozenSentencePiece(target_tok)
    targets = [t for _, t in pairs]
    ids = target_tok(tf.constant(targets))
    ids = ids if isinstance(ids, tf.RaggedTensor) else tf.ragged.constant(ids)
    got = [x.decode() for x in frozen_target.detokenize(ids).numpy()]
    want = [x if isinstance(x, str) else x.decode()
            for x in np.asarray(target_tok.detokenize(ids)).tolist()]
    assert got == want
