"""The Backbone and Task bases, the registry of named sizes, the CLI.

Every registered family is built at its smallest size (once, shared by the
tests below), run on a short input, and rebuilt from its config.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

import kzoo
from kzoo.__main__ import main
from kzoo.__main__ import size_arguments
from kzoo.models import Backbone
from kzoo.models import Task
from kzoo.models import get_model
from kzoo.models import list_models
from kzoo.models import list_sizes

FAMILIES = [
    "BertClassifier", "BertEncoder", "BertMaskedLM", "BigBirdEncoder",
    "GRUTranslator", "LSTMTransformerHybrid", "LinformerEncoder",
    "LongformerClassifier", "LongformerEncoder", "PerformerEncoder",
    "RecurrentClassifier", "RecurrentRegressor", "ReformerLM",
    "SparseTransformerLM", "TransformerEncoder", "TransformerLM",
    "TransformerSeq2Seq", "TransformerXLLM",
]
LENGTH = 16  # fits every tiny size: buckets of 8, blocks of 4, window 8, stride 4
_BUILT = {}


def _np(x):
    return np.asarray(ops.convert_to_numpy(ops.cast(x, "float32")))


def _small_data_arguments(cls):
    """The data's arguments at CPU-test values (vocabulary 64, 3 outputs)."""
    small = {"num_classes": 3, "num_outputs": 3, "num_features": 3, "output_dim": 1}
    return {
        name: 64 if "vocabulary" in name else small[name]
        for name in cls.data_arguments()
    }


def _smallest(name):
    """The family's smallest size, built once for all tests."""
    if name not in _BUILT:
        cls = get_model(name)
        size = list_sizes(name)[0]
        model = cls.from_size(size, **_small_data_arguments(cls))
        _BUILT[name] = (size, model, _inputs(model))
    return _BUILT[name]


def _inputs(model, batch=2):
    """Values for every functional input: ids in [1, LENGTH), segment ids 0,
    padding True with the last two positions of row 1 padded, one global
    token, float features and memories."""
    rng = np.random.default_rng(0)
    data = {}
    for name, spec in model.input.items():
        shape = (batch,) + tuple(LENGTH if d is None else d for d in spec.shape[1:])
        if "int" in spec.dtype:
            value = 0 if "segment" in name else rng.integers(1, LENGTH, size=shape)
            data[name] = np.broadcast_to(value, shape).astype("int32")
        elif spec.dtype == "bool":
            value = np.zeros(shape, bool)
            if "global" in name:
                value[:, 0] = True
            else:
                value[:] = True
                value[1, -2:] = False
            data[name] = value
        else:
            data[name] = rng.normal(size=shape).astype("float32")
    return data


def test_every_model_is_registered():
    assert list_models() == sorted(FAMILIES)
    for name in FAMILIES:
        cls = get_model(name)
        assert cls is getattr(kzoo, name)
        assert isinstance(cls.SIZES_SOURCE, str) and cls.SIZES_SOURCE
        assert list_sizes(name) == list(cls.SIZES)
        assert issubclass(cls, (Backbone, Task))
    for task in ("BertClassifier", "BertMaskedLM", "LongformerClassifier"):
        cls = get_model(task)
        assert issubclass(cls, Task) and cls.SIZES is cls.backbone_cls.SIZES
    with pytest.raises(ValueError, match="model families.*received 'GPT5'"):
        get_model("GPT5")


@pytest.mark.parametrize("name", FAMILIES)
def test_smallest_size_builds_runs_and_round_trips(name):
    size, model, data = _smallest(name)
    cls = get_model(name)
    assert size in ("tiny", "nano")
    for argument, value in cls.size_config(size).items():
        actual = getattr(model.backbone if isinstance(model, Task) else model, argument)
        assert tuple(np.atleast_1d(actual)) == tuple(np.atleast_1d(value)), argument
    outputs = model(data)
    for output in keras.tree.flatten(outputs):
        assert np.all(np.isfinite(_np(output)))
    # The config carries name, trainable, dtype once, and rebuilds the model.
    config = model.get_config()
    assert {"name", "trainable", "dtype"} <= set(config)
    # (Equal outputs after a round trip are each model's harness test; here,
    # the same config and the same weight shapes, without a second call.)
    rebuilt = cls.from_config(config)
    assert type(rebuilt) is cls and rebuilt.get_config() == config
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in model.weights]


@pytest.mark.parametrize("name", ["TransformerLM", "BertClassifier"])
def test_unknown_size_names_family_size_and_valid_ones(name):
    cls = get_model(name)
    expected = f"{name} has no size 'huge'; `size` must be one of {list(cls.SIZES)}"
    with pytest.raises(ValueError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        cls.from_size("huge", **cls.data_arguments())


def test_from_size_names_missing_data_arguments():
    with pytest.raises(ValueError, match=r"TransformerLM.from_size\('tiny'\) needs \['vocabulary_size'\]"):
        kzoo.TransformerLM.from_size("tiny")
    with pytest.raises(ValueError, match=r"BertClassifier.from_size\('nano'\) needs \['num_classes'\]"):
        kzoo.BertClassifier.from_size("nano", vocabulary_size=64)


def test_task_routes_arguments_and_serialises_backbone_once():
    _, clf, _ = _smallest("BertClassifier")
    assert clf.backbone is clf.encoder and isinstance(clf.backbone, kzoo.BertEncoder)
    assert clf.num_classes == 3 and clf.backbone.vocabulary_size == 64
    config = clf.get_config()
    assert config["encoder"]["config"]["num_layers"] == 2
    assert json.dumps(config).count('"vocabulary_size"') == 1
    task = kzoo.BertClassifier.from_size("nano", vocabulary_size=64, num_classes=2, dropout=0.3)
    assert task.dropout == 0.3 and task.backbone.dropout == 0.1  # the task's own
    with pytest.raises(ValueError, match="must be a kzoo LongformerEncoder .*received BertEncoder"):
        kzoo.LongformerClassifier(clf.backbone, num_classes=2)


def test_show_prints_constructor_arguments(capsys):
    assert main(["show", "BertEncoder", "base"]) == 0
    out = capsys.readouterr().out
    arguments = json.loads(out[out.index("{"):])
    assert arguments == size_arguments(kzoo.BertEncoder, "base")
    assert (arguments["num_layers"], arguments["hidden_dim"], arguments["vocabulary_size"]) == (
        12, 768, 30522)
    # The arguments are those the model is built with: its config, less the
    # three that Backbone adds.
    _, model, _ = _smallest("TransformerEncoder")
    expected = dict(model.get_config(), vocabulary_size=37000)
    for key in ("name", "trainable", "dtype"):
        expected.pop(key)
    assert size_arguments(kzoo.TransformerEncoder, "tiny") == expected
    assert main(["show", "BertEncoder", "huge"]) == 2
    assert "BertEncoder has no size 'huge'" in capsys.readouterr().err


def test_command_line_lists_families_with_parameter_counts():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(kzoo.__file__)), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run(
        [sys.executable, "-m", "kzoo", "list", "RecurrentClassifier", "--params"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "RecurrentClassifier: kzoo's"
    counts = {}
    for line in lines[1:]:
        size, rest = line.split(maxsplit=1)
        counts[size] = int(rest.rsplit("  ", 1)[1].split()[0].replace(",", ""))
    assert list(counts) == ["tiny", "small", "base"]
    model = kzoo.RecurrentClassifier.from_size(
        "tiny", **kzoo.RecurrentClassifier.data_arguments())
    assert counts["tiny"] == model.count_params()
