"""Text classification data: the shipped BBC News articles and folders of
`<label>/*.txt` files.

The BBC News file holds 2,127 deduplicated articles with a fixed split
(`train` 1,489, `validation` 212, `test` 426; see
`kzoo/data/files/BBC_PROVENANCE.md`). The test split is only for the final
report of a run: select models on `validation`.
"""

import collections
import gzip
import hashlib
import json
import os

from kzoo.data.text_corpus import FILES_DIR, read_text_file

BBC_LABELS = ("business", "entertainment", "politics", "sports", "tech")
BBC_PATH = os.path.join(FILES_DIR, "bbc_news.jsonl.gz")
SPLITS = ("train", "validation", "test")


def load_bbc_news(split, path=BBC_PATH):
    """Returns (texts, labels) for one split of the shipped BBC News file.

    Args:
        split: "train", "validation" or "test".
        path: the JSON-lines file (default: the one kzoo ships).

    Returns:
        texts: list of str (headline, blank line, body).
        labels: list of int, indices into `BBC_LABELS`.
    """
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {list(SPLITS)}; received {split!r}")
    texts, labels = [], []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if row["split"] == split:
                texts.append(row["text"])
                labels.append(BBC_LABELS.index(row["label"]))
    return texts, labels


def load_labelled_folder(folder):
    """Reads `<folder>/<label>/*.txt` into (texts, labels, label_names).

    Each file is read with `read_text_file` (strict UTF-8; empty files are
    errors naming the file). Labels are the sorted sub-folder names.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"labelled folder not found: {folder}")
    label_names = sorted(
        d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d))
    )
    if not label_names:
        raise ValueError(f"{folder} has no label sub-folders (<label>/*.txt)")
    texts, labels = [], []
    for index, name in enumerate(label_names):
        sub = os.path.join(folder, name)
        for file in sorted(os.listdir(sub)):
            if file.endswith(".txt"):
                texts.append(read_text_file(os.path.join(sub, file)).strip())
                labels.append(index)
    return texts, labels, tuple(label_names)


def deduplicate(texts, labels):
    """Drops exact duplicate texts, keeping the first; returns
    (texts, labels, dropped indices).

    Raises ValueError if one text appears under two labels (the label would
    be ambiguous).
    """
    first = {}
    kept_texts, kept_labels, dropped = [], [], []
    for i, (text, label) in enumerate(zip(texts, labels)):
        if text in first:
            if labels[first[text]] != label:
                raise ValueError(
                    f"text {i} duplicates text {first[text]} under another "
                    f"label ({label!r} vs {labels[first[text]]!r})"
                )
            dropped.append(i)
            continue
        first[text] = i
        kept_texts.append(text)
        kept_labels.append(label)
    return kept_texts, kept_labels, dropped


def split_by_hash(texts, labels, test_fraction=0.2, validation_fraction=0.1):
    """Deterministic stratified split; returns a list of split names.

    Within each label, texts are ordered by SHA-256; the first
    `test_fraction` go to "test", the next `validation_fraction` to
    "validation", the rest to "train". No random seed, no dependence on the
    input order.
    """
    if not (0 <= test_fraction and 0 <= validation_fraction
            and test_fraction + validation_fraction < 1):
        raise ValueError(
            "`test_fraction` and `validation_fraction` must be >= 0 with a sum "
            f"< 1; received {test_fraction!r} and {validation_fraction!r}"
        )
    by_label = collections.defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    splits = [None] * len(texts)
    for label, indices in by_label.items():
        indices.sort(
            key=lambda i: hashlib.sha256(texts[i].encode("utf-8")).hexdigest()
        )
        n_test = round(test_fraction * len(indices))
        n_val = round(validation_fraction * len(indices))
        for rank, i in enumerate(indices):
            splits[i] = (
                "test" if rank < n_test
                else "validation" if rank < n_test + n_val
                else "train"
            )
    return splits
