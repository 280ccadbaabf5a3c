"""Block and band helpers shared by the sparse attention layers.

All helpers work on static shapes (Python ints) so that the layers stay
XLA-compilable on TensorFlow and JAX, and use `keras.ops` only.
"""

import numpy as np
from keras import ops


def padded_length(length, multiple):
    """The smallest multiple of `multiple` that is >= `length` (and > 0)."""
    return max(1, -(-length // multiple)) * multiple


def pad_axis(x, axis, before, after, value=0):
    """Pads `x` with `value` along one (static) axis."""
    if before == 0 and after == 0:
        return x
    axis = axis % len(x.shape)
    widths = [(0, 0)] * len(x.shape)
    widths[axis] = (before, after)
    if str(x.dtype) == "bool":
        return ops.cast(
            ops.pad(ops.cast(x, "int8"), widths, constant_values=int(value)),
            "bool",
        )
    return ops.pad(x, widths, constant_values=value)


def neighbour_blocks(x, block_axis, value=0, previous=1, following=1):
    """Concatenates each block with its neighbours along the block's rows.

    `x` has a blocks axis of size nb at `block_axis` followed by a rows axis
    of size c. The result has the same blocks axis and a rows axis of size
    (previous + 1 + following) * c: for block i, the rows of blocks
    i - previous, ..., i + following (blocks outside the sequence are
    filled with `value`).
    """
    block_axis = block_axis % len(x.shape)
    nb = x.shape[block_axis]
    padded = pad_axis(x, block_axis, previous, following, value)
    parts = []
    for shift in range(previous + following + 1):
        index = [slice(None)] * len(x.shape)
        index[block_axis] = slice(shift, shift + nb)
        parts.append(padded[tuple(index)])
    return ops.concatenate(parts, axis=block_axis + 1)


def first_true_indices(mask, count):
    """Indices of the first `count` True entries of each row of a 2-D mask.

    Args:
        mask: (B, T) boolean.
        count: static int, how many indices to return per row.

    Returns:
        `(indices, valid)`: (B, count) int32 positions in increasing order,
        and (B, count) booleans telling which slots hold a True entry (the
        other slots point at position 0 and must be masked).
    """
    length = mask.shape[1]
    # Earlier True positions get larger keys; False positions get 0.
    keys = ops.where(
        mask, length - ops.arange(length, dtype="int32"), ops.zeros((), "int32")
    )
    values, indices = ops.top_k(keys, count, sorted=True)
    return ops.cast(indices, "int32"), values > 0


def gather_rows(x, indices):
    """`x[b, indices[b, g]]` for x (B, T, ...) and indices (B, G) -> (B, G, ...)."""
    shape = tuple(x.shape)  # static except perhaps the batch
    features = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    flat = ops.reshape(x, (-1, shape[1], features))  # (B, T, F)
    idx = ops.broadcast_to(
        ops.expand_dims(indices, -1),
        (ops.shape(x)[0], indices.shape[1], features),
    )
    out = ops.take_along_axis(flat, idx, axis=1)  # (B, G, F)
    return ops.reshape(out, (-1, indices.shape[1]) + shape[2:])
