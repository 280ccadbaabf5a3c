"""The README's "One API" example runs as written (TensorFlow: it exports)."""

import os
import re

import keras
import pytest

README = os.path.join(os.path.dirname(os.path.dirname(__file__)), "README.md")


def _one_api_block():
    with open(README) as f:
        text = f.read()
    section = text.split("### One API: a named size", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="the example ends with kzoo.export, which writes a "
                    "TensorFlow SavedModel")
def test_one_api_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(_one_api_block(), "README.md:One API", "exec"), namespace)
    assert os.path.exists(tmp_path / "out" / "translator" / "saved_model.pb")
    (translation,) = namespace["translator"](["Good morning."])
    assert isinstance(translation, str)
    assert namespace["lm"].generate(namespace["prompts"], max_length=12).shape == (2, 12)
