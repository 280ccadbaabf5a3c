"""Tests of the shipped English-German corpus (en_de_pairs.tsv.xz), its
origins, its stratified split and `load_corpus`. Plain Python: every backend.
"""

import collections
import hashlib
import lzma
import os
import random
import re

import pytest

from kzoo.data import translation as tr

FILES = os.path.dirname(tr.EN_DE_PAIRS_PATH)


@pytest.fixture(scope="module")
def corpus():
    return tr.load_en_de_pairs()


@pytest.fixture(scope="module")
def provenance():
    with open(os.path.join(FILES, "EN_DE_PROVENANCE.md"), encoding="utf-8") as f:
        return f.read()


@pytest.fixture(scope="module")
def split(corpus):
    return tr.split_pairs(corpus[0])


def _documented_counts(provenance):
    """origin -> pairs, from the provenance file's first table."""
    counts = {}
    for origin, count in re.findall(r"^\| `([\w-]+)` \| ([\d,]+) \| [^|]*\| [^|]*\|$",
                                    provenance, re.M):
        counts.setdefault(origin, int(count.replace(",", "")))
    return counts


# ----------------------------------------------------------- the file ----


def test_shipped_corpus_matches_its_provenance(corpus, provenance):
    pairs, summary = corpus
    assert summary.num_skipped == 0 and summary.not_selected == 0
    assert summary.pairs == summary.lines == len(pairs)
    with open(tr.EN_DE_PAIRS_PATH, "rb") as f:
        data = f.read()
    assert hashlib.sha256(data).hexdigest() in provenance
    assert f"{len(data):,} bytes" in provenance
    total = re.search(r"\*\*What\*\*: ([\d,]+) English-German pairs", provenance)
    assert int(total.group(1).replace(",", "")) == len(pairs)
    counts = collections.Counter(origin for _, _, origin in pairs)
    assert set(counts) == set(tr.EN_DE_ORIGINS)
    assert _documented_counts(provenance) == dict(counts)
    assert 120_000 <= len(pairs) <= 160_000


def test_shipped_corpus_is_clean_as_documented(corpus):
    pairs, _ = corpus
    keys = [tr.normalized_key(en) for en, _, _ in pairs]
    assert len(set(keys)) == len(keys)  # English unique up to case / whitespace
    assert pairs == sorted(pairs)  # the build sorts (reproducible bytes)
    for english, german, _ in pairs[::211]:
        assert 3 <= len(english.split()) <= 60
        assert 0.5 <= len(german) / len(english) <= 2.2
        assert english.casefold() != german.casefold()
        assert not re.search(r"https?://|<[a-z/]|&\w+;|\\f[BIRP]", english + german)
        assert "\t" not in english + german


def test_origins_filter(corpus):
    pairs, _ = corpus
    counts = collections.Counter(origin for _, _, origin in pairs)
    some, summary = tr.load_en_de_pairs(origins=("wesnoth", "gimp"))
    assert {o for _, _, o in some} == {"wesnoth", "gimp"}
    assert len(some) == counts["wesnoth"] + counts["gimp"] == summary.pairs
    assert summary.not_selected == len(pairs) - len(some)
    assert "of other origins left out" in summary.describe()
    assert some == [p for p in pairs if p[2] in ("wesnoth", "gimp")]
    one, _ = tr.load_en_de_pairs(origins="kde")  # a single name is fine too
    assert len(one) == counts["kde"]
    with pytest.raises(ValueError, match=r"origins.*'klingon'"):
        tr.load_en_de_pairs(origins=("wesnoth", "klingon"))
    with pytest.raises(ValueError, match="origins"):
        tr.load_en_de_pairs(origins=())


# -------------------------------------------------------------- split ----


def test_split_of_the_corpus_is_stratified_and_leak_free(corpus, split):
    pairs, _ = corpus
    assert sorted(split.train + split.validation + split.test) == pairs
    for part in split:
        assert {o for _, _, o in part} == set(tr.EN_DE_ORIGINS)
    keys = [{tr.normalized_key(en) for en, _, _ in part} for part in split]
    assert not keys[0] & keys[1] and not keys[0] & keys[2] and not keys[1] & keys[2]
    # Each origin's share of test is about 5% (hash; +-40% relative).
    counts = collections.Counter(o for _, _, o in pairs)
    test_counts = collections.Counter(o for _, _, o in split.test)
    for origin, n in counts.items():
        assert 0.03 * n <= test_counts[origin] <= 0.07 * n, origin


def test_split_is_deterministic_and_order_independent(corpus, split):
    pairs, _ = corpus
    shuffled = list(pairs)
    random.Random(3).shuffle(shuffled)
    assert tr.split_pairs(shuffled) == split
    assert tr.split_pairs(pairs, salt="other") != split


