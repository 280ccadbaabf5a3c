"""Longformer sliding-window + global self-attention in O(n * w).

The local band is computed by `band_attention` (blocked, float32 softmax,
hand-made gradient); this file cuts the sequence into blocks, gathers the
global tokens and computes the global rows.

Einsum letters used in this file:
    B batch, N heads, H key_dim, V value_dim, D model width,
    d dilation lane, q query block (nb blocks of c rows, see `_blocking`),
    c row in a query block, k key column in a block's window
    (K = (2 reach + 1) c), g global slot (G slots), t / s sequence positions.
"""

import warnings

import keras
import numpy as np
from keras import ops

from kzoo.layers.attention.band_attention import band_attention
from kzoo.layers.attention.band_attention import band_attention_forward
from kzoo.layers.attention.band_attention import band_bias
from kzoo.layers.attention.band_attention import key_bias
from kzoo.layers.attention.blocking import first_true_indices
from kzoo.layers.attention.blocking import gather_rows
from kzoo.layers.attention.blocking import neighbour_blocks
from kzoo.layers.attention.blocking import pad_axis
from kzoo.layers.attention.blocking import padded_length
from kzoo.layers.attention.masking import additive_mask
from kzoo.layers.attention.masking import check_padding_mask
from kzoo.layers.attention.masking import masked_softmax
from kzoo.layers.attention.multi_head_attention import MultiHeadAttention
from kzoo.layers.attention.multi_head_attention import PatternSupport
from kzoo.utils.validation import as_bool_mask
from kzoo.utils.validation import check_positive_int
from kzoo.utils.validation import static_shape

# Target rows per query block (see `LongformerAttention._blocking`).
_BLOCK_TARGET = 64


def _concrete(x):
    """The NumPy value of `x` when it is concrete (eager), else None."""
    try:
        return np.asarray(ops.convert_to_numpy(x))
    except Exception:  # symbolic TF tensor or JAX tracer
        return None


def check_attention_window(attention_window):
    """Checks Longformer's whole window: an even positive integer."""
    if (
        isinstance(attention_window, bool)
        or not isinstance(attention_window, (int, np.integer))
        or attention_window <= 0
        or attention_window % 2
    ):
        raise ValueError(
            "`attention_window` must be an even positive integer (the "
            "whole window, attention_window // 2 tokens on each side); "
            f"received {attention_window!r}"
        )
    return int(attention_window)


