"""How the translation recipes resolve `--corpus` and `--origins`, and the
origin of each test pair that `load_data` keeps (for per-origin scores).

`check_config` is plain Python; `load_data` trains SentencePiece through
keras-hub, so those tests need TensorFlow. Seconds, no model is trained.
"""

import dataclasses
import os
import sys

import keras
import pytest

from kzoo.data import translation

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "recipes"))
try:
    from translation import config as common  # noqa: E402  (recipes/translation)
    from translation.data import load_data  # noqa: E402
finally:
    sys.path.pop(0)


def test_default_corpus_is_en_de():
    config = common.TranslationConfig()
    assert config.corpus == "en-de" and config.origins == ""
    common.check_config(config)
    assert common.origins(config) is None


@pytest.mark.parametrize(
    "corpus, origins, match",
    [
        ("no/such/file.tsv", "", r"--corpus must be one of \('en-de', 'ding'\).*'no/such/file\.tsv'"),
        ("ding", "wesnoth", r"--origins selects parts of --corpus en-de only"),
        ("en-de", "wesnoth,klingon", r"origins.*'klingon'"),
    ],
)
def test_check_config_names_the_bad_flag(corpus, origins, match):
    config = common.TranslationConfig(corpus=corpus, origins=origins)
    with pytest.raises(ValueError, match=match):
        common.check_config(config)


def test_origins_flag_parses_a_comma_list():
    config = common.TranslationConfig(origins=" wesnoth, kde ,")
    common.check_config(config)
    assert common.origins(config) == ("wesnoth", "kde")


def _tf():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("load_data trains SentencePiece through keras-hub (TensorFlow)")


@pytest.mark.tf_only
@pytest.mark.parametrize("corpus", ["en-de", "ding", "user"])
def test_load_data_resolves_the_corpus_and_keeps_origins(corpus, tmp_path):
    _tf()
    if corpus == "user":
        path = tmp_path / "pairs.tsv"
        path.write_text("".join(
            f"Sentence number {i} is here.\tSatz Nummer {i} ist hier.\n" for i in range(400)
        ))
        corpus = str(path)
    config = dataclasses.replace(
        common.TranslationConfig(), corpus=corpus, max_pairs=300, vocabulary_size=100
    )
    data = load_data(config, str(tmp_path))
    expected = {"en-de": translation.EN_DE_PAIRS_PATH, "ding": translation.DE_EN_PAIRS_PATH}
    assert data.load_summary.path == expected.get(corpus, corpus)
    for pairs, origins in zip(data.split, data.origins):
        assert len(pairs) == len(origins)
        assert all(len(p) == 2 for p in pairs)
    origins = set(data.origins.train)
    if corpus == "en-de":
        assert origins <= set(translation.EN_DE_ORIGINS) and len(origins) > 3
        full = translation.split_pairs(translation.load_corpus()[0])
        lookup = {p[:2]: p[2] for p in full.test}
        assert [lookup[p] for p in data.split.test] == data.origins.test
    else:
        assert origins == {"ding" if corpus == "ding" else "user"}


@pytest.mark.tf_only
def test_load_data_filters_origins(tmp_path):
    _tf()
    config = common.TranslationConfig(origins="wesnoth", max_pairs=200, vocabulary_size=100)
    data = load_data(config, str(tmp_path))
    assert {o for part in data.origins for o in part} == {"wesnoth"}
    assert data.load_summary.not_selected > 0
