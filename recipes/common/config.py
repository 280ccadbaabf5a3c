"""Recipe configs: a frozen dataclass, named sizes, command-line overrides.

`parse_config(Config, argv, sizes=..., smoke_paths=...)` builds the config
from, in order, the dataclass defaults, a named row of `sizes` (`--size
NAME`; `--smoke` is `--size smoke`) and the flags given. Every field is a
flag (`--hidden_dim 256`; booleans `--jit_compile` / `--no-jit_compile`),
and `--help` shows each flag's help text and default. The help text is the
field's `metadata["help"]`, else the comment after the field in the class
source, else the shared text for common names in `HELP`; a field with none
is an error when the parser is built, so no flag goes undocumented.
"""

import argparse
import dataclasses
import inspect
import re

SMOKE_SUFFIX = "_smoke"

HELP = {
    "batch_size": "examples per training step",
    "epochs": "passes over the training data (at most)",
    "steps": "training steps in all",
    "learning_rate": "peak learning rate",
    "warmup_steps": "steps of linear learning-rate warm-up",
    "warmup_fraction": "fraction of the steps spent warming up the learning rate",
    "weight_decay": "AdamW weight decay",
    "clipnorm": "gradient clipping by global norm",
    "dropout": "dropout rate",
    "seed": "random seed (weights, shuffling, dropout)",
    "verbose": "Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch",
    "jit_compile": "compile training steps with XLA",
    "mixed_precision": "dtype policy: none | mixed_float16 | mixed_bfloat16",
    "hidden_dim": "model width",
    "embedding_dim": "width of the token embeddings",
    "intermediate_dim": "feed-forward width",
    "num_layers": "layers (blocks) per stack",
    "num_heads": "attention heads",
    "num_encoder_layers": "stacked bidirectional encoder layers",
    "output_dir": "where the model, config and metrics are written",
    "run_dir": "checkpoints (resume backup) and TensorBoard logs",
    "sequence_length": "tokens per sequence",
    "max_train": "0 = all training examples; else the first N (smoke runs)",
    "max_eval": "0 = the whole evaluation splits; else the first N",
    "validation_fraction": "fraction of the data held out for validation",
    "test_fraction": "fraction of the data held out for the test split",
    "vocabulary_size": "tokens in the learned vocabulary",
    "log_every": "steps between logged scalars",
    "normalize_first": "pre-LN (LayerNorm before each sublayer) instead of post-LN",
}


def _source_comments(cls):
    """{field name: trailing comment} from the source of `cls` and its bases."""
    comments = {}
    for klass in reversed(cls.__mro__):
        source = _class_source(klass)
        for line in source.splitlines():
            match = re.match(r"\s+(\w+)\s*:\s*[\w\[\]., ]+=.*?#\s*(.+)$", line)
            if match:
                comments[match.group(1)] = match.group(2).strip()
    return comments


def _class_source(klass):
    """The source of `klass`, also for a module loaded from a file path
    without a `sys.modules` entry (as some tests load recipes): then the
    file is that of a calling frame whose globals define the class."""
    try:
        return inspect.getsource(klass)
    except (OSError, TypeError):
        pass
    for frame in inspect.stack(0)[1:]:
        if frame.frame.f_globals.get(klass.__name__) is klass:
            with open(frame.filename) as f:
                text = f.read()
            match = re.search(rf"^class {klass.__name__}\b.*?(?=^\S)", text + "\nEND",
                              re.M | re.S)
            return match.group(0) if match else ""
    return ""


def field_help(config_cls):
    """{field name: help text}; raises if a field has none."""
    comments = _source_comments(config_cls)
    texts, missing = {}, []
    for field in dataclasses.fields(config_cls):
        text = field.metadata.get("help") or comments.get(field.name) or HELP.get(field.name)
        if not text:
            missing.append(field.name)
        texts[field.name] = text
    if missing:
        raise ValueError(
            f"{config_cls.__name__}: every config field needs a help text (a comment "
            f"after it, metadata['help'] or an entry in common.config.HELP); "
            f"received none for {missing}"
        )
    return texts