@keras.saving.register_keras_serializable(package="kzoo")
class LongformerAttention(MultiHeadAttention):
    """Sliding-window self-attention with global tokens, in O(n * w).

    Implements the attention of "Longformer: The Long-Document Transformer"
    (Beltagy, Peters and Cohan, 2020). Each token attends to the
    `attention_window // 2` tokens on each side of it (every `dilation`-th
    token with dilation), plus every global token; global tokens attend to
    every token. Time and memory are O(n * (w + G)) for n tokens, window w
    and G global tokens: the sequence is cut into blocks of about 64 rows
    and each query block meets the key blocks within w // 2 of it in one
    batched matmul; the keys of the (few) global tokens are gathered and
    added as extra columns of every row's softmax, and the global query rows
    are computed separately against all keys. No n x n tensor is built
    (except for the global rows when `max_global_tokens` is None under
    tracing, see below).

    With `separate_global_projections=False` the layer has the same
    variables, in the same order, as `kzoo.layers.MultiHeadAttention` and
    `keras.layers.MultiHeadAttention`, so `set_weights` copies a dense layer
    in; with `attention_window >= 2 * n` it then computes dense attention.
    With `separate_global_projections=True` the global rows use their own
    `query_global` / `key_global` / `value_global` projections (as in the
    paper), initialised at build as copies of the local ones.

    Sequences whose length is not a multiple of `attention_window // 2 *
    dilation` are padded inside the layer and the padding is cut from the
    output. A sequence length unknown at trace time (a SavedModel signature
    with a None length) falls back to the same attention computed densely
    with the explicit mask (same numbers, O(n^2)); give static lengths for
    long inputs.

    Args:
        num_heads: number of attention heads N.
        key_dim: size H of each head for query and key.
        attention_window: the whole window w, even and positive: each token
            sees w // 2 tokens on each side (and itself).
        dilation: gap between attended tokens of the window (1: none).
        separate_global_projections: whether global rows use their own
            query/key/value projections.
        max_global_tokens: static bound G on the number of global tokens
            per sequence. None: the exact count when the mask is concrete
            (eager), the sequence length when traced (exact but O(n^2) for
            the global rows: set a bound for long sequences under
            `tf.function` / `jit`). With a bound, a concrete mask with more
            global tokens raises a `ValueError`; under tracing (`fit`,
            `predict`, XLA, SavedModel), where no error can be raised, that
            sequence's outputs are NaN (never a silent demotion of its extra
            global tokens to local ones).
        **kwargs: `value_dim`, `dropout`, `use_bias`, `output_dim`,
            `kernel_initializer`, `bias_initializer`, `seed` as for
            `MultiHeadAttention`, and base layer arguments.

    Call arguments:
        query: (B, T, D), the sequence (self-attention only).
        padding_mask: (B, T) bool, True for real tokens; padding is never
            attended to.
        global_attention_mask: (B, T) bool, True for global tokens.
        training: whether dropout is active.
        A `value` / `key` other than `query`, `attention_mask`,
        `attention_bias`, `use_causal_mask=True`, `cache` and
        `return_attention_scores` have no form in this pattern: each raises
        the dense core's shared `ValueError`.

    Returns:
        (B, T, output_dim). A query row that can see no real token (for
        example a padding token far from any real one) outputs the output
        bias only (zero attention), never NaN.

    Example:

    >>> import keras
    >>> import numpy as np
    >>> from kzoo.layers import LongformerAttention
    >>> layer = LongformerAttention(num_heads=2, key_dim=8, attention_window=4)
    >>> x = keras.random.normal((2, 10, 16))
    >>> glob = np.zeros((2, 10), bool); glob[:, 0] = True
    >>> tuple(layer(x, global_attention_mask=glob).shape)
    (2, 10, 16)
    """

    _support = PatternSupport.sparse_self_attention(causal_forms=(False,))
    _pattern_summary = "a sliding window with global tokens"

    def __init__(
        self,
        num_heads,
        key_dim,
        attention_window,
        dilation=1,
        separate_global_projections=False,
        max_global_tokens=None,
        **kwargs,
    ):
        super().__init__(num_heads=num_heads, key_dim=key_dim, **kwargs)
        self.attention_window = check_attention_window(attention_window)
        self.dilation = check_positive_int("dilation", dilation)
        self.separate_global_projections = bool(separate_global_projections)
        self.max_global_tokens = check_positive_int(
            "max_global_tokens", max_global_tokens, allow_none=True
        )

    def build(self, query_shape, value_shape=None, key_shape=None):
        super().build(query_shape, value_shape, key_shape)
        if self.separate_global_projections:
            self._query_global_dense = self._head_projection("query_global", query_shape)
            self._key_global_dense = self._head_projection("key_global", query_shape)
            self._value_global_dense = self._head_projection(
                "value_global", query_shape, self._value_dim
            )
            self.initialize_global_projections()

    def initialize_global_projections(self):
        """Copies the local query/key/value weights into the global ones.

        Called at build; call it again after loading dense weights (for
        example with `set_weights` from a `MultiHeadAttention`).
        """
        if not self.separate_global_projections:
            return
        pairs = (
            (self._query_global_dense, self._query_dense),
            (self._key_global_dense, self._key_dense),
            (self._value_global_dense, self._value_dense),
        )
        for glob, local in pairs:
            for g, w in zip(glob.weights, local.weights):
                # A copy, not the same buffer (JAX donates each variable).
                g.assign(np.array(ops.convert_to_numpy(w)))

    # -- helpers ------------------------------------------------------------

    def _global_slots(self, global_mask, length):
        """The static number G of global slots for this call."""
        bound = length
        if self.max_global_tokens is not None:
            bound = min(self.max_global_tokens, length)
        counts = _concrete(ops.sum(ops.cast(global_mask, "int32"), axis=1))
        if counts is None:
            if self.max_global_tokens is None and length > self.attention_window:
                warnings.warn(
                    f"{self.name}: traced with max_global_tokens=None, so the "
                    f"global rows and columns are computed for all {length} "
                    "positions (O(T^2) time and memory, several times slower "
                    "than the band). Set max_global_tokens to the most "
                    "global tokens a sequence has (1 for a [CLS] token).",
                    stacklevel=2,
                )
            return bound
        most = int(counts.max()) if counts.size else 0
        if self.max_global_tokens is not None and most > self.max_global_tokens:
            raise ValueError(
                "`global_attention_mask` marks more global tokens than "
                f"`max_global_tokens`={self.max_global_tokens}; received a "
                f"mask with {most} global tokens in one sequence"
            )
        return max(1, min(most, bound))

    @staticmethod
    def _blocking(half_window):
        """(block, reach): block rows and neighbour blocks on each side.

        Blocks of about 64 lane steps: each block meets `reach` blocks on
        each side, `reach * block >= half_window`. Smaller blocks waste
        fewer scores outside the band ((2 reach + 1) block columns for
        2 half_window + 1 useful ones) but make smaller matmuls. For window
        256 on a 2-core CPU under XLA, 64 and 128 ran as fast and 32 slower
        (`benchmarks/attention_quick.py --block-target`); 64 keeps the
        scores smaller (320 columns a row against 384).
        """
        reach = -(-half_window // _BLOCK_TARGET)
        block = -(-half_window // reach)
        return block, reach

    def _to_blocks(self, x, nb, c):
        """(B, Tp, N, F) -> (B, N, d, nb, c, F); position (i*c + a)*d + r."""
        d = self.dilation
        n, f = x.shape[2], x.shape[3]
        x = ops.reshape(x, (-1, nb, c, d, n, f))  # (B, nb, c, d, N, F)
        return ops.transpose(x, (0, 4, 3, 1, 2, 5))  # (B, N, d, nb, c, F)

    def _from_blocks(self, x, length):
        """(B, N, d, nb, c, F) -> (B, length, N, F)."""
        _, n, d, nb, c, f = x.shape
        x = ops.transpose(x, (0, 3, 4, 2, 1, 5))  # (B, nb, c, d, N, F)
        x = ops.reshape(x, (-1, nb * c * d, n, f))  # (B, Tp, N, F)
        return x[:, :length]

    def _mask_to_blocks(self, mask, nb, c):
        """(B, Tp) -> (B, 1, d, nb, c)."""
        mask = ops.reshape(mask, (-1, nb, c, self.dilation))  # (B, nb, c, d)
        mask = ops.transpose(mask, (0, 3, 1, 2))  # (B, d, nb, c)
        return ops.expand_dims(mask, 1)

    # -- the pattern ----------------------------------------------------------

    def _compute_attention(
        self,
        query,
        key,
        value,
        padding_mask=None,
        training=None,
        inputs=None,
        global_attention_mask=None,
        **kwargs,
    ):
        """Band + global attention of (B, T, N, H) heads -> (B, T, N, V).

        `global_attention_mask`: (B, T) bool, True for global tokens.
        """
        shape = static_shape(query)
        length = shape[1]
        check_padding_mask(
            "global_attention_mask", global_attention_mask, shape[0], length,
            "(batch_size, sequence_length)",
        )
        if length is None:
            return self._dense_pattern(
                query, key, value, padding_mask, global_attention_mask,
                inputs[0], training,
            ), None
        valid = self._valid_tokens(query, padding_mask)  # (B, T)
        q = ops.multiply(query, ops.cast(self._inverse_sqrt_key_dim, query.dtype))
        if global_attention_mask is None:
            return self._band(q, key, value, valid, None, training), None
        glob = self._global_index(as_bool_mask(global_attention_mask), length)
        # Global keys are seen through the global columns only.
        key_mask = ops.logical_and(valid, ops.logical_not(glob["selected"]))
        globals_ = self._global_columns(glob, key, value, valid)
        out = self._band(q, key, value, key_mask, globals_, training)  # (B,T,N,V)
        out = self._global_rows(out, q, key, value, valid, glob, inputs[0], training)
        return self._poison_overflow(out, glob), None

    @staticmethod
    def _poison_overflow(out, glob):
        """NaN rows for sequences with more global tokens than slots.

        Only reachable under tracing with `max_global_tokens` set (a concrete
        mask over the bound raises in `_global_slots`): the traced
        counterpart of that error, with no host callback, so it survives
        XLA. Such a sequence's outputs and loss are NaN instead of silently
        treating its extra global tokens as local ones.
        """
        overflow = glob["rank"][:, -1] > glob["slots"]  # (B,)
        nan = ops.cast(float("nan"), out.dtype)
        return ops.where(overflow[:, None, None, None], nan, out)

    @staticmethod
    def _valid_tokens(query, padding_mask):
        if padding_mask is None:
            return ops.ones(ops.shape(query)[:2], "bool")
        return as_bool_mask(padding_mask)  # (B, T)

    def _global_index(self, glob, length):
        """Where the global tokens are: G static slots for this call.

        Returns a dict: `slots` G; `index` (B, G) positions of the first G
        global tokens and `valid` (B, G) which slots hold one; `rank` (B, T)
        running count of global tokens; `selected` (B, T) the tokens given
        a slot.
        """
        slots = self._global_slots(glob, length)
        index, valid = first_true_indices(glob, slots)  # (B, G)
        rank = ops.cumsum(ops.cast(glob, "int32"), axis=1)  # (B, T)
        selected = ops.logical_and(glob, rank <= slots)  # (B, T)
        return {"slots": slots, "index": index, "valid": valid, "rank": rank,
                "selected": selected}

    @staticmethod
    def _global_columns(glob, k, v, valid):
        """(kg, vg, g_bias): the (B, G) global keys and values every row also
        sees, and their additive float32 bias."""
        g_key_mask = ops.logical_and(glob["valid"], gather_rows(valid, glob["index"]))
        return (
            gather_rows(k, glob["index"]),  # (B, G, N, H)
            gather_rows(v, glob["index"]),  # (B, G, N, V)
            additive_mask(g_key_mask),  # (B, G)
        )

    def _band(self, q, k, v, key_mask, globals_, training):
        """The local band: blocks of `block` lane steps, each meeting the
        2 * reach + 1 blocks around it, plus the global columns."""
        length = static_shape(q)[1]
        c, d = self.attention_window // 2, self.dilation
        block, reach = self._blocking(c)
        padded = padded_length(length, block * d)
        extra, nb = padded - length, padded // (block * d)
        qb = self._to_blocks(pad_axis(q, 1, 0, extra), nb, block)  # (B,N,d,nb,c,H)
        kb = self._to_blocks(pad_axis(k, 1, 0, extra), nb, block)
        vb = self._to_blocks(pad_axis(v, 1, 0, extra), nb, block)
        kw = neighbour_blocks(kb, 3, 0, reach, reach)  # (B, N, d, nb, K, H)
        vw = neighbour_blocks(vb, 3, 0, reach, reach)  # (B, N, d, nb, K, V)
        mb = self._mask_to_blocks(
            pad_axis(key_mask, 1, 0, extra, False), nb, block
        )  # (B, 1, d, nb, c)
        mw = neighbour_blocks(mb, 3, False, reach, reach)  # (B, 1, d, nb, K)
        bias = band_bias(block, reach, reach, c)  # (c, K) static
        if training and self.dropout > 0:
            out, _ = band_attention_forward(
                qb, kw, vw, bias, key_bias(mw), globals_,
                dropout=lambda p: self._dropout_layer(p, training=training),
            )
        else:
            out = band_attention(qb, kw, vw, bias, key_bias(mw), globals_)
        return self._from_blocks(out, length)  # (B, T, N, V)

    def _global_rows(self, out, q, k, v, valid, glob, sequence, training):
        """Each global token's row: attention to every real token."""
        g_index = glob["index"]  # (B, G)
        if self.separate_global_projections:
            qg = self._query_global_dense(gather_rows(sequence, g_index))  # (B,G,N,H)
            qg = ops.multiply(qg, ops.cast(self._inverse_sqrt_key_dim, qg.dtype))
            k_all = self._key_global_dense(sequence)  # (B, T, N, H)
            v_all = self._value_global_dense(sequence)  # (B, T, N, V)
        else:
            qg = gather_rows(q, g_index)  # (B, G, N, H)
            k_all, v_all = k, v
        row_scores = ops.einsum("bgnh,btnh->bngt", qg, k_all)  # (B, N, G, T)
        row_probs = masked_softmax(row_scores, valid[:, None, None, :])
        row_probs = self._dropout_layer(
            ops.cast(row_probs, v_all.dtype), training=training
        )
        g_out = ops.einsum("bngt,btnv->bgnv", row_probs, v_all)  # (B, G, N, V)
        slot = ops.clip(glob["rank"] - 1, 0, glob["slots"] - 1)  # (B, T)
        g_rows = gather_rows(ops.cast(g_out, out.dtype), slot)  # (B, T, N, V)
        return ops.where(glob["selected"][:, :, None, None], g_rows, out)

    def _dense_pattern(self, q, k, v, padding_mask, global_attention_mask,
                       sequence, training):
        """The same attention computed densely, O(n^2), for a dynamic length.

        Used only when the sequence length is unknown at trace time (e.g. a
        SavedModel signature with a None length); numbers are the same
        (`max_global_tokens` is not applied).
        """
        length = ops.shape(q)[1]
        pos = ops.arange(length, dtype="int32")
        rel = ops.expand_dims(pos, 1) - ops.expand_dims(pos, 0)  # (T, T)
        c, d = self.attention_window // 2, self.dilation
        band = ops.logical_and(ops.abs(rel) <= c * d, ops.mod(rel, d) == 0)
        mask = band[None, None]  # (1, 1, T, T)
        glob = None
        if global_attention_mask is not None:
            glob = as_bool_mask(global_attention_mask)  # (B, T)
            mask = ops.logical_or(
                mask, ops.logical_or(glob[:, None, None, :], glob[:, None, :, None])
            )  # (B, 1, T, T)
        out, _ = super()._compute_attention(
            q, k, v, padding_mask=padding_mask, attention_mask=mask, training=training
        )  # (B, T, N, V)
        if glob is not None and self.separate_global_projections:
            g_out, _ = super()._compute_attention(
                self._query_global_dense(sequence),
                self._key_global_dense(sequence),
                self._value_global_dense(sequence),
                padding_mask=padding_mask,
                training=training,
            )
            out = ops.where(glob[:, :, None, None], g_out, out)
        return out

    # -- dense reference pattern ---------------------------------------------

    def attention_pattern(self, padding_mask, global_attention_mask=None):
        """The dense (B, T, T) boolean mask equal to this layer's pattern.

        For tests and inspection (it is n x n): query t may see key s when s
        is a real token and s is in t's (dilated) window, or s or t is
        global. Ignores `max_global_tokens` (assumes no overflow).
        """
        valid = np.asarray(padding_mask, bool)
        length = valid.shape[1]
        t = np.arange(length)[:, None]
        s = np.arange(length)[None, :]
        rel = t - s
        c = self.attention_window // 2
        band = (np.abs(rel) <= c * self.dilation) & (rel % self.dilation == 0)
        pattern = np.broadcast_to(band, (valid.shape[0], length, length)).copy()
        if global_attention_mask is not None:
            glob = np.asarray(global_attention_mask, bool)
            pattern |= glob[:, None, :] | glob[:, :, None]
        return pattern & valid[:, None, :]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "attention_window": self.attention_window,
                "dilation": self.dilation,
                "separate_global_projections": self.separate_global_projections,
                "max_global_tokens": self.max_global_tokens,
            }
        )
        return config
