"""Argument and input checks shared by every kzoo layer and model.

Each check raises a `ValueError` that names the argument, the value received
and what would be right, e.g.
`attention_window must be an even positive integer; received 7`.
"""

import numbers

import numpy as np
from keras import ops


def check_positive_int(name, value, allow_none=False):
    """Checks that `value` is an integer > 0 (bools are rejected)."""
    if value is None and allow_none:
        return value
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value <= 0
    ):
        expected = "a positive integer or None" if allow_none else (
            "a positive integer"
        )
        raise ValueError(f"`{name}` must be {expected}; received {value!r}")
    return int(value)


def check_non_negative_int(name, value):
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < 0
    ):
        raise ValueError(
            f"`{name}` must be a non-negative integer; received {value!r}"
        )
    return int(value)


def check_rate(name, value):
    """Checks a probability such as a dropout rate: 0 <= value < 1."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= value < 1.0
    ):
        raise ValueError(
            f"`{name}` must be a float in [0, 1); received {value!r}"
        )
    return float(value)


def check_positive_float(name, value):
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not value > 0
    ):
        raise ValueError(f"`{name}` must be a positive number; received {value!r}")
    return float(value)


def check_one_of(name, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{name}` must be one of {sorted(choices)}; received {value!r}"
        )
    return value


def check_divisible(name, value, divisor_name, divisor):
    if value % divisor != 0:
        raise ValueError(
            f"`{name}` ({value}) must be divisible by `{divisor_name}` "
            f"({divisor}); received {name}={value}, {divisor_name}={divisor}"
        )


def check_rank(name, shape, expected_rank, layout=""):
    """Checks a static shape's rank, e.g. `check_rank("query", s, 3, "(B, T, D)")`."""
    if shape is None:
        return
    if len(shape) != expected_rank:
        hint = f" {layout}" if layout else ""
        raise ValueError(
            f"`{name}` must have rank {expected_rank}{hint}; received a "
            f"tensor of shape {tuple(shape)} (rank {len(shape)})"
        )


def check_integer_dtype(name, tensor):
    """Token ids must be integers: float ids are almost always a bug."""
    dtype = str(getattr(tensor, "dtype", ""))
    if dtype and "int" not in dtype:
        raise ValueError(
            f"`{name}` must hold integer token ids (int32 or int64); received "
            f"dtype {dtype}. Cast with `ops.cast(x, 'int32')` if the values "
            "are whole numbers."
        )


def check_same_dims(name, shape, expected, what):
    """Checks that the known dims of `shape` equal those of `expected`.

    `None` on either side means unknown (symbolic) and is not checked.
    """
    if shape is None or expected is None:
        return
    if len(shape) != len(expected) or any(
        a is not None and b is not None and a != b
        for a, b in zip(shape, expected)
    ):
        raise ValueError(
            f"`{name}` must have shape {tuple(expected)} ({what}); received "
            f"shape {tuple(shape)}"
        )


def static_shape(x):
    """The static shape of a tensor as a tuple, `None` for unknown dims."""
    shape = getattr(x, "shape", None)
    if shape is None:
        return None
    return tuple(None if d is None else int(d) for d in shape)


def as_bool_mask(mask):
    if mask is None:
        return None
    if str(mask.dtype) != "bool":
        mask = ops.cast(mask, "bool")
    return mask


def check_token_id_range(name, token_ids, vocabulary_size):
    """Raises if concrete `token_ids` hold an id outside [0, vocabulary_size).

    Does nothing on symbolic or traced tensors: there `guard_token_ids`
    turns the embeddings of out-of-range ids into NaN instead.
    """
    from kzoo.backend.checks import is_concrete

    if token_ids is None or not is_concrete(token_ids):
        return
    ids = np.asarray(ops.convert_to_numpy(token_ids))
    if ids.size == 0:
        return
    bad = (ids < 0) | (ids >= vocabulary_size)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"`{name}` must hold ids in [0, {vocabulary_size}) (vocabulary_size="
            f"{vocabulary_size}); received {int(ids[where])} at index {where}"
            f" ({int(bad.sum())} id(s) out of range)"
        )


def guard_token_ids(embeddings, token_ids, vocabulary_size):
    """NaN embeddings (B, T, D) wherever `token_ids` (B, T) is out of range.

    The traced counterpart of `check_token_id_range` (no host callback, so
    it survives XLA): a gather would otherwise clamp or wrap a bad id to a
    real row and give finite garbage; NaN makes the outputs and the loss of
    that example NaN, which `keras.callbacks.TerminateOnNaN` stops on.
    Cost: one comparison and one select per embedding.
    """
    valid = ops.logical_and(token_ids >= 0, token_ids < vocabulary_size)
    nan = ops.cast(float("nan"), embeddings.dtype)
    return ops.where(valid[..., None], embeddings, nan)
