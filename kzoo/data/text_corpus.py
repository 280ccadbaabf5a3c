"""Plain-text corpora: any folder of `.txt` files, and the shipped Austen novels.

Every file is read as bytes and decoded as strict UTF-8 so that a wrong
encoding fails loudly, naming the file and the byte offset, instead of
training a tokenizer on mojibake. Empty (or whitespace-only) files are errors
too: in a folder of training text they are almost always a failed download.
Files ending in `.gz` are decompressed transparently.
"""

import gzip
import hashlib
import os
import re

FILES_DIR = os.path.join(os.path.dirname(__file__), "files")
AUSTEN_NOVELS = (
    "emma",
    "mansfieldpark",
    "northangerabbey",
    "persuasion",
    "prideprejudice",
    "sensesensibility",
)


def read_text_file(path):
    """Reads one UTF-8 text file (`.gz` allowed) and returns its text.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file is empty or whitespace-only, or is not valid
            UTF-8; the message names the file (and the offending byte).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"text file not found: {path}")
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        context = raw[max(0, e.start - 20) : e.end + 20]
        raise ValueError(
            f"{path} is not valid UTF-8: byte 0x{raw[e.start]:02x} at offset "
            f"{e.start} (near {context!r}). Re-encode the file as UTF-8, e.g. "
            f"`iconv -f cp1252 -t utf-8`."
        ) from None
    if text.startswith("\ufeff"):  # A UTF-8 byte-order mark is not text.
        text = text[1:]
    if not text.strip():
        raise ValueError(
            f"{path} is empty ({len(raw)} bytes, no text); remove it or fill it"
        )
    return text


def load_text_folder(folder, suffixes=(".txt", ".txt.gz")):
    """Reads every text file under `folder` (recursively), sorted by path.

    Args:
        folder: a directory holding `.txt` (or `.txt.gz`) files, at any depth.
        suffixes: the file endings to read.

    Returns:
        A dict {path relative to `folder`: text}, in sorted path order.

    Raises:
        FileNotFoundError: `folder` is not a directory.
        ValueError: no matching file, or a file is empty or not UTF-8.
    """
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"text folder not found: {folder}")
    paths = []
    for root, _, files in os.walk(folder):
        paths.extend(
            os.path.join(root, name) for name in files if name.endswith(suffixes)
        )
    if not paths:
        raise ValueError(
            f"{folder} holds no text file ending in {list(suffixes)}"
        )
    return {
        os.path.relpath(p, folder): read_text_file(p) for p in sorted(paths)
    }


def load_austen(novels=AUSTEN_NOVELS):
    """The six Austen novels shipped with kzoo: {name: text}.

    See `kzoo/data/files/AUSTEN_PROVENANCE.md`.
    """
    unknown = sorted(set(novels) - set(AUSTEN_NOVELS))
    if unknown:
        raise ValueError(
            f"`novels` must be names from {list(AUSTEN_NOVELS)}; received "
            f"{unknown}"
        )
    return {
        name: read_text_file(os.path.join(FILES_DIR, f"austen_{name}.txt.gz"))
        for name in novels
    }


def split_paragraphs(text, min_words=1):
    """Splits text at blank lines and joins each paragraph onto one line.

    Paragraphs with fewer than `min_words` words (chapter headings, blank
    spacers) are dropped.
    """
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        para = " ".join(block.split())
        if para and len(para.split()) >= min_words:
            paragraphs.append(para)
    return paragraphs


def hash_split(items, validation_fraction, salt="kzoo"):
    """Splits strings into (train, validation) by a hash of their content.

    Deterministic and independent of order: an item's side depends only on
    its text, so adding documents never moves an existing one to the other
    side. Identical strings always land on the same side.
    """
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(
            f"`validation_fraction` must be in [0, 1); received "
            f"{validation_fraction!r}"
        )
    train, validation = [], []
    for item in items:
        digest = hashlib.sha256((salt + item).encode("utf-8")).digest()
        bucket = int.from_bytes(digest[:8], "big") / 2.0**64
        (validation if bucket < validation_fraction else train).append(item)
    return train, validation
