"""NumPy references for the recurrent tests: Keras-style GRU, attention."""

import numpy as np
from keras import ops


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def gru_step(cell, x, h):
    """One step of a Keras GRUCell (reset_after=True) in NumPy."""
    kernel = ops.convert_to_numpy(cell.kernel)
    recurrent = ops.convert_to_numpy(cell.recurrent_kernel)
    bias = ops.convert_to_numpy(cell.bias)  # (2, 3H)
    units = recurrent.shape[0]
    mx = x @ kernel + bias[0]
    mh = h @ recurrent + bias[1]
    z = sigmoid(mx[:, :units] + mh[:, :units])
    r = sigmoid(mx[:, units : 2 * units] + mh[:, units : 2 * units])
    hh = np.tanh(mx[:, 2 * units :] + r * mh[:, 2 * units :])
    return z * h + (1.0 - z) * hh


def gru_sequence(cell, x, mask, h0=None, reverse=False):
    """Masked GRU over (B, T, F): padded steps keep the state."""
    batch, steps, _ = x.shape
    units = ops.convert_to_numpy(cell.recurrent_kernel).shape[0]
    h = np.zeros((batch, units), "float32") if h0 is None else h0
    outputs = np.zeros((batch, steps, units), "float32")
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    for t in order:
        new = gru_step(cell, x[:, t], h)
        h = np.where(mask[:, t : t + 1], new, h)
        outputs[:, t] = h
    return outputs, h


def softmax_masked(scores, mask):
    scores = np.where(mask, scores, -np.inf)
    w = np.exp(scores - scores.max(-1, keepdims=True))
    return w / w.sum(-1, keepdims=True)


def bahdanau(layer, query, value, mask):
    """query (B, Dq), value (B, S, D) -> context (B, D), weights (B, S)."""
    wq = ops.convert_to_numpy(layer._query_dense.kernel)
    wk = ops.convert_to_numpy(layer._key_dense.kernel)
    bk = ops.convert_to_numpy(layer._key_dense.bias)
    v = ops.convert_to_numpy(layer.score_vector)
    scores = np.tanh((query @ wq)[:, None, :] + value @ wk + bk) @ v  # (B, S)
    w = softmax_masked(scores, mask)
    return np.einsum("bs,bsd->bd", w, value), w