def test_case_and_whitespace_variants_share_a_split():
    base = [(f"Sentence number {i}.", f"Satz Nummer {i}.", "kde") for i in range(200)]
    variants = [(f"sentence  NUMBER {i}. ", f"Satz {i}.", "gnome") for i in range(200)]
    split = tr.split_pairs(base + variants, 0.2, 0.2)
    home = {}
    for name, part in zip(split._fields, split):
        for en, _, _ in part:
            assert home.setdefault(tr.normalized_key(en), name) == name
    assert len(home) == 200
    assert sum(len(p) for p in split) == 400  # grouped, not dropped


def test_stratification_gives_a_small_origin_validation_and_test_pairs():
    big = [(f"Common sentence {i}.", f"Satz {i}.", "wesnoth") for i in range(2000)]
    small = [(f"Rare sentence {i}.", f"Selten {i}.", "gimp") for i in range(3)]
    for salt in ("kzoo", "a", "b", "c"):
        split = tr.split_pairs(big + small, 0.05, 0.05, salt=salt)
        for part in split:
            assert "gimp" in {o for _, _, o in part}
        assert tr.split_pairs(list(reversed(big + small)), 0.05, 0.05, salt=salt) == split
    # Two sentences are too few to stratify: they stay where the hash puts them.
    split = tr.split_pairs(big + small[:2], 0.05, 0.05)
    assert sum(o == "gimp" for part in split for _, _, o in part) == 2


# ------------------------------------------------- loader, 3 columns ----


def _write_xz(path, text):
    with lzma.open(path, "wb") as f:
        f.write(text.encode("utf-8"))
    return str(path)


def test_three_column_loader_counts_bad_lines(tmp_path):
    path = _write_xz(tmp_path / "pairs.tsv.xz", (
        "One two three.\tEins zwei drei.\tkde\n"  # 1 ok
        "Only two.\tNur zwei.\n"  # 2 fewer than 3 columns
        "Empty origin here.\tLeere Herkunft.\t \n"  # 3 empty origin
        "\n"  # 4 blank
        "Four five six.\t\tgnome\n"  # 5 empty side
        "Seven  eight nine.\tSieben acht neun.\twesnoth\n"  # 6 ok
    ))
    pairs, summary = tr.load_sentence_pairs(path, origin_column=2)
    assert pairs == [("One two three.", "Eins zwei drei.", "kde"),
                     ("Seven eight nine.", "Sieben acht neun.", "wesnoth")]
    assert summary.skipped == {"fewer than 3 columns": 1, "empty origin": 1, "empty side": 1}
    assert summary.examples == [(2, "fewer than 3 columns"), (3, "empty origin"),
                                (5, "empty side")]
    assert summary.blank_lines == 1 and summary.lines == 6
    kept, summary = tr.load_sentence_pairs(path, origin_column=2, origins={"wesnoth"})
    assert kept == pairs[1:] and summary.not_selected == 1 and summary.num_skipped == 3
    with pytest.raises(ValueError, match=r"pairs\.tsv\.xz, line 2: fewer than 3 columns"):
        tr.load_sentence_pairs(path, strict=True, origin_column=2)
    # The same file as a 2-column corpus: the third column is ignored.
    two, summary = tr.load_sentence_pairs(path, strict=False)
    assert len(two) == 4 and summary.skipped == {"empty side": 1}


def test_three_column_loader_rejects_bad_arguments(tmp_path):
    path = _write_xz(tmp_path / "p.tsv.xz", "A b c.\tD e f.\tkde\n")
    with pytest.raises(ValueError, match="origin_column"):
        tr.load_sentence_pairs(path, origin_column=1)
    with pytest.raises(ValueError, match="origins"):
        tr.load_sentence_pairs(path, origins=("kde",))


# -------------------------------------------------------- load_corpus ----


def test_load_corpus_resolves_names_and_paths(tmp_path, corpus):
    default, summary = tr.load_corpus()
    assert default == corpus[0] and summary.path == tr.EN_DE_PAIRS_PATH
    assert tr.load_corpus("")[0] == default
    assert tr.load_corpus("en-de", origins=("kde",))[0] == tr.load_en_de_pairs("kde")[0]
    ding, summary = tr.load_corpus("ding")
    assert summary.path == tr.DE_EN_PAIRS_PATH and len(ding) == 17884
    assert {o for _, _, o in ding} == {"ding"}
    assert [p[:2] for p in ding] == tr.load_de_en_pairs()[0]
    user = tmp_path / "spa-eng.txt"
    user.write_text("Hi.\tHola.\tCC-BY 2.0\nno tab\n", encoding="utf-8")
    pairs, summary = tr.load_corpus(str(user))
    assert pairs == [("Hi.", "Hola.", "user")] and summary.skipped == {"no tab": 1}
    with pytest.raises(ValueError, match="line 2: no tab"):
        tr.load_corpus(str(user), strict=True)
    with pytest.raises(ValueError, match=r"corpus.*'nonexistent\.tsv'"):
        tr.load_corpus("nonexistent.tsv")
    with pytest.raises(ValueError, match="origins"):
        tr.load_corpus("ding", origins=("kde",))