def parse_config(config_cls, argv=None, sizes=None, description="", smoke_paths=None,
                 choices=None):
    """Builds a frozen `config_cls` from defaults, a named size and flags.

    Args:
        config_cls: a frozen dataclass.
        argv: the command line (None: `sys.argv[1:]`).
        sizes: {name: {field: value}}; with more than a "smoke" row, `--size`
            picks one ("default" unless given). `--smoke` picks "smoke".
        description: the first line of `--help`.
        smoke_paths: fields (folders) that a smoke run suffixes with
            `_smoke` unless they are given explicitly; default `output_dir`
            and `run_dir` where the config has them.
        choices: {field: allowed values} for argparse to check.

    Returns:
        `(config, size)`, size the row's name ("default" or "smoke" without
        `--size`).
    """
    sizes = dict(sizes or {})
    sizes.setdefault("default", {})
    sizes.setdefault("smoke", {})
    names = {f.name for f in dataclasses.fields(config_cls)}
    if smoke_paths is None:
        smoke_paths = tuple(n for n in ("output_dir", "run_dir") if n in names)
    choices = dict(choices or {})
    if "mixed_precision" in names:
        from common.precision import MIXED_PRECISION

        choices.setdefault("mixed_precision", MIXED_PRECISION)
    texts = field_help(config_cls)
    parser = argparse.ArgumentParser(description=description)
    named_sizes = bool(set(sizes) - {"default", "smoke"})
    if named_sizes and "size" in names:
        raise ValueError(
            f"{config_cls.__name__} has a field `size`, so its sizes table may only "
            f"have a 'smoke' row; received rows {sorted(sizes)}"
        )
    if named_sizes:
        parser.add_argument("--size", choices=sorted(sizes), default="default",
                            help="a row of the recipe's table of sizes")
    smoke_help = "a tiny run that finishes in seconds"
    if smoke_paths:
        smoke_help += f"; writes to {', '.join(f'<{p}>_smoke' for p in smoke_paths)}"
    parser.add_argument("--smoke", action="store_true", help=smoke_help)
    for field in dataclasses.fields(config_cls):
        flag = f"--{field.name}"
        by_size = sorted(s for s, row in sizes.items() if field.name in row)
        text = f"{texts[field.name]}; default: {field.default!r}"
        if by_size:
            where = ["--smoke" if s == "smoke" else f"--size {s}" for s in by_size]
            text += f" (set by {', '.join(where)})"
        text = text.replace("%", "%%")
        kind = {"int": int, "float": float, "str": str, "bool": bool}.get(field.type, field.type)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=text)
        else:
            parser.add_argument(flag, type=kind, default=None, help=text,
                                choices=choices.get(field.name))
    args = parser.parse_args(argv)
    size = "smoke" if args.smoke else (args.size if named_sizes else "default")
    values = dict(sizes.get(size, {}))
    if size == "smoke":
        # A smoke run never overwrites the real run's model or its resume
        # backup: its folders get a suffix unless given explicitly.
        for field in dataclasses.fields(config_cls):
            if field.name in smoke_paths and field.name not in values:
                values[field.name] = smoke_path(field.default)
    for field in dataclasses.fields(config_cls):
        given = getattr(args, field.name)
        if given is not None:
            values[field.name] = given
    return config_cls(**values), size


def smoke_path(path):
    """`saved_models/x` -> `saved_models/x_smoke` ("" stays "")."""
    return path.rstrip("/") + SMOKE_SUFFIX if path else path


def check_choice(flag, value, choices):
    if value not in choices:
        raise ValueError(f"--{flag} must be one of {list(choices)}; received {value!r}")


def check_positive(config, *names):
    for name in names:
        value = getattr(config, name)
        if not value > 0:
            raise ValueError(f"--{name} must be positive; received {value!r}")
