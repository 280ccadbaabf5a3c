"""recipes/common: one config parser for every recipe, smoke folders of their
own, the public-API rule, and a smoke run of the Transformer-XL recipe.

Parsing is plain Python (seconds); the Transformer-XL run trains a tiny
model twice for 3 steps (TensorFlow only).
"""

import ast
import dataclasses
import glob
import importlib
import json
import os
import sys

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RECIPES = os.path.join(ROOT, "recipes")

# recipe module, config class, {field: value of a smoke run without flags}
SMOKE_FOLDERS = {
    "translate_gru": ("GRUConfig", {"output_dir": "saved_models/gru_translator_smoke",
                                    "run_dir": "runs/gru_translator_smoke"}),
    "translate_transformer": ("TransformerConfig", {
        "output_dir": "saved_models/transformer_translator_smoke",
        "run_dir": "runs/transformer_translator_smoke"}),
    "pretrain_bert": ("PretrainConfig", {"output_dir": "saved_models_smoke"}),
    "finetune_classifier": ("FinetuneConfig", {
        "pretrained": "saved_models_smoke/bert_tiny", "output_dir": "saved_models_smoke"}),
    "distill": ("DistillConfig", {
        "teacher": "saved_models_smoke/bbc_bert_tiny",
        "student": "saved_models_smoke/bert_nano", "output_dir": "saved_models_smoke"}),
    "transformer_xl_memory": ("Config", {"output_dir": "runs/transformer_xl_memory_smoke"}),
}


def _import(name):
    sys.path.insert(0, RECIPES)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


def _sizes(recipe):
    return getattr(recipe, "SIZES", None) or {"smoke": recipe.SMOKE}


@pytest.mark.parametrize("name", sorted(SMOKE_FOLDERS))
def test_every_flag_has_help_and_default_and_smoke_has_its_own_folders(name, capsys):
    recipe = _import(name)
    common = sys.modules["common"]
    cls = getattr(recipe, SMOKE_FOLDERS[name][0])
    with pytest.raises(SystemExit):
        common.parse_config(cls, ["--help"], _sizes(recipe))
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for field in dataclasses.fields(cls):
        help_text = common.config.field_help(cls)[field.name]
        assert help_text and f"default: {field.default!r}" in text, field.name
    assert "--smoke a tiny run" in text

    smoke, size = common.parse_config(cls, ["--smoke"], _sizes(recipe))
    assert size == "smoke"
    for field, value in SMOKE_FOLDERS[name][1].items():
        assert getattr(smoke, field) == value
    full, size = common.parse_config(cls, [], _sizes(recipe))
    assert size == "default"
    for field in SMOKE_FOLDERS[name][1]:
        assert getattr(full, field) == getattr(cls(), field)  # the real run's
    given, _ = common.parse_config(cls, ["--smoke", "--output_dir", "x"], _sizes(recipe))
    assert given.output_dir == "x"  # explicit folders win


def test_a_field_without_help_is_an_error():
    _import("translate_gru")
    common = sys.modules["common"]

    @dataclasses.dataclass(frozen=True)
    class Undocumented:
        mystery_knob: int = 3

    with pytest.raises(ValueError, match=r"needs a help text.*\['mystery_knob'\]"):
        common.parse_config(Undocumented, [])


def test_recipes_import_only_the_public_api():
    """kzoo, kzoo.data, kzoo.training, kzoo.export and model packages
    (`kzoo.models.bert`), never a module inside a layer or model package."""
    allowed = ("kzoo", "kzoo.data", "kzoo.training", "kzoo.export", "kzoo.models.bert")
    files = glob.glob(os.path.join(RECIPES, "*.py")) + glob.glob(
        os.path.join(RECIPES, "*", "*.py"))
    bad = []
    for path in files:
        if os.sep + "data" + os.sep in path:
            continue  # recipes/data: corpus builders, no models
        tree = ast.parse(open(path).read())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for module in names:
                if module.split(".")[0] != "kzoo":
                    continue
                if not any(module == a or (a != "kzoo" and module.startswith(a + "."))
                           for a in allowed):
                    bad.append(f"{os.path.relpath(path, ROOT)}: {module}")
    assert not bad, bad


@pytest.mark.tf_only
def test_transformer_xl_smoke_run_writes_config_and_metrics(tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the Transformer-XL recipe's training step uses tf.GradientTape")
    recipe = _import("transformer_xl_memory")
    out = tmp_path / "txl"
    metrics = recipe.main(["--smoke", "--output_dir", str(out)])
    config = json.loads((out / "config.json").read_text())
    saved = json.loads((out / "metrics.json").read_text())
    assert config["size"] == "smoke" and config["hidden_dim"] == 16
    for run in ("with_memory", "without_memory"):
        assert saved[run]["validation_perplexity"] == metrics[run]["validation_perplexity"]
        assert saved[run]["validation_perplexity"] > 1
