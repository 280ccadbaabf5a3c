"""Rebuilds kzoo's shipped English-German corpus from the Debian package.

The corpus is the example sentences of the Ding dictionary (Frank Richter,
TU Chemnitz, GPL-2+), which Debian ships as the package `trans-de-en`.
Run from the repository root:

    python recipes/data/build_de_en.py                 # apt-get download
    python recipes/data/build_de_en.py --deb trans-de-en_1.9-6_all.deb
    python recipes/data/build_de_en.py --dictionary usr/share/trans/de-en

It writes `kzoo/data/files/de_en_pairs.tsv.gz` (English<TAB>German, one pair
a line, sorted, gzip with a fixed timestamp so that the bytes are
reproducible) and prints the counts quoted in `DE_EN_PROVENANCE.md`.

The rules, applied in this order to each line `German :: English`:

1. skip comment lines (`#`) and lines without exactly one ` :: `;
2. split both sides on ` | ` (sub-entries); skip the line if the two sides
   have different numbers of sub-entries (they would not be aligned);
3. split each sub-entry on `; ` (alternatives); pair alternatives by position
   when both sides have the same number, otherwise pair every German
   alternative with every English one;
4. remove tags in `{}` and `[]`, turn typographic apostrophes into `'`,
   collapse whitespace;
5. keep a pair when both sides are whole sentences: they start with a capital
   letter, end in `.`, `?` or `!`, have 3 to 30 words, and contain none of
   `/`, `(`, `)` (slashes mark inline alternatives, parentheses annotations);
6. keep each (English, German) pair once.
"""

import argparse
import collections
import glob
import gzip
import io
import os
import re
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUTPUT = os.path.join(REPO, "kzoo", "data", "files", "de_en_pairs.tsv.gz")
DICTIONARY_IN_DEB = os.path.join("usr", "share", "trans", "de-en")

_TAG = re.compile(r"\s*(\{[^}]*\}|\[[^\]]*\])")
_FORBIDDEN = set("/()")
MIN_WORDS, MAX_WORDS = 3, 30


def clean(text):
    text = _TAG.sub("", text).replace("\u2019", "'").replace("\u2018", "'")
    return " ".join(text.split())


def is_whole_sentence(text):
    words = len(text.split())
    return (
        text[:1].isupper()
        and text[-1:] in (".", "?", "!")
        and MIN_WORDS <= words <= MAX_WORDS
        and not _FORBIDDEN.intersection(text)
    )


def extract_pairs(lines):
    """Returns (sorted unique (english, german) pairs, Counter of statistics)."""
    stats = collections.Counter()
    pairs = set()
    for line in lines:
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        stats["entries"] += 1
        sides = line.split(" :: ")
        if len(sides) != 2:
            stats["entries_without_one_separator"] += 1
            continue
        german_subs, english_subs = sides[0].split(" | "), sides[1].split(" | ")
        if len(german_subs) != len(english_subs):
            stats["entries_with_unaligned_sub_entries"] += 1
            continue
        for german, english in zip(german_subs, english_subs):
            de_alts = [clean(a) for a in german.split("; ")]
            en_alts = [clean(a) for a in english.split("; ")]
            if len(de_alts) == len(en_alts):
                candidates = zip(de_alts, en_alts)
            else:
                candidates = [(d, e) for d in de_alts for e in en_alts]
            for de, en in candidates:
                stats["candidate_pairs"] += 1
                if is_whole_sentence(de) and is_whole_sentence(en):
                    stats["whole_sentence_pairs"] += 1
                    pairs.add((en, de))
    stats["unique_pairs"] = len(pairs)
    return sorted(pairs), stats


def _dictionary_from_deb(deb, workdir):
    subprocess.run(["dpkg", "-x", deb, workdir], check=True)
    return os.path.join(workdir, DICTIONARY_IN_DEB)


def _download_deb(workdir):
    subprocess.run(["apt-get", "download", "trans-de-en"], check=True, cwd=workdir)
    debs = glob.glob(os.path.join(workdir, "trans-de-en_*.deb"))
    if not debs:
        raise RuntimeError("apt-get download trans-de-en produced no .deb")
    return debs[0]


def write_pairs(pairs, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    text = "".join(f"{en}\t{de}\n" for en, de in pairs).encode("utf-8")
    with open(path, "wb") as raw:
        # mtime=0 and no file name: the same pairs give the same bytes.
        with gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0) as gz:
            gz.write(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--deb", help="path to trans-de-en_*.deb")
    source.add_argument("--dictionary", help="path to an extracted usr/share/trans/de-en")
    parser.add_argument("--output", default=OUTPUT)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as workdir:
        if args.dictionary:
            dictionary = args.dictionary
        else:
            deb = args.deb or _download_deb(workdir)
            dictionary = _dictionary_from_deb(deb, workdir)
        with io.open(dictionary, encoding="utf-8") as f:
            pairs, stats = extract_pairs(f)

    write_pairs(pairs, args.output)
    for key, value in stats.items():
        print(f"{key}: {value}")
    en_words = sum(len(en.split()) for en, _ in pairs) / len(pairs)
    de_words = sum(len(de.split()) for _, de in pairs) / len(pairs)
    print(f"mean words: English {en_words:.2f}, German {de_words:.2f}")
    print(f"wrote {args.output} ({os.path.getsize(args.output)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
