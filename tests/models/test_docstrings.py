"""Every docstring example (`>>>`) in kzoo runs as written, on each backend.

Each module is imported and its examples are run by `doctest` with fresh globals
(nothing pre-imported), so an example must carry its own imports. Expected
outputs must not depend on the backend's tensor type: examples print
`tuple(y.shape)`, dtypes or properties that hold for any weights.
"""

import doctest
import importlib
import io
import pkgutil

import keras
import pytest

import kzoo

OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# Modules whose examples need TensorFlow itself (tf.string, tf.lookup,
# SavedModel export), with the reason shown when they are skipped on JAX.
TENSORFLOW_ONLY = {
    "kzoo.data.tokenizers": "FrozenSentencePiece is built on tf.lookup tables "
    "and tf.strings; it runs only on TensorFlow",
    "kzoo.export.translator": "Translator is a tf.Module exported as a "
    "SavedModel; it runs only on TensorFlow",
    "kzoo.export.language_model": "TextGenerator is exported as a SavedModel "
    "with a tf.string tokenizer; it runs only on TensorFlow",
}


def _module_names():
    names = [kzoo.__name__]
    for info in pkgutil.walk_packages(kzoo.__path__, prefix=kzoo.__name__ + "."):
        names.append(info.name)
    return sorted(names)


def _tests(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [t for t in finder.find(module, module_name, globs={}) if t.examples]


def _modules_with_examples():
    found = []
    for name in _module_names():
        try:
            if _tests(name):
                found.append(name)
        except ImportError:
            # A module that cannot be imported on this backend is reported by
            # its own test below rather than silently dropped.
            found.append(name)
    return found


@pytest.mark.parametrize("module_name", _modules_with_examples())
def test_docstring_examples_run(module_name):
    if module_name in TENSORFLOW_ONLY and keras.backend.backend() != "tensorflow":
        pytest.skip(TENSORFLOW_ONLY[module_name])
    tests = _tests(module_name)
    report = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    attempted = failed = 0
    for test in tests:
        test.globs = {"__name__": module_name}  # fresh, nothing pre-imported
        result = runner.run(test, out=report.write, clear_globs=True)
        attempted += result.attempted
        failed += result.failed
    assert attempted > 0
    assert failed == 0, (
        f"{failed} of {attempted} docstring examples in {module_name} "
        f"failed:\n{report.getvalue()}"
    )
