"""BBC News loader and the labelled-folder utilities: dedup, deterministic split."""

import collections
import gzip
import hashlib
import json

import pytest

from kzoo.data.classification import (
    BBC_LABELS,
    BBC_PATH,
    deduplicate,
    load_bbc_news,
    load_labelled_folder,
    split_by_hash,
)


def test_bbc_counts_and_splits_disjoint():
    splits = {s: load_bbc_news(s) for s in ("train", "validation", "test")}
    sizes = {s: len(t) for s, (t, _) in splits.items()}
    assert sizes == {"train": 1489, "validation": 212, "test": 426}
    sets = {s: set(t) for s, (t, _) in splits.items()}
    assert len(set.union(*sets.values())) == 2127  # deduplicated
    assert sets["train"].isdisjoint(sets["test"])
    assert sets["validation"].isdisjoint(sets["test"])
    assert sets["train"].isdisjoint(sets["validation"])
    test_counts = collections.Counter(splits["test"][1])
    assert [test_counts[i] for i in range(5)] == [101, 74, 81, 101, 69]
    text, label = splits["train"][0][0], splits["train"][1][0]
    assert isinstance(text, str) and 0 <= label < len(BBC_LABELS)
    with pytest.raises(ValueError, match="split"):
        load_bbc_news("dev")


def test_shipped_split_equals_recomputed_split():
    """The split stored in the file is the one `split_by_hash` computes."""
    with gzip.open(BBC_PATH, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    got = split_by_hash([r["text"] for r in rows], [r["label"] for r in rows])
    assert got == [r["split"] for r in rows]


def test_split_by_hash_reference_and_order_independence():
    texts = [f"doc {i}" for i in range(40)]
    labels = ["a"] * 30 + ["b"] * 10
    splits = split_by_hash(texts, labels, test_fraction=0.2, validation_fraction=0.1)
    # Hand reference: per label, rank by sha256; 20% test then 10% validation.
    for label, n in (("a", 30), ("b", 10)):
        idx = [i for i in range(40) if labels[i] == label]
        ranked = sorted(idx, key=lambda i: hashlib.sha256(texts[i].encode()).hexdigest())
        n_test, n_val = round(0.2 * n), round(0.1 * n)
        assert [splits[i] for i in ranked] == (
            ["test"] * n_test + ["validation"] * n_val + ["train"] * (n - n_test - n_val)
        )
    perm = list(range(39, -1, -1))
    splits2 = split_by_hash([texts[i] for i in perm], [labels[i] for i in perm])
    assert [splits2[perm.index(i)] for i in range(40)] == splits
    with pytest.raises(ValueError, match="test_fraction"):
        split_by_hash(texts, labels, test_fraction=0.9, validation_fraction=0.2)


def test_deduplicate():
    texts, labels, dropped = deduplicate(["x", "y", "x", "z", "y"], [0, 1, 0, 2, 1])
    assert (texts, labels, dropped) == (["x", "y", "z"], [0, 1, 2], [2, 4])
    with pytest.raises(ValueError, match="under another label"):
        deduplicate(["x", "x"], [0, 1])


def test_labelled_folder_errors_name_the_file(tmp_path):
    (tmp_path / "pos").mkdir()
    (tmp_path / "neg").mkdir()
    (tmp_path / "pos" / "1.txt").write_text("good film", encoding="utf-8")
    (tmp_path / "neg" / "1.txt").write_text("bad film\n", encoding="utf-8")
    texts, labels, names = load_labelled_folder(str(tmp_path))
    assert (texts, labels, names) == (["bad film", "good film"], [0, 1], ("neg", "pos"))
    (tmp_path / "neg" / "2.txt").write_bytes(b"caf\xe9")
    with pytest.raises(ValueError, match=r"2\.txt is not valid UTF-8"):
        load_labelled_folder(str(tmp_path))
    (tmp_path / "neg" / "2.txt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"2\.txt is empty"):
        load_labelled_folder(str(tmp_path))
