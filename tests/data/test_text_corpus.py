"""Text-corpus loaders: strict UTF-8, empty files, folders, the Austen data."""

import gzip
import os

import pytest

from kzoo.data import text_corpus
from kzoo.data.text_corpus import (
    hash_split,
    load_austen,
    load_text_folder,
    read_text_file,
    split_paragraphs,
)


def test_reads_utf8_and_gzip_and_strips_bom(tmp_path):
    (tmp_path / "a.txt").write_bytes("\ufeffCaf\u00e9 \u00a3 1".encode("utf-8"))
    with gzip.open(tmp_path / "b.txt.gz", "wb") as f:
        f.write("second file".encode("utf-8"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.txt").write_text("third", encoding="utf-8")
    (tmp_path / "notes.md").write_text("not read", encoding="utf-8")
    texts = load_text_folder(str(tmp_path))
    assert texts == {
        "a.txt": "Caf\u00e9 \u00a3 1",
        "b.txt.gz": "second file",
        os.path.join("sub", "c.txt"): "third",
    }


def test_empty_file_is_an_error_naming_it(tmp_path):
    (tmp_path / "good.txt").write_text("text", encoding="utf-8")
    (tmp_path / "blank.txt").write_text(" \n\n\t", encoding="utf-8")
    with pytest.raises(ValueError, match=r"blank\.txt is empty"):
        load_text_folder(str(tmp_path))


def test_non_utf8_file_is_an_error_naming_file_and_byte(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("a fee of \u00a315.8m".encode("cp1252"))
    with pytest.raises(ValueError, match=r"latin1\.txt is not valid UTF-8: byte 0xa3 at offset 9"):
        read_text_file(str(path))


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_text_folder(str(tmp_path / "nowhere"))
    (tmp_path / "x.csv").write_text("a,b", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no text file"):
        load_text_folder(str(tmp_path))


def test_austen_is_complete():
    novels = load_austen()
    assert sorted(novels) == sorted(text_corpus.AUSTEN_NOVELS)
    words = sum(len(t.split()) for t in novels.values())
    assert words == 717_537  # the count in AUSTEN_PROVENANCE.md
    assert novels["prideprejudice"].splitlines()[0] == "PRIDE AND PREJUDICE"
    assert "It is a truth universally acknowledged" in novels["prideprejudice"]
    with pytest.raises(ValueError, match="novels"):
        load_austen(["ulysses"])


def test_split_paragraphs():
    text = "CHAPTER I\n\nIt is a truth\nuniversally acknowledged.\n\n\n  \nEnd of it.\n"
    assert split_paragraphs(text) == [
        "CHAPTER I", "It is a truth universally acknowledged.", "End of it.",
    ]
    assert split_paragraphs(text, min_words=3) == [
        "It is a truth universally acknowledged.", "End of it.",
    ]


def test_hash_split_is_deterministic_disjoint_and_order_free():
    items = [f"paragraph {i}" for i in range(20000)]
    train, val = hash_split(items, 0.1)
    assert set(train).isdisjoint(val) and len(train) + len(val) == 20000
    assert 1700 < len(val) < 2300  # about 10% (1,897 with this salt)
    train2, val2 = hash_split(list(reversed(items)) + ["new one"], 0.1)
    assert set(val) <= set(val2) and set(train) <= set(train2)
    with pytest.raises(ValueError, match="validation_fraction"):
        hash_split(items, 1.5)
