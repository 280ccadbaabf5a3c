# kzoo: two commands from a bare clone. Each one builds its own virtual
# environment (once; reused while pyproject.toml is unchanged).
#   make train   the main job: trains the GRU translator on the shipped corpus
#   make test    the whole suite on TensorFlow, then layers and models on JAX
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?= -n 2 -q

.PHONY: setup train test test-tf test-jax

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

train: setup
	$(PY) recipes/translate_gru.py $(ARGS)

test: setup
	KERAS_BACKEND=tensorflow $(PY) -m pytest $(PYTEST_ARGS) tests
	KERAS_BACKEND=jax $(PY) -m pytest $(PYTEST_ARGS) tests/layers tests/models

test-tf: setup
	KERAS_BACKEND=tensorflow $(PY) -m pytest $(PYTEST_ARGS) tests

test-jax: setup
	KERAS_BACKEND=jax $(PY) -m pytest $(PYTEST_ARGS) tests/layers tests/models
